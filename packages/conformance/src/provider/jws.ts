import { createHmac, sign, type KeyObject } from 'node:crypto';

export type Members = Record<string, unknown>;

/** `base` with `overrides` applied: a member given the value `undefined` is removed. */
export function applyOverrides(base: Members, overrides: Members = {}): Members {
  const result: Members = { ...base };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete result[name];
    else result[name] = value;
  }
  return result;
}

export interface JwsSigner {
  /** An ES256 (P-256) private key. */
  privateKey: KeyObject;
  /** What an `HS256` header is signed with. */
  hmacSecret: string;
}

const segment = (value: Members) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * A compact JWS of exactly this header and payload. The signature follows the header's `alg`, so a
 * check can send what an attacker sends: `none` (in any case) gets an empty signature segment,
 * `HS256` an HMAC keyed with `hmacSecret`, and every other `alg` an ES256 signature by the private
 * key (a mislabelled algorithm is then the service's to notice).
 */
export function compactJws(header: Members, payload: Members, signer: JwsSigner): Promise<string> {
  const input = `${segment(header)}.${segment(payload)}`;
  const alg = typeof header.alg === 'string' ? header.alg : '';
  if (alg.toLowerCase() === 'none') return Promise.resolve(`${input}.`);
  if (alg === 'HS256') return Promise.resolve(`${input}.${createHmac('sha256', signer.hmacSecret).update(input).digest('base64url')}`);
  return new Promise((resolve, reject) => {
    sign('sha256', Buffer.from(input), { key: signer.privateKey, dsaEncoding: 'ieee-p1363' }, (error, signature) =>
      error ? reject(error) : resolve(`${input}.${signature.toString('base64url')}`),
    );
  });
}
