import { describe, expect, it } from 'vitest';
import { accessTokenFor, callApi, exchange, servicePerTest } from '../support/harness.ts';
import { expectSetAccepted, deliverSet, presentIdJag, registerIdJag, trustedService } from './setup.ts';
import { providerPerTest } from './test-provider.ts';

/**
 * An operator's revocation is final (profile.md §5): a fresh ID-JAG of the same provider account
 * does not bring the registration back, unlike a provider's revocation, which it does revive.
 */
const start = servicePerTest();
const startProvider = providerPerTest();

async function setup() {
  const provider = await startProvider({ displayName: 'Acme Agents' });
  const { svc, base } = await trustedService(start, { providers: [provider] });
  const registration = await registerIdJag(base, provider.mintIdJag());
  const token = await accessTokenFor(base, registration.identity.assertion);
  return { provider, svc, base, registration, token };
}

describe('operator revocation of an ID-JAG registration', () => {
  it('a fresh ID-JAG of the same provider account is refused, and its old assertion exchanges nothing', async () => {
    const { provider, svc, base, registration, token } = await setup();
    expect(await svc.service.revokeRegistration(registration.id)).toBe(true);
    expect((await callApi(base, token)).status).toBe(401);

    svc.clock.advance(2000);
    const again = await presentIdJag(base, provider.mintIdJag());
    const body = await again.json();
    expect({ status: again.status, error: body.error, reason: body.reason }).toEqual({ status: 410, error: 'claim_revoked', reason: 'revoked_by_operator' });
    expect(body.identity).toBeUndefined();
    expect((await exchange(base, registration.identity.assertion)).status).toBe(400);
  });

  it('stays final after a provider revocation and a fresh ID-JAG on top of it', async () => {
    const { provider, svc, base, registration } = await setup();
    expect(await svc.service.revokeRegistration(registration.id)).toBe(true);
    await expectSetAccepted(await deliverSet(base, provider.mintSet()));
    svc.clock.advance(2000);
    expect((await presentIdJag(base, provider.mintIdJag())).status).toBe(410);
    expect(await svc.service.revokeRegistration(registration.id)).toBe(false);
  });

  it('a provider revocation followed by an operator revocation is final too', async () => {
    const { provider, svc, base, registration } = await setup();
    await expectSetAccepted(await deliverSet(base, provider.mintSet()));
    expect(await svc.service.revokeRegistration(registration.id)).toBe(true);
    svc.clock.advance(2000);
    expect((await presentIdJag(base, provider.mintIdJag())).status).toBe(410);
  });

  it('a provider revocation alone is revived by a fresh ID-JAG (the same registration)', async () => {
    const { provider, svc, base, registration } = await setup();
    await expectSetAccepted(await deliverSet(base, provider.mintSet()));
    svc.clock.advance(2000);
    const revived = await registerIdJag(base, provider.mintIdJag());
    expect(revived.id).toBe(registration.id);
    expect((await callApi(base, await accessTokenFor(base, revived.identity.assertion))).status).toBe(200);
  });
});
