import { describe, expect, it } from 'vitest';
import { servicePerTest } from '../support/harness.ts';
import { interceptedStore } from './intercepted-store.ts';
import { registerIdJag, trustedService } from './setup.ts';
import { providerPerTest } from './test-provider.ts';

/**
 * What an agent's ID-JAG for an account already linked here writes (issue 13): the rate-limit charge and
 * the jti's burn, nothing else while its registration is live, so that it waits for two commits and
 * not four. The link's last_seen_at follows to the hour.
 */
const start = servicePerTest();
const startProvider = providerPerTest();
const HOUR = 3_600_000;

describe('an ID-JAG of an account already linked', () => {
  it('charges the limit and burns its jti, and writes nothing else while the registration is live', async () => {
    const provider = await startProvider();
    const calls: string[] = [];
    const store = interceptedStore((operation, proceed) => {
      calls.push(operation);
      return proceed();
    });
    const { base, svc } = await trustedService(start, { providers: [provider], store });
    const first = await registerIdJag(base, provider.mintIdJag({ sub: 'returning', email: 'back@example.com' }));
    expect(calls).toContain('transaction'); // the first made the user, its link and its registration

    calls.length = 0;
    svc.clock.advance(60_000);
    expect((await registerIdJag(base, provider.mintIdJag({ sub: 'returning', email: 'back@example.com' }))).id).toBe(first.id);
    expect(calls).toEqual(['incrementTiers', 'insertIfAbsent']);

    calls.length = 0;
    svc.clock.advance(HOUR);
    expect((await registerIdJag(base, provider.mintIdJag({ sub: 'returning', email: 'back@example.com' }))).id).toBe(first.id);
    expect(calls).toEqual(['incrementTiers', 'insertIfAbsent', 'update']); // last_seen_at, an hour on
  });
});
