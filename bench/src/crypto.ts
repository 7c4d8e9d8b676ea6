import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { decodeJwt, encodeJwt, verifySignature } from '@authmd/core/keys';

/**
 * ES256 ceilings: raw node:crypto sign and verify over a fixed ~350-byte input, on the event loop
 * and on libuv's threadpool, against the service's own JWT path (encodeJwt for minting an identity
 * assertion, decodeJwt + verifySignature for checking one), which signs and verifies on the
 * threadpool and is therefore compared with the threadpool ceiling.
 */

export interface CryptoResult {
  name: string;
  opsPerSecond: number;
  /** The raw node:crypto measurement this one is compared with (undefined for the ceilings themselves). */
  ceiling?: string;
}

const ISSUER = 'http://127.0.0.1:8787';
const b64 = (bytes: number) => randomBytes(bytes).toString('base64url');

/** Claims shaped like the service's identity assertions (engine/assertions.ts). */
function assertionClaims(): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { iss: ISSUER, sub: `reg_${b64(16)}`, aud: ISSUER, jti: b64(16), iat: now, exp: now + 3600, gen: 0 };
}

type Op = () => unknown;

/** Runs `op` for about `ms` milliseconds, `concurrency` at a time when it returns promises; ops/s. */
async function run(op: Op, ms: number, concurrency: number): Promise<number> {
  let ops = 0;
  const start = performance.now();
  const deadline = start + ms;
  const lane = async () => {
    while (performance.now() < deadline) {
      for (let i = 0; i < 25; i++) await op();
      ops += 25;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return ops / ((performance.now() - start) / 1000);
}

/**
 * Operations per second of each op, about `ms` milliseconds each: after a warm-up, the ops take
 * turns in `rounds` short runs and each reports its median, so a slow moment of the machine does
 * not land on one op only. Asynchronous ops (the threadpool ones) run 32 at a time, as a loaded
 * server would have them.
 */
export async function opsPerSecond(ops: Record<string, { op: Op; concurrency: number }>, ms: number, rounds = 5): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = {};
  for (const [name, { op }] of Object.entries(ops)) {
    for (let i = 0; i < 200; i++) await op();
    samples[name] = [];
  }
  for (let round = 0; round < rounds; round++) {
    for (const [name, { op, concurrency }] of Object.entries(ops)) samples[name]!.push(await run(op, ms / rounds, concurrency));
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!]));
}

export async function measureCrypto(ms: number): Promise<{ results: CryptoResult[]; inputBytes: number }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const header = { typ: 'oauth-id-jag+jwt', kid: b64(32) };
  const token = await encodeJwt('ES256', privateKey, header, assertionClaims());
  const parts = decodeJwt(token);
  const input = Buffer.from(parts.signingInput);
  const key = { key: privateKey, dsaEncoding: 'ieee-p1363' as const };
  const pub = { key: publicKey, dsaEncoding: 'ieee-p1363' as const };
  const signature = sign('sha256', input, key);
  if (!verify('sha256', input, pub, signature) || !(await verifySignature('ES256', publicKey, decodeJwt(token)))) {
    throw new Error('the crypto bench set-up does not verify');
  }
  const onPool = <T>(start: (done: (error: Error | null, value: T) => void) => void) =>
    new Promise<T>((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value))));

  const names = {
    rawSign: 'raw ES256 sign (node:crypto, event loop)',
    rawVerify: 'raw ES256 verify (node:crypto, event loop)',
    poolSign: 'raw ES256 sign (node:crypto, threadpool)',
    poolVerify: 'raw ES256 verify (node:crypto, threadpool)',
    mint: 'service: mint assertion (encodeJwt)',
    verify: 'service: verify assertion (decodeJwt + verifySignature)',
  };
  const measured = await opsPerSecond(
    {
      [names.rawSign]: { op: () => sign('sha256', input, key), concurrency: 1 },
      [names.rawVerify]: { op: () => verify('sha256', input, pub, signature), concurrency: 1 },
      [names.poolSign]: { op: () => onPool<Buffer>((done) => sign('sha256', input, key, done)), concurrency: 32 },
      [names.poolVerify]: { op: () => onPool<boolean>((done) => verify('sha256', input, pub, signature, done)), concurrency: 32 },
      [names.mint]: { op: () => encodeJwt('ES256', privateKey, header, assertionClaims()), concurrency: 32 },
      [names.verify]: {
        op: async () => {
          if (!(await verifySignature('ES256', publicKey, decodeJwt(token)))) throw new Error('verification failed');
        },
        concurrency: 32,
      },
    },
    ms,
  );
  const results: CryptoResult[] = [
    { name: names.rawSign, opsPerSecond: measured[names.rawSign]! },
    { name: names.rawVerify, opsPerSecond: measured[names.rawVerify]! },
    { name: names.poolSign, opsPerSecond: measured[names.poolSign]! },
    { name: names.poolVerify, opsPerSecond: measured[names.poolVerify]! },
    { name: names.mint, opsPerSecond: measured[names.mint]!, ceiling: names.poolSign },
    { name: names.verify, opsPerSecond: measured[names.verify]!, ceiling: names.poolVerify },
  ];
  return { results, inputBytes: input.length };
}
