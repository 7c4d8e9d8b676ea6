import { advertisedEnvelopes, readErrorBody, readTolerantly, type EnvelopeDialect, type Parsed } from '@authmd/protocol';
import type { ServiceInfo } from './discovery.ts';
import { AuthmdClientError } from './errors.ts';
import type { JsonAnswer } from './http.ts';

/** A reader's value, or `invalid_response` with the reader's message (which names the member). */
export function valueOf<T>(read: Parsed<T>, what: string, answer: Pick<JsonAnswer, 'status' | 'body'>): T {
  if (read.ok) return read.value;
  throw new AuthmdClientError('invalid_response', `${what}: the service answered ${answer.status} with a body that does not read as auth.md (${read.message}).`, {
    status: answer.status,
    body: answer.body,
  });
}

type EnvelopeReader<T> = (body: unknown, dialects: readonly EnvelopeDialect[]) => Parsed<T>;

/**
 * An answer of the identity or claim endpoint, read in the dialects the service advertises (both
 * when it advertises both, so that v0.7's agent code joins current's exact expiry). A service that
 * answers in one dialect's keys only, whichever it advertises, is still understood, as this client
 * always has understood it; otherwise the first refusal is the error.
 */
export function readEnvelope<T>(read: EnvelopeReader<T>, answer: Pick<JsonAnswer, 'status' | 'body'>, service: ServiceInfo, what: string): T {
  return valueOf(readTolerantly(read, answer.body, advertisedEnvelopes(service.dialects)), what, answer);
}

/** The `error` code of a refusal, if its body is an auth.md / RFC 6749 error. */
export function refusalOf(body: unknown): { error: string; extra: Record<string, unknown> } | undefined {
  const read = readErrorBody(body);
  return read.ok ? read.value : undefined;
}
