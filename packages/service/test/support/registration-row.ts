import type { RegistrationRow } from '../../src/schema.ts';

/** A registration row as the store holds one: unclaimed, anonymous, nothing linked; `fields` set the rest. */
export function registrationRow(fields: Pick<RegistrationRow, 'id' | 'created_at'> & Partial<RegistrationRow>): RegistrationRow {
  return {
    type: 'anonymous',
    generation: 0,
    claim_token_hash: null,
    claim_expires_at: null,
    claimed_at: null,
    revoked_at: null,
    revoked_by: null,
    user_id: null,
    login_hint: null,
    provider_iss: null,
    provider_sub: null,
    client_id: null,
    delegation_key: null,
    link_user_id: null,
    current_attempt_id: null,
    client_ip: null,
    expires_at: null,
    credential_type: null,
    ...fields,
  };
}
