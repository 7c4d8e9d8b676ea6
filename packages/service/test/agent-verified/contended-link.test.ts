import { DuplicateKeyError } from '@authmd/core/store';
import { describe, expect, it } from 'vitest';
import { exchange, servicePerTest } from '../support/harness.ts';
import { interceptedStore } from './intercepted-store.ts';
import { presentIdJag, trustedService } from './setup.ts';
import { providerPerTest } from './test-provider.ts';

/**
 * A first ID-JAG whose account keeps changing under it (every try to make its user and link meets a
 * concurrent twin's) stops after three rounds with 503 and Retry-After, at /agent/identity and at
 * the token endpoint alike: a passing condition, never a 500 and never invalid_grant.
 */
const start = servicePerTest();
const startProvider = providerPerTest();

/** A store on which, once `contended.on`, every transaction fails as a concurrent twin's duplicate would; `contended.tries` counts them. */
function contendedStore() {
  const contended = { on: false, tries: 0 };
  const store = interceptedStore((operation, proceed) => {
    if (!contended.on || operation !== 'transaction') return proceed();
    contended.tries++;
    return Promise.reject(new DuplicateKeyError('delegations', 'key'));
  });
  return { store, contended };
}

async function expectContended(response: Response): Promise<void> {
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(503);
  expect(response.headers.get('retry-after')).toBe('1');
  expect(body).toMatchObject({ error: 'temporarily_unavailable', reason: 'link_contended', retry_after: 1 });
}

describe('a first link contended past its rounds', () => {
  it('at /agent/identity: 503 temporarily_unavailable with Retry-After, after three tries', async () => {
    const provider = await startProvider();
    const { store, contended } = contendedStore();
    const { base } = await trustedService(start, { providers: [provider], store });
    contended.on = true;
    await expectContended(await presentIdJag(base, provider.mintIdJag({ sub: 'contended', email: 'contended@example.com' })));
    expect(contended.tries).toBe(3);
  });

  it('at the token endpoint (trust.tokenGrant): the same 503, not invalid_grant', async () => {
    const provider = await startProvider();
    const { store, contended } = contendedStore();
    const { base } = await trustedService(start, { providers: [provider], store, trustOptions: { tokenGrant: true } });
    contended.on = true;
    await expectContended(await exchange(base, provider.mintIdJag({ sub: 'contended', email: 'contended@example.com' })));
    expect(contended.tries).toBe(3);
  });
});
