/**
 * JWTs as a black-box tester handles them: read without verifying, and forged the ways an attacker
 * would (a changed claim under the old signature, `alg: none`, HS256 keyed with a public key).
 */
import { createHmac, createPublicKey, type JsonWebKey } from 'node:crypto';
import { CheckFailed } from './check.ts';

export type JsonObject = Record<string, unknown>;

export interface DecodedJwt {
  header: JsonObject;
  payload: JsonObject;
  /** The first two segments exactly as they came (what the signature covers). */
  signingInput: string;
}

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);
const segment = (value: JsonObject): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** The header and payload of a compact JWS, unverified; undefined when it is not one. */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const [header, payload] = parts.slice(0, 2).map((part) => JSON.parse(Buffer.from(part!, 'base64url').toString('utf8')) as unknown);
    if (!isObject(header) || !isObject(payload)) return undefined;
    return { header, payload, signingInput: `${parts[0]}.${parts[1]}` };
  } catch {
    return undefined;
  }
}

/** Like `decodeJwt`, for a token that must be a JWT: a failure of the check names `what` otherwise. */
export function mustDecodeJwt(token: unknown, what: string): DecodedJwt {
  const decoded = typeof token === 'string' ? decodeJwt(token) : undefined;
  if (!decoded) throw new CheckFailed(`${what} is not a JWT: ${JSON.stringify(token)?.slice(0, 120)}`);
  return decoded;
}

/** The same JWS with one payload claim changed and the original signature kept: what a forger sends. */
export function tamperedJwt(token: string, claim: string, value: unknown): string {
  const { payload } = mustDecodeJwt(token, 'the token to tamper with');
  const [header, , signature] = token.split('.');
  return `${header}.${segment({ ...payload, [claim]: value })}.${signature}`;
}

/** The same payload under the header `alg: <spelling of none>` and an empty signature (RFC 8725 §3.2). */
export function unsigned(token: string, alg = 'none'): string {
  const { header, signingInput } = mustDecodeJwt(token, 'the token to strip');
  return `${segment({ ...header, alg })}.${signingInput.split('.')[1]}.`;
}

/** The same payload re-signed with HS256 keyed by `secret`: the key-confusion attack (RFC 8725 §3.1). */
export function hmacSigned(token: string, secret: string | Buffer): string {
  const { header, signingInput } = mustDecodeJwt(token, 'the token to re-sign');
  const input = `${segment({ ...header, alg: 'HS256' })}.${signingInput.split('.')[1]}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/**
 * The forms in which a verifier that confuses keys could take a public key as an HMAC secret: the
 * JWK as JSON, the PEM and the DER of its SubjectPublicKeyInfo.
 */
export function publicKeyAsSecrets(jwk: JsonWebKey): Array<{ form: string; secret: string | Buffer }> {
  const forms: Array<{ form: string; secret: string | Buffer }> = [{ form: 'the JWK as JSON', secret: JSON.stringify(jwk) }];
  try {
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    forms.push({ form: 'the PEM public key', secret: key.export({ type: 'spki', format: 'pem' }) as string });
    forms.push({ form: 'the DER public key', secret: key.export({ type: 'spki', format: 'der' }) });
  } catch {
    // A key type node cannot import: the JSON form is still an attack worth sending.
  }
  return forms;
}

/** RFC 8725 §3.11: `typ` compares case-insensitively, and `x` means `application/x`. */
export function typIs(typ: unknown, expected: string): boolean {
  if (typeof typ !== 'string') return false;
  const normalized = typ.toLowerCase();
  return normalized === expected || normalized === `application/${expected}`;
}
