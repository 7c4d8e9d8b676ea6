import { generateKeyPairSync, sign as nodeSign, constants, type KeyObject } from 'node:crypto';
import { createLocalJWKSet, exportJWK, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { verifyProviderJwt } from '../../src/trust/jws-verify.ts';

// Every key import goes through this spy, so that a test can count them.
const createPublicKey = vi.hoisted(() => ({ spy: undefined as unknown as ReturnType<typeof vi.fn> }));
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  createPublicKey.spy = vi.fn(original.createPublicKey);
  return { ...original, createPublicKey: createPublicKey.spy };
});

type Jwk = Record<string, unknown>;

/**
 * The provider JWT verifier on node:crypto (jws-verify.ts) against jose, which it replaced on this
 * path: for every algorithm the trust list accepts, valid tokens and each kind of bad one must get
 * the same answer from both (accepted, or refused with the same jose error class, which is what the
 * endpoints turn into a reason), plus the checks jose leaves to its caller.
 */

const ISSUER = 'https://provider.example';
const TYP = 'oauth-id-jag+jwt';
const NOW = Date.UTC(2026, 11, 7, 12, 0, 0);
const now = Math.floor(NOW / 1000);
const ALL = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519'] as const;
type Alg = (typeof ALL)[number];
const options = { algorithms: [...ALL], issuer: ISSUER, typ: TYP, requiredClaims: ['exp', 'iat', 'jti', 'sub'], clockToleranceSeconds: 60, now: NOW };

function keyPair(alg: Alg): { privateKey: KeyObject; publicKey: KeyObject } {
  if (alg.startsWith('ES')) return generateKeyPairSync('ec', { namedCurve: { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }[alg as 'ES256'] });
  if (alg.startsWith('RS') || alg.startsWith('PS')) return generateKeyPairSync('rsa', { modulusLength: 2048 });
  return generateKeyPairSync('ed25519');
}

const keys = new Map<Alg, { privateKey: KeyObject; jwk: Jwk }>();
for (const alg of ALL) {
  const { privateKey, publicKey } = keyPair(alg);
  keys.set(alg, { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: `kid-${alg}`, alg, use: 'sig' } });
}
const jwks = { keys: [...keys.values()].map((k) => k.jwk) } as never;

const claims = (extra: JWTPayload = {}): JWTPayload => ({ iss: ISSUER, sub: 'user-1', aud: 'https://service.example', jti: `j-${Math.random()}`, iat: now, exp: now + 300, ...extra });

async function mint(alg: Alg, payload: JWTPayload = claims(), header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, kid: `kid-${alg}`, typ: TYP, ...header }).sign(keys.get(alg)!.privateKey);
}

/** What jose answers, as the class of its error or 'accepted'. */
async function jose(token: string, set: unknown = jwks): Promise<string> {
  try {
    await jwtVerify(token, createLocalJWKSet(set as never), { ...options, algorithms: [...options.algorithms], requiredClaims: [...options.requiredClaims], currentDate: new Date(NOW), clockTolerance: 60 });
    return 'accepted';
  } catch (error) {
    return (error as Error).constructor.name;
  }
}

async function ours(token: string, set: unknown = jwks, overrides: Partial<typeof options> = {}): Promise<string> {
  try {
    await verifyProviderJwt(token, set as never, { ...options, ...overrides });
    return 'accepted';
  } catch (error) {
    return (error as Error).constructor.name;
  }
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const [head, sig] = [0, 2];
const segment = (token: string, i: number) => token.split('.')[i]!;

describe('provider JWTs on node:crypto, next to jose', () => {
  it.each(ALL)('a valid %s token is accepted by both', async (alg) => {
    const token = await mint(alg);
    expect(await ours(token)).toBe('accepted');
    expect(await jose(token)).toBe('accepted');
  });

  it.each(ALL)('a %s token with one changed claim is refused by both as a bad signature', async (alg) => {
    const token = await mint(alg);
    const forged = `${segment(token, head)}.${b64({ ...claims(), sub: 'someone-else' })}.${segment(token, sig)}`;
    expect(await ours(forged)).toBe('JWSSignatureVerificationFailed');
    expect(await jose(forged)).toBe('JWSSignatureVerificationFailed');
  });

  const cases: [string, () => Promise<string>][] = [
    ['expired beyond the tolerance', () => mint('ES256', claims({ exp: now - 61 }))],
    ['expired within the tolerance', () => mint('ES256', claims({ exp: now - 59 }))],
    ['not valid before beyond the tolerance', () => mint('ES256', claims({ nbf: now + 61 }))],
    ['not valid before within the tolerance', () => mint('ES256', claims({ nbf: now + 59 }))],
    ['an iat that is not a number', () => mint('ES256', claims({ iat: String(now) as never }))],
    ['an exp that is not a number', () => mint('ES256', claims({ exp: String(now + 300) as never }))],
    ['without jti', () => mint('ES256', claims({ jti: undefined }))],
    ['without iss', () => mint('ES256', claims({ iss: undefined }))],
    ['another iss', () => mint('ES256', claims({ iss: 'https://other.example' }))],
    ['another typ', () => mint('ES256', claims(), { typ: 'JWT' })],
    ['the typ with its application/ prefix, in capitals', () => mint('ES256', claims(), { typ: 'Application/OAUTH-ID-JAG+JWT' })],
    ['an unknown kid', () => mint('ES256', claims(), { kid: 'kid-unknown' })],
    ['the kid of a key of another type', () => mint('ES256', claims(), { kid: 'kid-RS256' })],
    ['an RS256 signature under the PS256 key', () => mint('RS256', claims(), { kid: 'kid-PS256' })],
  ];
  it.each(cases)('%s: both give the same answer', async (_name, make) => {
    const token = await make();
    const theirs = await jose(token);
    expect(await ours(token)).toBe(theirs === 'JWTInvalid' ? 'JWSInvalid' : theirs);
  });

  it('an ECDSA signature in DER rather than the JWS encoding is refused by both', async () => {
    const input = `${b64({ alg: 'ES256', kid: 'kid-ES256', typ: TYP })}.${b64(claims())}`;
    const der = nodeSign('sha256', Buffer.from(input), keys.get('ES256')!.privateKey).toString('base64url');
    expect(await ours(`${input}.${der}`)).toBe('JWSSignatureVerificationFailed');
    expect(await jose(`${input}.${der}`)).toBe('JWSSignatureVerificationFailed');
  });

  it('an unknown crit is refused by both, with errors the endpoints read as invalid_token', async () => {
    const input = `${b64({ alg: 'ES256', kid: 'kid-ES256', typ: TYP, crit: ['urn:example:x'], 'urn:example:x': 1 })}.${b64(claims())}`;
    const signature = nodeSign('sha256', Buffer.from(input), { key: keys.get('ES256')!.privateKey, dsaEncoding: 'ieee-p1363' });
    const token = `${input}.${signature.toString('base64url')}`;
    expect(await ours(token)).toBe('JWSInvalid');
    expect(await jose(token)).toBe('JOSENotSupported');
  });

  it('a PSS signature with a salt shorter than the digest is refused by both', async () => {
    const input = `${b64({ alg: 'PS256', kid: 'kid-PS256', typ: TYP })}.${b64(claims())}`;
    const signature = nodeSign('sha256', Buffer.from(input), { key: keys.get('PS256')!.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 0 });
    const token = `${input}.${signature.toString('base64url')}`;
    expect(await ours(token)).toBe('JWSSignatureVerificationFailed');
    expect(await jose(token)).toBe('JWSSignatureVerificationFailed');
  });

  it('key selection: only a key for signatures that allows verify, and exactly one', async () => {
    const { jwk } = keys.get('ES256')!;
    const token = await mint('ES256', claims(), { kid: undefined });
    for (const [set, expected] of [
      [{ keys: [jwk] }, 'accepted'],
      [{ keys: [{ ...jwk, use: 'enc' }] }, 'JWKSNoMatchingKey'],
      [{ keys: [{ ...jwk, key_ops: ['sign'] }] }, 'JWKSNoMatchingKey'],
      [{ keys: [{ ...jwk, key_ops: ['verify', 'verify'] }] }, 'JWKSNoMatchingKey'],
      [{ keys: [{ ...jwk, key_ops: ['verify'] }] }, 'accepted'],
      [{ keys: [{ ...jwk, alg: 'ES384' }] }, 'JWKSNoMatchingKey'],
      [{ keys: [{ ...jwk, alg: undefined }] }, 'accepted'],
      [{ keys: [jwk, { ...jwk, kid: 'twin' }] }, 'JWKSMultipleMatchingKeys'],
    ] as const) {
      expect(await ours(token, set), JSON.stringify(set)).toBe(expected);
      expect(await jose(token, set), JSON.stringify(set)).toBe(expected);
    }
  });

  it('an RSA key under 2048 bits is refused, though the signature is good', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'small', alg: 'RS256' };
    const input = `${b64({ alg: 'RS256', kid: 'small', typ: TYP })}.${b64(claims())}`;
    const token = `${input}.${nodeSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
    expect(await ours(token, { keys: [jwk] })).toBe('JWKSInvalid');
    expect(await jose(token, { keys: [jwk] })).toBe('TypeError');
  });

  it('an alg off the allow-list is refused before any key is looked at', async () => {
    const token = await mint('RS256');
    expect(await ours(token, { keys: [] }, { algorithms: ['ES256'] })).toBe('JOSEAlgNotAllowed');
  });

  it('a b64 header parameter is refused', async () => {
    expect(await ours(await mint('ES256', claims(), { b64: true }))).toBe('JWSInvalid');
  });

  it('a key is imported once per fetched key set, and again for a new set', async () => {
    const set = { keys: [keys.get('ES384')!.jwk] };
    createPublicKey.spy.mockClear();
    for (let i = 0; i < 5; i++) expect(await ours(await mint('ES384'), set)).toBe('accepted');
    expect(createPublicKey.spy).toHaveBeenCalledTimes(1);
    expect(await ours(await mint('ES384'), { keys: [...set.keys] })).toBe('accepted');
    expect(createPublicKey.spy).toHaveBeenCalledTimes(2);
  });
});
