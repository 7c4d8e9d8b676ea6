import { DuplicateKeyError, StoreUnavailableError } from '../contract.ts';
import type { Spec } from './sql.ts';

/** PostgreSQL error classes and client errors that mean "the database cannot be reached right now". */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

export function translate(error: unknown): unknown {
  if (error instanceof StoreUnavailableError || error instanceof DuplicateKeyError) return error;
  const e = error as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : String(error);
  if (
    UNAVAILABLE_CODES.has(code) ||
    code.startsWith('08') || // connection exception
    code === '57P01' || // admin_shutdown
    code === '57P02' || // crash_shutdown
    code === '57P03' || // cannot_connect_now
    code === '53300' || // too_many_connections
    /timeout exceeded when trying to connect|Connection terminated|connection timeout|Client has encountered a connection error|Query read timeout/i.test(message)
  ) {
    return new StoreUnavailableError(`PostgreSQL is unavailable: ${message}`, { cause: error });
  }
  if (code === '55P03' || code === '57014') {
    // lock_not_available, query_canceled (statement_timeout): a wait that ended, never a hang.
    return new Error(
      `PostgreSQL gave up waiting (${message}): a slow statement, a transaction holding rows too long, or code inside a transaction that used the store instead of the transaction handle`,
      { cause: error },
    );
  }
  return error;
}

/** Maps unique violations (23505) to DuplicateKeyError, naming the column from the constraint name. */
export async function withDuplicateKeys<T>(spec: Spec, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (error) {
    throw asDuplicateKey(spec, error);
  }
}

export function asDuplicateKey(spec: Spec, error: unknown): unknown {
  const e = error as { code?: unknown; constraint?: unknown };
  if (e.code !== '23505') return error;
  const constraint = typeof e.constraint === 'string' ? e.constraint : '';
  const column = (spec.unique ?? []).find((col) => constraint === `${spec.name}_${col}_unique`) ?? spec.key;
  return new DuplicateKeyError(spec.name, column);
}

