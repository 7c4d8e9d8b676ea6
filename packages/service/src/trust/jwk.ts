/** A public JSON Web Key (RFC 7517); members beyond these are kept as they came. */
export interface Jwk {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  [member: string]: unknown;
}

export interface JsonWebKeySet {
  keys: Jwk[];
}

/** RFC 7518 §6: the members that carry private or symmetric key material. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * Why `value` is not a JWK Set of public keys, or undefined when it is. A set that carries any
 * secret is refused whole rather than filtered: its publisher has leaked keys, so none of it is
 * trustworthy.
 */
export function publicJwksProblem(value: unknown): string | undefined {
  if (!isObject(value) || !Array.isArray(value.keys)) return 'it is not a JSON object with a "keys" array';
  for (const [index, key] of value.keys.entries()) {
    if (!isObject(key) || typeof key.kty !== 'string') return `key ${index} is not an object with a string "kty"`;
    const secret = PRIVATE_MEMBERS.find((member) => Object.hasOwn(key, member));
    if (secret !== undefined) return `key ${index} has the private member "${secret}"`;
  }
  return undefined;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
