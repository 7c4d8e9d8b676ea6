import { iso, type V01CredentialView } from '@authmd/protocol';
import { EXPIRY_SLACK_MS } from '../lifetimes.ts';
import type { IssuerRecord, StoredCredential } from '../store/contract.ts';
import type { ReadyResult } from '../types.ts';

/** What the store keeps of a v0.1 credential: its expiry as ISO-8601 (null for an API key), its scopes as one `scope`. */
export function storedCredential(credential: V01CredentialView): StoredCredential {
  return { type: credential.type, value: credential.value, expires_at: credential.expiresAt === null ? null : iso(credential.expiresAt), ...scopeOf(credential.scopes) };
}

/** v0.1's `scopes` list as the space-separated `scope` the store and results carry. */
export function scopeOf(scopes: readonly string[]): { scope?: string } {
  return scopes.length ? { scope: scopes.join(' ') } : {};
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
