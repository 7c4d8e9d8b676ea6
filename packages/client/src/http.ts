import { AuthmdClientError, fromServiceError, networkError } from './errors.ts';

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

export interface HttpOptions {
  fetch: FetchLike;
  sleep: (ms: number) => Promise<void>;
  timeoutMs: number;
}

export interface JsonAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

/**
 * One protocol request with AUTH.md's retry policy: a 5xx or a network failure is retried with
 * exponential backoff (0.5 s, 1 s, 2 s); a 4xx is returned for the caller to act on its code.
 * Redirects are not followed: a protocol endpoint that redirects is misconfigured or hostile.
 */
export async function requestJson(http: HttpOptions, url: string, init: RequestInit, what: string): Promise<JsonAnswer> {
  let lastError: AuthmdClientError | undefined;
  for (let attempt = 0; attempt < 4; attempt++) {
    if (attempt > 0) await http.sleep(500 * 2 ** (attempt - 1));
    let response: Response;
    try {
      response = await http.fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(http.timeoutMs) });
    } catch (error) {
      lastError = networkError(url, error, what);
      continue;
    }
    const body = await readBody(response);
    if (response.status >= 500) {
      lastError = fromServiceError(response.status, body, what);
      continue;
    }
    return { status: response.status, headers: response.headers, body };
  }
  throw lastError!;
}

/** Like `requestJson`, but any non-2xx answer is an error. */
export async function requireJson(http: HttpOptions, url: string, init: RequestInit, what: string): Promise<JsonAnswer & { body: Record<string, any> }> {
  const answer = await requestJson(http, url, init, what);
  if (answer.status < 200 || answer.status >= 300) throw fromServiceError(answer.status, answer.body, what);
  if (typeof answer.body !== 'object' || answer.body === null) {
    throw new AuthmdClientError('invalid_response', `${what}: the service answered ${answer.status} without a JSON object.`, { status: answer.status });
  }
  return answer as JsonAnswer & { body: Record<string, any> };
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const jsonPost = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
  body: JSON.stringify(body),
});

export const formPost = (fields: Record<string, string | undefined>): RequestInit => {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) if (value !== undefined) form.set(name, value);
  return { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' }, body: form.toString() };
};
