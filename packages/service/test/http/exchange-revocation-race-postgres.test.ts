import { afterEach, describe, expect, it } from 'vitest';
import { callApi, exchange, registerAnonymous, startService, type RunningService } from '../support/harness.ts';

let running: RunningService | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

/**
 * On PostgreSQL an exchange reads its registration without a lock and commits its token only while
 * the registration is still the version it read (a rerunnable transaction). Raced against a
 * revocation, every exchange must end one of two ways: its token committed before the revocation
 * (and revoked with the others), or the exchange refused.
 */
describe('jwt-bearer exchanges racing a revocation on PostgreSQL', () => {
  it('leaves no usable token: each exchange either was revoked with the registration or refused', async () => {
    running = await startService({ backend: 'postgres' });
    const { base, service } = running;
    let issued = 0;
    let refused = 0;
    for (let round = 0; round < 25; round++) {
      const registration = await registerAnonymous(base);
      const exchanges = Promise.all(Array.from({ length: 8 }, () => exchange(base, registration.identity.assertion)));
      // The revocation goes out 0 to 24 ms after the exchanges, so that some land on each side of it.
      await new Promise((resolve) => setTimeout(resolve, round));
      const [responses, revoked] = await Promise.all([exchanges, service.revokeRegistration(registration.id)]);
      expect(revoked).toBe(true);
      for (const response of responses) {
        const body = await response.json();
        if (response.status === 200) {
          issued++;
          expect((await callApi(base, body.access_token)).status).toBe(401);
        } else {
          refused++;
          expect(response.status).toBe(400);
          expect(body.error).toBe('invalid_grant');
        }
      }
    }
    // The race was run, not avoided: both outcomes happened.
    expect(issued).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });
});
