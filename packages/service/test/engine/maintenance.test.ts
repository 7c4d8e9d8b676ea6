import { afterEach, describe, expect, it } from 'vitest';
import { accessTokens, auditEvents, registrations } from '../../src/schema.ts';
import { secretKey } from '../../src/secrets.ts';
import { accessToken, callApi, postForm, startService, type RunningService } from '../support/harness.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe.each(['memory', 'sqlite'] as const)('upkeep on %s', (backend) => {
  let running: RunningService;
  afterEach(() => running?.close());

  it('records every state change as an audit event, in the store', async () => {
    running = await startService({ backend });
    const { base, service } = running;
    const { token, registration } = await accessToken(base);
    await postForm(`${base}/oauth2/revoke`, { token });

    const events = await service.store.findMany(auditEvents, 'registration_id', registration.id);
    expect(events.map((e) => e.type).sort()).toEqual(['registration.created', 'token.issued', 'token.revoked']);
    const issued = events.find((e) => e.type === 'token.issued')!;
    expect(issued.data).toEqual({ scope: 'notes.read', resource: base });
    expect(JSON.stringify(events)).not.toContain(token);
  });

  it('purges expired tokens and registrations, and nothing that is still alive', async () => {
    running = await startService({ backend });
    const { base, service, clock } = running;
    const old = await accessToken(base);
    clock.advance(2 * HOUR);
    const fresh = await accessToken(base);

    await service.maintain();
    expect(await service.store.get(accessTokens, secretKey(old.token))).toBeUndefined();
    expect(await service.store.get(accessTokens, secretKey(fresh.token))).toBeDefined();
    expect((await callApi(base, fresh.token)).status).toBe(200);

    // An unclaimed registration outlives its 24 h claim window by 7 days, then goes.
    expect(await service.store.get(registrations, old.registration.id)).toBeDefined();
    clock.advance(DAY + 7 * DAY);
    await service.maintain();
    expect(await service.store.get(registrations, old.registration.id)).toBeUndefined();
    expect(await service.store.get(registrations, fresh.registration.id)).toBeDefined();
  });

  it('rotates the signing key once it is older than rotateAfterDays', async () => {
    running = await startService({ backend, signing: { rotateAfterDays: 30 } });
    const { base, service, clock } = running;
    const kids = async () => ((await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    const first = await kids();
    await service.maintain();
    expect(await kids()).toEqual(first);
    clock.advance(31 * DAY);
    await service.maintain();
    const after = await kids();
    expect(after).toHaveLength(2);
    expect(after).toContain(first[0]);
  });
});
