import { CheckFailed } from './check.ts';

/** One HTTP answer as a check sees it: never an exception for a status, the body both as text and as JSON. */
export interface Answer {
  url: string;
  method: string;
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON; undefined when it is not JSON. */
  json: any;
}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A string or bytes go as they are; an object is sent as JSON (with its Content-Type unless one is given). */
  body?: string | Uint8Array | Record<string, unknown>;
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>;
  timeoutMs?: number;
}

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * The suite's only way to the service: plain HTTP, no redirects followed (every hop is checked), a
 * timeout, and a network failure reported as a failed check that names the URL.
 */
export class Http {
  constructor(private readonly fetcher: FetchLike = (input, init) => fetch(input, init)) {}

  async send(url: string, options: SendOptions = {}): Promise<Answer> {
    const method = options.method ?? (options.body !== undefined || options.form !== undefined ? 'POST' : 'GET');
    const headers: Record<string, string> = { ...options.headers };
    let body: string | Uint8Array | undefined;
    if (options.form !== undefined) {
      body = new URLSearchParams(options.form).toString();
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
    } else if (typeof options.body === 'string' || options.body instanceof Uint8Array) {
      body = options.body;
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    let response: Response;
    try {
      response = await this.fetcher(url, { method, headers, body: body as BodyInit | undefined, redirect: 'manual', signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS) });
    } catch (error) {
      throw new CheckFailed(`${method} ${url} got no answer (${reasonOf(error)}); is the service running and reachable?`);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { url, method, status: response.status, headers: response.headers, text, json };
  }

  get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.send(url, { headers });
  }

  postJson(url: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Answer> {
    return this.send(url, { method: 'POST', body, headers });
  }

  postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> {
    return this.send(url, { method: 'POST', form, headers });
  }
}

/** ECONNREFUSED, ENOTFOUND, TimeoutError…: what undici's "fetch failed" hides in its cause. */
function reasonOf(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.name : String(error);
}

/** `POST /x → 400 {"error":"…"}`: how a check quotes an answer in its message (the body cut short). */
export function describeAnswer(answer: Answer): string {
  const body = answer.text.length > 300 ? `${answer.text.slice(0, 300)}…` : answer.text;
  return `${answer.method} ${new URL(answer.url).pathname} → ${answer.status}${body ? ` ${body}` : ''}`;
}
