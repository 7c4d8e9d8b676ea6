/**
 * Where the CLI reads and writes. stdout carries the command's result (a summary, a response body,
 * JSON); stderr carries the conversation with the person (the hand-off, progress, errors).
 */
export interface Io {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
}

export const processIo = (): Io => ({ stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env });

/** Writes and resolves once the text is handed to the OS (so that exiting afterwards loses nothing). */
export function write(stream: NodeJS.WritableStream, text: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => stream.write(text, (error) => (error ? reject(error) : resolve())));
}

/** Whether the person is debugging: full stack traces on errors. */
export const debugging = (env: NodeJS.ProcessEnv): boolean => env['AUTHMD_DEBUG'] === '1' || env['AUTHMD_DEBUG'] === 'true';
