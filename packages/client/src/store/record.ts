/**
 * Validation and copying of credential records, shared by both stores. `sanitizeRecord` returns a
 * fresh object holding only the members the contract defines, so a copy never shares state with its
 * source and nothing unknown (a claim token, say) is ever kept or written.
 */
import type { IssuerRecord, RegistrationType, StoredAccessToken, StoredCredential, StoredIdentity } from './contract.ts';

const REGISTRATION_TYPES: readonly RegistrationType[] = ['anonymous', 'service_auth', 'identity_assertion'];

/** Thrown by `sanitizeRecord`; `message` says which member is wrong. */
export class InvalidRecordError extends TypeError {
  override name = 'InvalidRecordError';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(source: Record<string, unknown>, key: string, where: string): string {
  const value = source[key];
  if (typeof value !== 'string') throw new InvalidRecordError(`${where}.${key} must be a string`);
  return value;
}

/** An optional member: absent, undefined and null all mean "not there". */
function optional(source: Record<string, unknown>, key: string): unknown {
  const value = source[key];
  return value === null ? undefined : value;
}

function sanitizeIdentity(value: unknown, where: string): StoredIdentity {
  if (!isObject(value)) throw new InvalidRecordError(`${where} must be an object`);
  const identity: StoredIdentity = {
    assertion: requireString(value, 'assertion', where),
    expires_at: requireString(value, 'expires_at', where),
  };
  const refresh = optional(value, 'refresh_token');
  if (refresh !== undefined) {
    if (!isObject(refresh)) throw new InvalidRecordError(`${where}.refresh_token must be an object`);
    identity.refresh_token = {
      value: requireString(refresh, 'value', `${where}.refresh_token`),
      expires_at: requireString(refresh, 'expires_at', `${where}.refresh_token`),
    };
  }
  return identity;
}

function sanitizeAccessToken(value: unknown, where: string): StoredAccessToken {
  if (!isObject(value)) throw new InvalidRecordError(`${where} must be an object`);
  const token: StoredAccessToken = {
    value: requireString(value, 'value', where),
    expires_at: requireString(value, 'expires_at', where),
  };
  for (const key of ['scope', 'resource'] as const) {
    const member = optional(value, key);
    if (member === undefined) continue;
    if (typeof member !== 'string') throw new InvalidRecordError(`${where}.${key} must be a string`);
    token[key] = member;
  }
  return token;
}

const CREDENTIAL_TYPES: readonly StoredCredential['type'][] = ['api_key', 'access_token'];

function sanitizeCredential(value: unknown, where: string): StoredCredential {
  if (!isObject(value)) throw new InvalidRecordError(`${where} must be an object`);
  const type = value['type'];
  if (!CREDENTIAL_TYPES.includes(type as StoredCredential['type'])) throw new InvalidRecordError(`${where}.type must be one of ${CREDENTIAL_TYPES.join(', ')}`);
  const expires = optional(value, 'expires_at');
  if (expires !== undefined && typeof expires !== 'string') throw new InvalidRecordError(`${where}.expires_at must be a string or null`);
  const credential: StoredCredential = { type: type as StoredCredential['type'], value: requireString(value, 'value', where), expires_at: expires ?? null };
  const scope = optional(value, 'scope');
  if (scope !== undefined) {
    if (typeof scope !== 'string') throw new InvalidRecordError(`${where}.scope must be a string`);
    credential.scope = scope;
  }
  return credential;
}

/**
 * A validated deep copy of `value` with only the contract's members. Throws `InvalidRecordError`
 * naming the offending member (prefixed with `where`) when the shape is wrong.
 */
export function sanitizeRecord(value: unknown, where = 'record'): IssuerRecord {
  if (!isObject(value)) throw new InvalidRecordError(`${where} must be an object`);
  const registrationType = value['registration_type'];
  if (!REGISTRATION_TYPES.includes(registrationType as RegistrationType)) {
    throw new InvalidRecordError(`${where}.registration_type must be one of ${REGISTRATION_TYPES.join(', ')}`);
  }
  if (typeof value['claimed'] !== 'boolean') throw new InvalidRecordError(`${where}.claimed must be a boolean`);
  const record: IssuerRecord = {
    registration_id: requireString(value, 'registration_id', where),
    registration_type: registrationType as RegistrationType,
    claimed: value['claimed'],
  };
  const dialect = optional(value, 'dialect');
  if (dialect !== undefined) {
    if (dialect !== 'v0.1') throw new InvalidRecordError(`${where}.dialect must be v0.1 when present`);
    record.dialect = dialect;
  }
  const identity = optional(value, 'identity');
  if (identity !== undefined) record.identity = sanitizeIdentity(identity, `${where}.identity`);
  const accessToken = optional(value, 'access_token');
  if (accessToken !== undefined) record.access_token = sanitizeAccessToken(accessToken, `${where}.access_token`);
  const credential = optional(value, 'credential');
  if (credential !== undefined) record.credential = sanitizeCredential(credential, `${where}.credential`);
  return record;
}

export function requireIssuer(issuer: unknown): string {
  if (typeof issuer !== 'string' || issuer.length === 0) throw new TypeError('issuer must be a non-empty string');
  return issuer;
}

/** A plain object from entries; `Object.fromEntries` defines own properties, so even `__proto__` is safe. */
export function toRecordMap(entries: Iterable<[string, IssuerRecord]>): Record<string, IssuerRecord> {
  return Object.fromEntries(Array.from(entries, ([issuer, record]) => [issuer, sanitizeRecord(record)]));
}
