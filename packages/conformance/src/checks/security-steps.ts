/**
 * Steps of the security and events groups: taking JWTs apart and forging them the way an attacker
 * would, judging a refused registration, and running a check made of independent parts.
 */
import { createHmac, createPublicKey, type JsonWebKey } from 'node:crypto';
import { CheckFailed, Skipped } from '../check.ts';
import type { CheckContext } from '../context.ts';
import { describeAnswer, type Answer } from '../http.ts';
import { readRegistration } from '../flows.ts';

export type JsonObject = Record<string, unknown>;

export interface DecodedJwt {
  header: JsonObject;
  payload: JsonObject;
  /** The first two segments exactly as they came (what the signature covers). */
  signingInput: string;
}

const segment = (value: JsonObject): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** The header and payload of a compact JWS, unverified; a check's own artefacts only. */
export function decodeJwt(token: string): DecodedJwt {
  const [header, payload] = token.split('.');
  const json = (part: string | undefined): JsonObject => JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as JsonObject;
  return { header: json(header), payload: json(payload), signingInput: `${header}.${payload}` };
}

/** The same payload under the header `alg: <spelling of none>` and an empty signature (RFC 8725 §3.2). */
export function unsigned(token: string, alg = 'none'): string {
  const { header, signingInput } = decodeJwt(token);
  return `${segment({ ...header, alg })}.${signingInput.split('.')[1]}.`;
}

/** The same payload re-signed with HS256 keyed by `secret`: the key-confusion attack (RFC 8725 §3.1). */
export function hmacSigned(token: string, secret: string | Buffer): string {
  const { header, signingInput } = decodeJwt(token);
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

/** What a refused registration must not carry: anything an agent could use or finish. */
function credentialsIn(answer: Answer): string[] {
  const body = (answer.json ?? {}) as Record<string, any>;
  const registration = readRegistration(answer);
  const found: string[] = [];
  if (registration.assertion) found.push('an identity assertion');
  if (registration.claimToken) found.push('a claim token');
  if (body.access_token) found.push('an access token');
  if (body.identity?.refresh_token || body.refresh_token) found.push('a refresh token');
  return found;
}

/** A registration that must be refused: a 4xx with no credentials in it. */
export function expectRegistrationRefused(answer: Answer, what: string): void {
  const credentials = credentialsIn(answer);
  if (answer.status >= 400 && answer.status < 500 && credentials.length === 0) return;
  const carrying = credentials.length ? ` carrying ${credentials.join(', ')}` : '';
  throw new CheckFailed(`${what} must be refused with a 4xx and no credentials, got ${describeAnswer(answer)}${carrying}`);
}

/** RFC 7521 §5.2 / RFC 7523 §3.1: an unusable assertion at the token endpoint is 400 `invalid_grant`. */
export function expectInvalidGrant(answer: Answer, what: string): void {
  if (answer.status === 400 && answer.json?.error === 'invalid_grant') return;
  throw new CheckFailed(`${what}: expected 400 invalid_grant, got ${describeAnswer(answer)}`);
}

/**
 * Runs the independent parts of one check. Every part runs; the check fails with every failure,
 * is skipped when every part was skipped, and otherwise passes (a skipped part is noted).
 */
export async function runParts(ctx: CheckContext, checkId: string, parts: Record<string, () => Promise<void>>): Promise<void> {
  const failures: string[] = [];
  const skips: string[] = [];
  for (const [name, part] of Object.entries(parts)) {
    try {
      await part();
    } catch (error) {
      if (error instanceof Skipped) skips.push(`${name}: ${error.message}`);
      else if (error instanceof CheckFailed) failures.push(`${name}: ${error.message}`);
      else throw error;
    }
  }
  if (failures.length) throw new CheckFailed(failures.join('; '));
  if (skips.length === Object.keys(parts).length) throw new Skipped(skips.join('; '));
  for (const skip of skips) ctx.note(`${checkId}: part skipped (${skip})`);
}
