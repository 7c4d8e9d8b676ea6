import { EXPIRY_SLACK_MS } from '../lifetimes.ts';
import type { IssuerRecord, StoredCredential } from '../store/contract.ts';
import type { ReadyResult } from '../types.ts';

/** The credential of a v0.1 answer (`credential_type`, `credential`, `credential_expires`, `scopes`), if it has one. */
export function credentialOf(body: Record<string, any>): StoredCredential | undefined {
  if (typeof body.credential !== 'string') return undefined;
  const type = body.credential_type === 'access_token' ? 'access_token' : 'api_key';
  const expires = typeof body.credential_expires === 'string' ? body.credential_expires : null;
  return { type, value: body.credential, expires_at: expires, ...scopeOf(body) };
}

/** `scopes` (a list in v0.1) as the space-separated `scope` the store and results carry. */
export function scopeOf(body: Record<string, any>): { scope?: string } {
  return Array.isArray(body.scopes) && body.scopes.length ? { scope: body.scopes.join(' ') } : {};
}

/** Still usable: an API key, or an access token with some life left. */
export function usable(credential: StoredCredential | undefined, now: number): credential is StoredCredential {
  return credential !== undefined && (credential.expires_at === null || Date.parse(credential.expires_at) - EXPIRY_SLACK_MS > now);
}

export function readyFromCredential(record: IssuerRecord, credential: StoredCredential, now: number): ReadyResult {
  return {
    status: 'ready',
    access_token: credential.value,
    token_type: 'Bearer',
    expires_in: credential.expires_at === null ? null : Math.max(0, Math.floor((Date.parse(credential.expires_at) - now) / 1000)),
    ...(credential.scope ? { scope: credential.scope } : {}),
    credential_type: credential.type,
    registration_id: record.registration_id,
    registration_type: record.registration_type,
    claimed: record.claimed,
  };
}
