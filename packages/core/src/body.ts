import type { IncomingMessage } from 'node:http';

/** True when a declared Content-Length already exceeds the cap, so the body need not be read. */
export function declaredTooLarge(contentLength: string | undefined | null, maxBytes: number): boolean {
  return Number(contentLength) > maxBytes;
}

/**
 * A node:http request body, whole, or 'too_large' as soon as it passes `maxBytes` (declared in
 * Content-Length, or counted while reading); the rest is then drained and discarded, never held.
 */
export function collectBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    if (declaredTooLarge(req.headers['content-length'], maxBytes)) {
      req.resume();
      return resolve('too_large');
    }
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) {
        req.off('data', onData);
        req.resume();
        return resolve('too_large');
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
