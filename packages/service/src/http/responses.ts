import type { Dialect, ProtocolError } from '@authmd/protocol';
import type { HttpResponse } from './env.ts';

/** RFC 6749 §5.1: anything that may carry a credential must not be cached by anyone. */
export const noStore: Readonly<Record<string, string>> = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

/** Discovery documents are public and change rarely. */
export const publicCache: Readonly<Record<string, string>> = {
  'Cache-Control': 'public, max-age=300',
  'Access-Control-Allow-Origin': '*',
};

export function json(body: unknown, status = 200, headers: Readonly<Record<string, string>> = noStore): HttpResponse {
  return text(JSON.stringify(body), 'application/json', status, headers);
}

export function text(body: string, contentType: string, status = 200, headers: Readonly<Record<string, string>> = noStore): HttpResponse {
  return { status, headers: { 'X-Content-Type-Options': 'nosniff', ...headers, 'Content-Type': contentType }, body };
}

export function empty(status: number, headers: Readonly<Record<string, string>> = noStore): HttpResponse {
  return { status, headers: { 'X-Content-Type-Options': 'nosniff', ...headers } };
}

export function errorResponse(error: ProtocolError, dialect: Dialect = 'current'): HttpResponse {
  return { ...json(error.toBody(dialect), error.status, { ...noStore, ...error.headers }), error: error.code };
}
