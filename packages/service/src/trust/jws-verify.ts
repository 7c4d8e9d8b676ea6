import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { JWTPayload } from 'jose';
import * as errors from 'jose/errors';
import { decodeJwt, typMatches, type JwtParts } from '@authmd/core/keys';
import type { Jwk, JsonWebKeySet } from './jwk.ts';

/**
 * A provider's JWTs (ID-JAGs, SETs) verified with its published keys on node:crypto, on libuv's
 * threadpool. jose 6 verifies through WebCrypto, which cost an ID-JAG about 90 µs of the event
 * loop's time against 20–28 µs here (docs/decisions.md). The rules are jose's own (key selection,
 * claim checks), and so are the errors thrown, so that callers classify them as before.
 */

export interface ProviderJwtOptions {
  /** The issuer's allow-list; the header's `alg` must be on it, exactly as written. */
  algorithms: readonly string[];
  issuer: string;
  typ: string;
  requiredClaims: readonly string[];
  clockToleranceSeconds: number;
  /** Epoch ms. */
  now: number;
}

interface Algorithm {
  kty: 'EC' | 'RSA' | 'OKP';
  /** The curve a key must name (EC, OKP). */
  crv?: string;
  /** The digest; null for EdDSA, which hashes internally. */
  hash: string | null;
  /** RSA-PSS and its salt length (RFC 7518 §3.5: the digest's length). */
  pssSalt?: number;
}

const ALGORITHMS: Record<string, Algorithm> = {
  ES256: { kty: 'EC', crv: 'P-256', hash: 'sha256' },
  ES384: { kty: 'EC', crv: 'P-384', hash: 'sha384' },
  ES512: { kty: 'EC', crv: 'P-521', hash: 'sha512' },
  RS256: { kty: 'RSA', hash: 'sha256' },
  RS384: { kty: 'RSA', hash: 'sha384' },
  RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pssSalt: 32 },
  PS384: { kty: 'RSA', hash: 'sha384', pssSalt: 48 },
  PS512: { kty: 'RSA', hash: 'sha512', pssSalt: 64 },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', hash: null },
  Ed25519: { kty: 'OKP', crv: 'Ed25519', hash: null },
};

/** RFC 7518 §3.3 and §3.5: an RSA key for signatures has at least 2048 bits. */
const MIN_RSA_BITS = 2048;

/** Verifies `token`'s signature with the one key of `keys` it selects, then its claims. */
export async function verifyProviderJwt(token: string, keys: JsonWebKeySet, options: ProviderJwtOptions): Promise<JWTPayload> {
  const parts = decode(token);
  const alg = checkedAlgorithm(parts.header, options.algorithms);
  const key = keySetOf(keys).select(alg, parts.header.kid);
  if (!(await signatureVerifies(ALGORITHMS[alg]!, key, parts))) throw new errors.JWSSignatureVerificationFailed();
  return checkedClaims(parts, options);
}

function decode(token: string): JwtParts {
  try {
    return decodeJwt(token);
  } catch (error) {
    throw new errors.JWSInvalid((error as Error).message);
  }
}

/** The header's `alg`, when it is allowed and nothing in the header asks for processing we do not do. */
function checkedAlgorithm(header: Record<string, unknown>, allowed: readonly string[]): string {
  // RFC 7515 §4.1.11: a `crit` we do not understand must be refused; we understand none (nor RFC 7797's `b64`).
  if (header.crit !== undefined) throw new errors.JWSInvalid('The "crit" header parameter is not supported');
  if (header.b64 !== undefined) throw new errors.JWSInvalid('The "b64" header parameter is not supported');
  const { alg } = header;
  if (typeof alg !== 'string' || !alg) throw new errors.JWSInvalid('JWS "alg" (Algorithm) Header Parameter missing or invalid');
  if (!allowed.includes(alg)) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  if (!Object.hasOwn(ALGORITHMS, alg)) throw new errors.JOSENotSupported('Unsupported "alg" value for a JSON Web Key Set');
  return alg;
}

function signatureVerifies(algorithm: Algorithm, key: KeyObject, parts: JwtParts): Promise<boolean> {
  const keyInput =
    algorithm.kty === 'EC'
      ? { key, dsaEncoding: 'ieee-p1363' as const }
      : algorithm.pssSalt !== undefined
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: algorithm.pssSalt }
        : algorithm.kty === 'RSA'
          ? { key, padding: constants.RSA_PKCS1_PADDING }
          : key;
  return new Promise((resolve) => {
    try {
      verify(algorithm.hash, Buffer.from(parts.signingInput), keyInput, parts.signature, (error, valid) => resolve(!error && valid));
    } catch {
      resolve(false); // a signature of the wrong length, say: it does not verify
    }
  });
}

/** jose's claim checks for the options the trust list passes (`validateClaimsSet`), with its errors. */
function checkedClaims(parts: JwtParts, options: ProviderJwtOptions): JWTPayload {
  const claims = parts.payload as JWTPayload;
  if (!typMatches(parts.header.typ, options.typ)) throw new errors.JWTClaimValidationFailed('unexpected "typ" JWT header value', claims, 'typ', 'check_failed');
  for (const claim of new Set([...options.requiredClaims, 'iss'])) {
    if (!Object.hasOwn(claims, claim)) throw new errors.JWTClaimValidationFailed(`missing required "${claim}" claim`, claims, claim, 'missing');
  }
  if (claims.iss !== options.issuer) throw new errors.JWTClaimValidationFailed('unexpected "iss" claim value', claims, 'iss', 'check_failed');
  const now = Math.floor(options.now / 1000);
  const tolerance = options.clockToleranceSeconds;
  numericDate(claims, 'iat');
  const nbf = numericDate(claims, 'nbf');
  if (nbf !== undefined && nbf > now + tolerance) throw new errors.JWTClaimValidationFailed('"nbf" claim timestamp check failed', claims, 'nbf', 'check_failed');
  const exp = numericDate(claims, 'exp');
  if (exp !== undefined && exp <= now - tolerance) throw new errors.JWTExpired('"exp" claim timestamp check failed', claims, 'exp', 'check_failed');
  return claims;
}

function numericDate(claims: JWTPayload, claim: 'iat' | 'nbf' | 'exp'): number | undefined {
  const value = claims[claim];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new errors.JWTClaimValidationFailed(`"${claim}" claim must be a number`, claims, claim, 'invalid');
  return value;
}

/**
 * A fetched key set with its keys imported on first use and kept: a key is imported once per fetched
 * document, not once per JWT. A refetch is a new document, hence a new set, so a withdrawn or rotated
 * key takes effect at once.
 */
class ProviderKeySet {
  private readonly imported = new Map<Jwk, KeyObject>();

  constructor(private readonly keys: readonly Jwk[]) {}

  /** jose's rules (`createLocalJWKSet`): the one usable key for `alg` and `kid`, or an error. */
  select(alg: string, kid: unknown): KeyObject {
    const algorithm = ALGORITHMS[alg]!;
    const candidates = this.keys.filter((jwk) => usable(jwk, algorithm, alg, kid));
    if (candidates.length === 0) throw new errors.JWKSNoMatchingKey();
    if (candidates.length > 1) throw new errors.JWKSMultipleMatchingKeys();
    return this.import(candidates[0]!, algorithm);
  }

  private import(jwk: Jwk, algorithm: Algorithm): KeyObject {
    let key = this.imported.get(jwk);
    if (!key) {
      try {
        key = createPublicKey({ key: jwk as never, format: 'jwk' });
      } catch (cause) {
        throw new errors.JWKSInvalid('A published key could not be imported', { cause });
      }
      const bits = key.asymmetricKeyDetails?.modulusLength;
      if (algorithm.kty === 'RSA' && !(bits !== undefined && bits >= MIN_RSA_BITS)) throw new errors.JWKSInvalid(`RSA keys must have at least ${MIN_RSA_BITS} bits`);
      this.imported.set(jwk, key);
    }
    return key;
  }
}

/** A key the header may name for `alg`: of its type and curve, for signatures, labelled for `alg` or not at all. */
function usable(jwk: Jwk, algorithm: Algorithm, alg: string, kid: unknown): boolean {
  const ops = jwk.key_ops;
  const opsAllow = ops === undefined || (Array.isArray(ops) && ops.every((op, i) => typeof op === 'string' && ops.indexOf(op) === i) && ops.includes('verify'));
  return (
    (jwk.ext === undefined || typeof jwk.ext === 'boolean') &&
    opsAllow &&
    jwk.kty === algorithm.kty &&
    (kid === undefined || (typeof kid === 'string' && kid === jwk.kid)) &&
    (jwk.alg === undefined || jwk.alg === alg) &&
    (jwk.use === undefined || jwk.use === 'sig') &&
    (algorithm.crv === undefined || jwk.crv === algorithm.crv)
  );
}

const keySets = new WeakMap<JsonWebKeySet, ProviderKeySet>();
function keySetOf(keys: JsonWebKeySet): ProviderKeySet {
  let set = keySets.get(keys);
  if (!set) keySets.set(keys, (set = new ProviderKeySet(keys.keys)));
  return set;
}
