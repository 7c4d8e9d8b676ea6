import { createHash, sign, verify, type KeyObject } from 'node:crypto';

/**
 * Compact JWS for the service's own tokens, on node:crypto directly: these are signed on every
 * registration and verified on every exchange, so they take the shortest path. Parsing is strict
 * (RFC 8725): exactly three base64url segments, JSON object header and payload, an `alg` that must
 * be the one the key is for, no `crit`, and no unsecured (`none`) tokens at all.
 */

export type SigningAlgorithm = 'ES256' | 'ES384' | 'EdDSA';

interface AlgorithmSpec {
  /** Digest for crypto.sign; null for EdDSA, which hashes internally. */
  hash: string | null;
  keyType: 'ec' | 'ed25519';
  namedCurve?: string;
}

export const algorithms: Record<SigningAlgorithm, AlgorithmSpec> = {
  ES256: { hash: 'sha256', keyType: 'ec', namedCurve: 'P-256' },
  ES384: { hash: 'sha384', keyType: 'ec', namedCurve: 'P-384' },
  EdDSA: { hash: null, keyType: 'ed25519' },
};

export interface JwtParts {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

export class JwtFormatError extends Error {
  override readonly name = 'JwtFormatError';
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;

/**
 * Signs a JWT. The signature is computed on libuv's threadpool (the callback form of crypto.sign), so
 * the event loop spends a fraction of the signing time on it and keeps serving other requests.
 */
export async function encodeJwt(
  alg: SigningAlgorithm,
  privateKey: KeyObject,
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
): Promise<string> {
  return (await signJwt(alg, privateKey, header, payload)).token;
}

/** `encodeJwt`, with the token's parts as `decodeJwt` would give them back, for a caller that keeps them. */
export function signJwt(
  alg: SigningAlgorithm,
  privateKey: KeyObject,
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
): Promise<{ token: string; parts: JwtParts }> {
  const headerJson = JSON.stringify({ ...header, alg });
  const payloadJson = JSON.stringify(payload);
  const signingInput = `${base64url(headerJson)}.${base64url(payloadJson)}`;
  return new Promise((resolve, reject) => {
    sign(algorithms[alg].hash, Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' }, (error, signature) => {
      if (error) return reject(error);
      const parts = { header: JSON.parse(headerJson), payload: JSON.parse(payloadJson), signingInput, signature };
      resolve({ token: `${signingInput}.${signature.toString('base64url')}`, parts });
    });
  });
}

/** Splits and decodes a compact JWS without verifying it. Throws JwtFormatError on anything irregular. */
export function decodeJwt(token: string): JwtParts {
  const segments = token.split('.');
  if (segments.length !== 3) throw new JwtFormatError('a JWT has exactly three dot-separated segments');
  const [h, p, s] = segments as [string, string, string];
  if (!SEGMENT.test(h) || !SEGMENT.test(p) || !SEGMENT.test(s)) throw new JwtFormatError('JWT segments must be base64url without padding');
  return { header: jsonObject(h, 'header'), payload: jsonObject(p, 'payload'), signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') };
}

/** Verifies the signature of decoded parts with a key of a known algorithm, on the threadpool. */
export function verifySignature(alg: SigningAlgorithm, publicKey: KeyObject, parts: JwtParts): Promise<boolean> {
  if (parts.header.alg !== alg) return Promise.resolve(false);
  return new Promise((resolve, reject) => {
    verify(algorithms[alg].hash, Buffer.from(parts.signingInput), { key: publicKey, dsaEncoding: 'ieee-p1363' }, parts.signature, (error, valid) =>
      error ? reject(error) : resolve(valid),
    );
  });
}

/** RFC 8725 §3.11: `typ` compared case-insensitively, with or without the `application/` prefix. */
export function typMatches(typ: unknown, expected: string): boolean {
  if (typeof typ !== 'string') return false;
  const normalized = typ.toLowerCase().replace(/^application\//, '');
  return normalized === expected.toLowerCase();
}

/** RFC 7638 thumbprint of a public JWK, used as its `kid`. */
export function jwkThumbprint(jwk: Record<string, unknown>): string {
  const members = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : jwk.kty === 'OKP' ? ['crv', 'kty', 'x'] : ['e', 'kty', 'n'];
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  return createHash('sha256').update(canonical).digest('base64url');
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

function jsonObject(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new JwtFormatError(`JWT ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JwtFormatError(`JWT ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
