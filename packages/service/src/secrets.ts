import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Where randomness comes from; injectable so tests can make codes and identifiers predictable. */
export interface RandomSource {
  bytes(length: number): Uint8Array;
}

/**
 * The system CSPRNG, drawn from a pool refilled 4 KiB at a time: one `getrandom` call serves a
 * hundred identifiers instead of one each. Every byte is handed out once; a used pool is dropped,
 * never refilled in place, so a slice a caller still holds is never overwritten.
 */
export const cryptoRandom: RandomSource = (() => {
  const POOL_BYTES = 4096;
  let pool = Buffer.alloc(0);
  let offset = 0;
  return {
    bytes(length: number): Uint8Array {
      if (length > POOL_BYTES / 8) return randomBytes(length);
      if (offset + length > pool.length) {
        pool = randomBytes(POOL_BYTES);
        offset = 0;
      }
      offset += length;
      return pool.subarray(offset - length, offset);
    },
  };
})();

/** An opaque, unguessable value such as `clm_…` or `at_…`: a prefix and 32 random bytes in base64url. */
export function opaqueValue(random: RandomSource, prefix: string, length = 32): string {
  return prefix + Buffer.from(random.bytes(length)).toString('base64url');
}

/**
 * An identifier that sorts by creation time: a prefix, the millisecond in 10 base-32 digits (`0-9a-v`,
 * which sort as bytes as they do as numbers), then `length` random bytes in base64url. New rows then
 * land at the right edge of the key's B-tree instead of on a random page each.
 */
export function timeOrderedValue(random: RandomSource, prefix: string, now: number, length = 12): string {
  return prefix + Math.max(0, Math.floor(now)).toString(32).padStart(10, '0') + Buffer.from(random.bytes(length)).toString('base64url');
}

/**
 * The at-rest form of a high-entropy secret (sessions, operator tokens): SHA-256 in
 * base64url. A database dump then holds no usable credential, and a lookup by hash reveals nothing
 * about the secret through timing.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

const TIME_DIGITS = 10;
const SECRET_BYTES = 32;
/** base64url of SECRET_BYTES, unpadded. */
const SECRET_CHARS = 43;
const TIME_PART = /^[0-9a-v]{10}$/;

/**
 * A bearer secret minted on a hot path (claim tokens, access tokens and API keys, refresh tokens,
 * claim-attempt tokens): its prefix, its creation millisecond in 10 base-32 digits, then 32 random
 * bytes. It is kept only as its `secretKey`, which the time part makes land at the right edge of the
 * key's index: with a bare hash, every registration and every exchange wrote a random page of that
 * index to the WAL.
 */
export function timeOrderedSecret(random: RandomSource, prefix: string, now: number): string {
  return timeOrderedValue(random, prefix, now, SECRET_BYTES);
}

/**
 * The at-rest key of a bearer secret: for a `timeOrderedSecret`, its time part followed by
 * `hashSecret` of the whole secret; for one of the earlier form (prefix and random part only), the
 * hash alone, so that secrets issued before keep working. Both forms are told apart by length after
 * the prefix (53 characters against 43). The time part is what the secret shows anyway; the hash
 * still hides the rest, and the lookup compares it as before.
 */
export function secretKey(secret: string): string {
  const start = secret.indexOf('_') + 1;
  const time = secret.slice(start, start + TIME_DIGITS);
  const timed = secret.length - start === TIME_DIGITS + SECRET_CHARS && TIME_PART.test(time);
  return timed ? time + hashSecret(secret) : hashSecret(secret);
}

/** `digits` decimal digits, uniformly distributed (rejection sampling, no modulo bias). */
export function randomDigits(random: RandomSource, digits: number): string {
  let out = '';
  while (out.length < digits) {
    for (const byte of random.bytes(digits)) {
      if (byte < 250 && out.length < digits) out += String(byte % 10);
    }
  }
  return out;
}

/** Compares two strings in time that depends only on their lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** HMAC-SHA256 of the parts (joined by NUL) under the service secret, in base64url. */
export function keyedDigest(secret: Uint8Array, ...parts: string[]): string {
  return createHmac('sha256', secret).update(parts.join('\0')).digest('base64url');
}
