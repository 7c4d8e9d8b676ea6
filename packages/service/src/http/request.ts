import { protocolError, type Parsed, type ProtocolError } from '@authmd/protocol';
import type { HttpRequest } from './env.ts';

/**
 * Reading request bodies: a content type that must match, a size cap (enforced by the host adapter
 * while reading), and parse errors that name what is wrong. Every failure is a ProtocolError.
 */

/** The error every adapter throws when a body passes the cap. */
export function bodyTooLarge(maxBytes: number): ProtocolError {
  return protocolError('payload_too_large', `The request body exceeds ${maxBytes} bytes.`);
}


function requireContentType(request: HttpRequest, expected: string): void {
  const actual = (request.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (actual !== expected) {
    throw protocolError('invalid_request', `Content-Type: must be ${expected}${actual ? `, not ${actual}` : ''}.`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function readJson(request: HttpRequest, maxBytes: number): Promise<unknown> {
  requireContentType(request, 'application/json');
  const body = await request.body(maxBytes);
  try {
    return JSON.parse(utf8.decode(body));
  } catch {
    throw protocolError('invalid_request', 'body: is not valid UTF-8 JSON.');
  }
}

/**
 * An `application/x-www-form-urlencoded` body (RFC 6749 §3.2): a parameter may appear once; an
 * empty value counts as absent.
 */
export async function readForm(request: HttpRequest, maxBytes: number): Promise<Record<string, string>> {
  requireContentType(request, 'application/x-www-form-urlencoded');
  const body = await request.body(maxBytes);
  const params = new URLSearchParams(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  const form: Record<string, string> = Object.create(null);
  for (const [name, value] of params) {
    if (Object.hasOwn(form, name)) {
      const why = name === 'resource' ? ' Each access token is bound to one resource; request one token per resource.' : '';
      throw protocolError('invalid_request', `${name}: must appear only once.${why}`);
    }
    if (value !== '') form[name] = value;
  }
  return form;
}

/** Unwraps a parse result, or throws `invalid_request` with the message naming the field. */
export function valid<T>(parsed: Parsed<T>): T {
  if (!parsed.ok) throw protocolError('invalid_request', `${parsed.message}.`);
  return parsed.value;
}
