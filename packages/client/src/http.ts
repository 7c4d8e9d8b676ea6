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

export interface RequestOptions {
  /**
   * The request spends something (a refresh token, an ID-JAG, a claim attempt's code, a claim's
   * one-time hand-over): it is sent again only when it certainly was not processed.
   */
  spends?: boolean;
}

/** Connection failures that happen before a byte of the request leaves: nothing was processed. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** The longest `Retry-After` a spending request waits for before it gives up (and says how long to wait). */
const MAX_RETRY_AFTER_S = 30;

/**
 * One protocol request with AUTH.md's retry policy: a 5xx or a network failure is retried with
 * exponential backoff (0.5 s, 1 s, 2 s); a 4xx is returned for the caller to act on its code.
 * Redirects are not followed: a protocol endpoint that redirects is misconfigured or hostile.
 *
 * A request that `spends` something is sent again only when it certainly was not processed: the
 * connection failed before it was sent (refused, no such host), or the service answered 503 with a
 * `Retry-After` (it did not take the request; the wait is the longer of the backoff and what it
 * asked, up to 30 s). A lost answer (reset, closed, timed out) or any other 5xx is thrown at once,
 * flagged `unknownOutcome`: the caller recovers through the protocol, never by sending it again.
 */
export async function requestJson(http: HttpOptions, url: string, init: RequestInit, what: string, options: RequestOptions = {}): Promise<JsonAnswer> {
  let lastError: AuthmdClientError | undefined;
  let wait = 0;
  for (let attempt = 0; attempt < 4; attempt++) {
    if (attempt > 0) await http.sleep(Math.max(500 * 2 ** (attempt - 1), wait));
    wait = 0;
    let response: Response;
    try {
      response = await http.fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(http.timeoutMs) });
    } catch (error) {
      if (options.spends && !NOT_SENT.has(causeCode(error) ?? '')) throw answerLost(url, error, what);
      lastError = networkError(url, error, what);
      continue;
    }
    const body = await readBody(response).catch((error: unknown) => {
      throw options.spends ? answerLost(url, error, what) : error;
    });
    if (response.status >= 500) {
      lastError = fromServiceError(response.status, body, what);
      if (options.spends) {
        const retryAfter = response.status === 503 ? retryAfterSeconds(response.headers.get('retry-after'), Date.now()) : undefined;
        if (retryAfter === undefined) throw new AuthmdClientError(lastError.code, lastError.message, { ...lastError.details, unknownOutcome: true });
        if (retryAfter > MAX_RETRY_AFTER_S) throw new AuthmdClientError(lastError.code, lastError.message, { ...lastError.details, retryAfterSeconds: retryAfter });
        wait = retryAfter * 1000;
      }
      continue;
    }
    return { status: response.status, headers: response.headers, body };
  }
  throw lastError!;
}

function causeCode(error: unknown): string | undefined {
  const code = (error as { cause?: { code?: unknown } })?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The answer to a spending request did not arrive: the service may or may not have processed it. */
function answerLost(url: string, error: unknown, what: string): AuthmdClientError {
  const timedOut = error instanceof Error && error.name === 'TimeoutError';
  const reason = causeCode(error) ?? (timedOut ? 'timed out' : error instanceof Error ? error.message : String(error));
  return new AuthmdClientError(
    'network_error',
    `${what} failed: the connection to ${new URL(url).origin} broke before the answer arrived (${reason}); the service may have processed the request.`,
    { unknownOutcome: true },
  );
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date; undefined when absent or unreadable. */
function retryAfterSeconds(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** Like `requestJson`, but any non-2xx answer is an error. */
export async function requireJson(
  http: HttpOptions,
  url: string,
  init: RequestInit,
  what: string,
  options: RequestOptions = {},
): Promise<JsonAnswer & { body: Record<string, any> }> {
  const answer = await requestJson(http, url, init, what, options);
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
