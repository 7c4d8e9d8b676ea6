import { Agent, request as httpRequest } from 'node:http';

/**
 * One request at a time on one kept-alive connection, timed to the microsecond: the growth scenario
 * compares medians within 20%, which autocannon's 1 ms resolution cannot show.
 */
export interface Probe {
  send(request: ProbeRequest): Promise<ProbeAnswer>;
  close(): void;
}

export interface ProbeRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface ProbeAnswer {
  status: number;
  body: string;
  ms: number;
}

export function createProbe(base: string): Probe {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(base);
  return {
    send: (req) =>
      new Promise((resolve, reject) => {
        const started = performance.now();
        const r = httpRequest({ agent, host: url.hostname, port: url.port, method: req.method ?? 'GET', path: req.path, headers: req.headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ms: performance.now() - started }));
          res.on('error', reject);
        });
        r.on('error', reject);
        r.end(req.body);
      }),
    close: () => agent.destroy(),
  };
}

/** The answer's JSON, or an error naming the request and what came back. */
export function expectOk(what: string, answer: ProbeAnswer): Record<string, any> {
  if (answer.status !== 200) throw new Error(`${what} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
  return JSON.parse(answer.body);
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}
