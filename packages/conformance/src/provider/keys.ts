import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';

/** An ES256 key pair: made in memory, or kept in a file from one run to the next. */
export interface SigningKey {
  /** RFC 7638 thumbprint of the public key. */
  kid: string;
  privateKey: KeyObject;
  /** The public JWK as a JWKS would serve it: key members plus `kid`, `alg` and `use`. */
  publicJwk: JWK;
}

export async function generateSigningKey(): Promise<SigningKey> {
  const { privateKey } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' });
  return signingKey(privateKey);
}

async function signingKey(privateKey: KeyObject): Promise<SigningKey> {
  const jwk = await exportJWK(createPublicKey(privateKey));
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, privateKey, publicJwk: { ...jwk, kid, alg: 'ES256', use: 'sig' } };
}

/**
 * The key in `file` (a private JWK, mode 0600), made there on first use. A service caches a
 * provider's keys for minutes and refetches for an unknown `kid` at most every so often, so a
 * provider that changed keys on every run would be refused by a service that just met it.
 */
export async function persistentSigningKey(file: string): Promise<SigningKey> {
  try {
    return await signingKey(createPrivateKey({ key: JSON.parse(await fsp.readFile(file, 'utf8')), format: 'jwk' }));
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') {
      throw new Error(`The test provider's key file ${file} is not a private EC JWK (${(error as Error).message}); delete it to make a new one.`);
    }
  }
  const key = await generateSigningKey();
  await fsp.mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await fsp.writeFile(file, JSON.stringify(await exportJWK(key.privateKey)), { mode: 0o600, flag: 'wx' }).catch(async (error: unknown) => {
    if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
  });
  // Another run may have written it first: the file decides.
  return signingKey(createPrivateKey({ key: JSON.parse(await fsp.readFile(file, 'utf8')), format: 'jwk' }));
}
