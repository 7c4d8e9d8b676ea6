import { ConfigError } from '@authmd/core';
import { isEmail } from '@authmd/protocol';
import { normalizeEmail } from '../engine/users.ts';
import { hashSecret } from '../secrets.ts';

/**
 * The operator's side (issue 15): an admin API for scripts and a console for people. Off unless
 * `apiTokens` or `operators` names someone.
 */
export interface AdminOptions {
  /**
   * Callers of the admin API (`<path>/api/…`): each an operator's name, which every admin action is
   * audited with, and a bearer token of at least 32 characters (a random value), kept as SHA-256 only.
   */
  apiTokens?: { operator: string; token: string }[];
  /**
   * Email addresses that may use the console once signed in, through the host's
   * `signIn.authenticateUser` or the built-in emailed code. Anyone else signed in is refused.
   */
  operators?: string[];
  /** Where the console is served, and its API under `<path>/api`. Default `/admin`. */
  path?: string;
}

export interface AdminConfig {
  path: string;
  /** Each token as `hashSecret` keeps secrets. */
  tokens: { operator: string; tokenHash: string }[];
  /** As `normalizeEmail` leaves them. */
  operators: ReadonlySet<string>;
}

const MIN_TOKEN_LENGTH = 32;
const PATH = /^(\/[a-z0-9][a-z0-9._-]*)+$/;

export function resolveAdmin(options: AdminOptions | undefined): AdminConfig | undefined {
  const given = options?.apiTokens ?? [];
  const operators = options?.operators ?? [];
  if (given.length === 0 && operators.length === 0) return undefined;
  const path = options?.path ?? '/admin';
  if (!PATH.test(path)) throw new ConfigError(`admin.path: "${path}" must be a path such as /admin (lowercase letters, digits, ".", "_", "-"; no trailing slash)`);
  const names = new Set<string>();
  const tokens = given.map(({ operator, token }) => {
    if (typeof operator !== 'string' || !operator.trim()) throw new ConfigError('admin.apiTokens: every token needs the operator it stands for');
    if (names.has(operator)) throw new ConfigError(`admin.apiTokens: ${operator} is listed twice`);
    names.add(operator);
    if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH) {
      throw new ConfigError(`admin.apiTokens: the token of ${operator} must be at least ${MIN_TOKEN_LENGTH} characters (a random value, e.g. openssl rand -base64 32)`);
    }
    return { operator, tokenHash: hashSecret(token) };
  });
  for (const address of operators) {
    if (typeof address !== 'string' || !isEmail(address)) throw new ConfigError(`admin.operators: "${String(address)}" is not an email address`);
  }
  return { path, tokens, operators: new Set(operators.map(normalizeEmail)) };
}
