import type { V01CredentialType } from '@authmd/protocol';

/**
 * Where an agent keeps its credentials, one record per service issuer. The shape is the official
 * auth.md client's (`{"version":1,"issuers":{…}}`, protocol-reference §6.3), so either client can
 * read what the other wrote. Claim tokens are never part of it: they live in memory only.
 */
export type RegistrationType = 'anonymous' | 'service_auth' | 'identity_assertion';

export interface StoredIdentity {
  /** The service-signed identity assertion (a JWT). */
  assertion: string;
  /** ISO-8601. */
  expires_at: string;
  refresh_token?: { value: string; expires_at: string };
}

export interface StoredAccessToken {
  value: string;
  /** ISO-8601. */
  expires_at: string;
  scope?: string;
  /** The RFC 8707 resource it was issued for, when one was asked for. */
  resource?: string;
}

/** A credential the service handed out directly (the v0.1 dialect): used as a Bearer token as it is. */
export interface StoredCredential {
  type: V01CredentialType;
  value: string;
  /** ISO-8601; null for an API key, which does not expire. */
  expires_at: string | null;
  scope?: string;
}

export interface IssuerRecord {
  registration_id: string;
  registration_type: RegistrationType;
  /** Bound to a user (claimed, or registered with an ID-JAG). */
  claimed: boolean;
  /** Set only for registrations made in the v0.1 dialect; the others are the official client's records. */
  dialect?: 'v0.1';
  identity?: StoredIdentity;
  access_token?: StoredAccessToken;
  credential?: StoredCredential;
}

export interface CredentialStore {
  get(issuer: string): Promise<IssuerRecord | undefined>;
  /** Every record, by issuer. */
  list(): Promise<Record<string, IssuerRecord>>;
  /**
   * Read-modify-write of one issuer's record with exclusive access (across processes for the file
   * store): `change` gets the current record and returns the new one, or undefined to delete it.
   */
  update(issuer: string, change: (current: IssuerRecord | undefined) => IssuerRecord | undefined): Promise<IssuerRecord | undefined>;
}
