import type { IssuerRecord } from '../store/contract.ts';
import type { ClaimRequiredResult, ReadyResult } from '../types.ts';
import { when } from './format.ts';

/** What `login --json` prints for a ready result. The access token only with `--show-token`. */
export function readyJson(issuer: string, ready: ReadyResult, showToken: boolean, now = Date.now()): Record<string, unknown> {
  return {
    status: 'ready',
    issuer,
    registration_id: ready.registration_id,
    registration_type: ready.registration_type,
    claimed: ready.claimed,
    token_type: ready.token_type,
    ...(ready.credential_type ? { credential_type: ready.credential_type } : {}),
    scope: ready.scope ?? null,
    expires_in: ready.expires_in,
    expires_at: ready.expires_in === null ? null : new Date(now + ready.expires_in * 1000).toISOString(),
    ...(showToken ? { access_token: ready.access_token } : {}),
  };
}

/** What `--json` prints when a person must act (`--no-wait`). The claim token never leaves the process. */
export function claimJson(claim: ClaimRequiredResult): Record<string, unknown> {
  const { handoff } = claim;
  return {
    status: 'claim_required',
    issuer: handoff.issuer,
    registration_id: claim.registration_id,
    verification_uri: claim.verification_uri,
    user_code: handoff.userCode ?? null,
    read_back: handoff.readBack,
    ...(handoff.emailedTo ? { emailed_to: handoff.emailedTo } : {}),
    attempt_expires_at: claim.attempt_expires_at,
    instructions: claim.instructions,
  };
}

/** The human summary of a ready result. */
export function readySummary(issuer: string, ready: ReadyResult, now = Date.now()): string {
  const state = ready.claimed ? 'linked to a person' : 'not linked to a person';
  return [
    `Ready for ${issuer}`,
    `  registration  ${ready.registration_id} (${ready.registration_type}, ${state})`,
    `  scopes        ${ready.scope ?? '(none listed)'}`,
    credentialLine(ready, now),
  ].join('\n');
}

function credentialLine(ready: ReadyResult, now: number): string {
  const expires = ready.expires_in === null ? 'never expires' : `expires ${when(new Date(now + ready.expires_in * 1000).toISOString(), now)}`;
  if (!ready.credential_type) return `  access token  ${expires}`;
  return `  credential    ${ready.credential_type === 'api_key' ? 'API key' : 'access token'} (dialect v0.1), ${expires}`;
}

/**
 * The dialect a record was made in, and the kind of credential it holds. Records of the identity
 * dialects are the official client's and do not say which of the two it was.
 */
export function dialectOf(record: IssuerRecord): { dialect: string; credential_type: string } {
  if (record.dialect === 'v0.1') return { dialect: 'v0.1', credential_type: record.credential?.type ?? 'none' };
  return { dialect: 'current/v0.7', credential_type: record.identity ? 'identity_assertion' : 'none' };
}

/** A stored record without its secrets, for `status --json`. */
export function recordJson(issuer: string, record: IssuerRecord): Record<string, unknown> {
  return {
    issuer,
    registration_id: record.registration_id,
    registration_type: record.registration_type,
    claimed: record.claimed,
    ...dialectOf(record),
    credential_expires_at: record.credential ? record.credential.expires_at : null,
    assertion_expires_at: record.identity?.expires_at ?? null,
    refresh_token_expires_at: record.identity?.refresh_token?.expires_at ?? null,
    access_token_expires_at: record.access_token?.expires_at ?? null,
    scope: record.access_token?.scope ?? record.credential?.scope ?? null,
  };
}

/** A stored record without its secrets, for `status`. */
export function recordText(issuer: string, record: IssuerRecord, now = Date.now()): string {
  const { dialect, credential_type } = dialectOf(record);
  const lines = [
    issuer,
    `  registration     ${record.registration_id} (${record.registration_type}, ${record.claimed ? 'linked to a person' : 'not linked to a person'})`,
    `  dialect          ${dialect} (credential: ${credential_type})`,
  ];
  if (record.dialect === 'v0.1') {
    const credential = record.credential;
    const life = !credential ? 'none (waiting for a claim, or lost)' : credential.expires_at === null ? 'does not expire' : `expires ${when(credential.expires_at, now)}`;
    lines.push(`  ${credential?.type === 'access_token' ? 'access token ' : 'API key      '}    ${life}`);
    if (credential?.scope) lines.push(`  scopes           ${credential.scope}`);
    return lines.join('\n');
  }
  lines.push(`  assertion        ${record.identity ? `expires ${when(record.identity.expires_at, now)}` : 'none (waiting for a claim, or lost)'}`);
  if (record.identity?.refresh_token) lines.push(`  refresh token    expires ${when(record.identity.refresh_token.expires_at, now)}`);
  lines.push(`  access token     ${record.access_token ? `expires ${when(record.access_token.expires_at, now)}` : 'none'}`);
  if (record.access_token?.scope) lines.push(`  scopes           ${record.access_token.scope}`);
  return lines.join('\n');
}
