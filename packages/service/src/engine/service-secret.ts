import { randomBytes } from 'node:crypto';
import type { Store } from '@authmd/core/store';
import { serviceSecrets } from '../schema.ts';

/** The HMAC key every replica shares: made on first start, read from the store afterwards. */
export async function loadServiceSecret(store: Store): Promise<Uint8Array> {
  await store.insertIfAbsent(serviceSecrets, { id: 'hmac', value: randomBytes(32).toString('base64url') });
  const row = await store.get(serviceSecrets, 'hmac');
  return Buffer.from(row!.value, 'base64url');
}
