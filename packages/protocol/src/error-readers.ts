import { z } from 'zod';
import { parseWith, type Parsed } from './schemas.ts';
import { expected, jsonObject, maybe, text } from './wire-values.ts';

/** An error body as `ProtocolError.toBody` writes it, read back. */
export interface ErrorBodyRead {
  /**
   * The code as sent, in the spelling of the dialect that answered (`rate_limited` from a v0.7
   * endpoint). It is not mapped back to the catalogue's `ErrorCode`: one spelling can name two codes
   * (`claimed_or_in_flight` is a code of its own and v0.7's name for `already_claimed`).
   */
  error: string;
  /** auth.md's `message`, else RFC 6749's `error_description` (authmd sends both, equal). */
  description?: string;
  reason?: string;
  /** Every other top-level member: `retry_after`, `max_age`, `tries_left`, the registration envelope of a step-up… */
  extra: Record<string, unknown>;
}

const described = maybe(z.string({ error: expected('a string') }));
const errorBody = z.object({ error: text, error_description: described, message: described, reason: described });
const ownMembers = new Set(Object.keys(errorBody.shape));

/** The inverse of `ProtocolError.toBody`: the JSON error of agent-facing and OAuth endpoints (RFC 6749 §5.2). */
export function readErrorBody(body: unknown): Parsed<ErrorBodyRead> {
  const object = jsonObject(body);
  if (!object.ok) return object;
  const read = parseWith(errorBody, object.value);
  if (!read.ok) return read;
  const { error, error_description: errorDescription, message, reason } = read.value;
  const extra = Object.fromEntries(Object.entries(object.value).filter(([member]) => !ownMembers.has(member)));
  const description = message ?? errorDescription;
  return { ok: true, value: { error, ...(description !== undefined ? { description } : {}), ...(reason !== undefined ? { reason } : {}), extra } };
}

/** RFC 8935 §2.3 refusal of a pushed SET, the inverse of `SetDeliveryError.toBody`. `err` is any code: the §2.4 registry can grow. */
export function readSetErrorBody(body: unknown): Parsed<{ err: string; description: string }> {
  const object = jsonObject(body);
  return object.ok ? parseWith(z.object({ err: text, description: z.string({ error: expected('a string') }) }), object.value) : object;
}
