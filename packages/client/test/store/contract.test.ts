import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileCredentialStore, MemoryCredentialStore, type CredentialStore, type IssuerRecord } from '../../src/store/index.ts';

const ISSUER = 'https://api.example.com';
const OTHER = 'https://other.example.org';

const record = (overrides: Partial<IssuerRecord> = {}): IssuerRecord => ({
  registration_id: 'reg_1',
  registration_type: 'anonymous',
  claimed: false,
  ...overrides,
});

const full = (): IssuerRecord => ({
  registration_id: 'reg_full',
  registration_type: 'identity_assertion',
  claimed: true,
  identity: {
    assertion: 'eyJ.a.b',
    expires_at: '2030-01-01T00:00:00.000Z',
    refresh_token: { value: 'rt_1', expires_at: '2030-02-01T00:00:00.000Z' },
  },
  access_token: { value: 'at_1', expires_at: '2030-01-01T01:00:00.000Z', scope: 'api.read api.write', resource: 'https://api.example.com/api/' },
});

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const factories: [string, () => CredentialStore][] = [
  ['MemoryCredentialStore', () => new MemoryCredentialStore()],
  [
    'FileCredentialStore',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'authmd-store-'));
      dirs.push(dir);
      return new FileCredentialStore({ path: join(dir, 'authmd', 'credentials.json') });
    },
  ],
];

describe.each(factories)('%s', (_name, make) => {
  it('starts empty', async () => {
    const store = make();
    expect(await store.get(ISSUER)).toBeUndefined();
    expect(await store.list()).toEqual({});
  });

  it('creates, changes and deletes a record through update', async () => {
    const store = make();
    const seen: (IssuerRecord | undefined)[] = [];

    const created = await store.update(ISSUER, (current) => {
      seen.push(current);
      return record();
    });
    expect(created).toEqual(record());
    expect(await store.get(ISSUER)).toEqual(record());

    const changed = await store.update(ISSUER, (current) => {
      seen.push(current);
      return { ...current!, claimed: true, registration_type: 'service_auth' };
    });
    expect(changed).toEqual(record({ claimed: true, registration_type: 'service_auth' }));
    expect(await store.get(ISSUER)).toEqual(changed);

    await store.update(OTHER, () => full());
    expect(await store.list()).toEqual({ [ISSUER]: changed, [OTHER]: full() });

    const deleted = await store.update(ISSUER, (current) => {
      seen.push(current);
      return undefined;
    });
    expect(deleted).toBeUndefined();
    expect(await store.get(ISSUER)).toBeUndefined();
    expect(await store.list()).toEqual({ [OTHER]: full() });
    expect(seen).toEqual([undefined, record(), changed]);

    // deleting what is not there is a no-op
    expect(await store.update(ISSUER, () => undefined)).toBeUndefined();
    expect(await store.list()).toEqual({ [OTHER]: full() });
  });

  it('keeps every member of a full record', async () => {
    const store = make();
    await store.update(ISSUER, () => full());
    expect(await store.get(ISSUER)).toEqual(full());
  });

  it('copies records in and out: callers cannot mutate stored state', async () => {
    const store = make();
    const input = full();
    const returned = await store.update(ISSUER, () => input);
    input.identity!.refresh_token!.value = 'mutated-input';
    input.claimed = false;
    returned!.access_token!.value = 'mutated-returned';

    const got = (await store.get(ISSUER))!;
    got.identity!.assertion = 'mutated-get';
    const listed = await store.list();
    listed[ISSUER]!.registration_id = 'mutated-list';
    listed[OTHER] = record({ registration_id: 'injected-through-list' });

    // the record handed to `change` is a copy too
    await store
      .update(ISSUER, (current) => {
        current!.access_token!.scope = 'mutated-in-change';
        current!.claimed = false;
        throw new Error('abandon the change');
      })
      .catch(() => undefined);
    expect(await store.get(OTHER)).toBeUndefined();
    let kept: IssuerRecord | undefined;
    await store.update(OTHER, () => (kept = record()));
    kept!.registration_id = 'mutated-after-update';

    expect(await store.get(ISSUER)).toEqual(full());
    expect(await store.list()).toEqual({ [ISSUER]: full(), [OTHER]: record() });
  });

  it('rejects a record of the wrong shape and keeps the old one', async () => {
    const store = make();
    await store.update(ISSUER, () => record());
    await expect(store.update(ISSUER, () => ({ registration_id: 1 }) as unknown as IssuerRecord)).rejects.toThrow(/registration_type/);
    await expect(store.update(ISSUER, () => record({ claimed: 'yes' as unknown as boolean }))).rejects.toThrow(/claimed/);
    expect(await store.get(ISSUER)).toEqual(record());
  });

  it('propagates an error thrown by change and changes nothing', async () => {
    const store = make();
    await store.update(ISSUER, () => record());
    await expect(
      store.update(ISSUER, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await store.list()).toEqual({ [ISSUER]: record() });
    // and the store is still usable
    await store.update(ISSUER, (current) => ({ ...current!, registration_id: 'reg_2' }));
    expect((await store.get(ISSUER))!.registration_id).toBe('reg_2');
  });

  it('serialises concurrent updates within a process', async () => {
    const store = make();
    await Promise.all(
      Array.from({ length: 25 }, () =>
        store.update(ISSUER, (current) => record({ registration_id: String(Number(current?.registration_id ?? '0') + 1) })),
      ),
    );
    expect((await store.get(ISSUER))!.registration_id).toBe('25');
  });

  it('does not treat __proto__ as special', async () => {
    const store = make();
    await store.update('__proto__', () => record());
    expect(await store.get('__proto__')).toEqual(record());
    expect(Object.keys(await store.list())).toEqual(['__proto__']);
  });
});

describe('MemoryCredentialStore', () => {
  it('can be seeded, and the seed is copied', async () => {
    const seed = { [ISSUER]: full() };
    const store = new MemoryCredentialStore(seed);
    seed[ISSUER].claimed = false;
    expect(await store.get(ISSUER)).toEqual(full());
  });
});
