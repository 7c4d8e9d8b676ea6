import { isEmail } from '@authmd/protocol';
import type { ServiceOptions } from '@authmd/service';

/** Who may use the demo's console when AUTHMD_OPERATORS is unset: sign in as this address through the development mailbox. */
export const DEFAULT_OPERATOR = 'operator@example.com';
const MIN_TOKEN = 32;

/**
 * AUTHMD_OPERATORS (comma-separated addresses that may use the console at /admin; default
 * operator@example.com) and AUTHMD_ADMIN_TOKEN (a bearer token of 32+ characters for the admin API
 * and `authmd admin`; unset, the API has no caller). A refusal never repeats the token.
 */
export function readAdminSettings(env: NodeJS.ProcessEnv): { ok: true; admin: NonNullable<ServiceOptions['admin']> } | { ok: false; message: string } {
  const operators = (env.AUTHMD_OPERATORS?.trim() || DEFAULT_OPERATOR).split(',').map((address) => address.trim()).filter(Boolean);
  const invalid = operators.find((address) => !isEmail(address));
  if (invalid !== undefined) return { ok: false, message: `AUTHMD_OPERATORS must be email addresses separated by commas (got "${invalid}"). Example: AUTHMD_OPERATORS=you@example.com npm start` };
  const token = env.AUTHMD_ADMIN_TOKEN?.trim() || undefined;
  if (token !== undefined && token.length < MIN_TOKEN) {
    return { ok: false, message: `AUTHMD_ADMIN_TOKEN must be at least ${MIN_TOKEN} characters (a random value). Example: AUTHMD_ADMIN_TOKEN=$(openssl rand -base64 32) npm start` };
  }
  return { ok: true, admin: { operators, ...(token ? { apiTokens: [{ operator: 'admin-token', token }] } : {}) } };
}
