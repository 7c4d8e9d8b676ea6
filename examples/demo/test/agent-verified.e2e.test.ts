import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutboxEntry } from '@authmd/provider';
import { safeFetch, type Fetcher } from '@authmd/service/fetch';
import { describe, expect, it } from 'vitest';
import { afterTest } from '../../../test-support/after-test.ts';
import { freePort } from '../../../test-support/free-port.ts';
import { recordingLogger } from '../../../test-support/recording-logger.ts';
import { startDemoProvider, type RunningDemoProvider } from '../src/provider/index.ts';
import { startDemo, type RunningDemo } from '../src/start.ts';
import {
  claimsOf,
  nextSecond,
  ProviderSession,
  providerRevocations,
  ServiceClient,
  waitFor,
} from './agent-verified-http.ts';

/**
 * Issue 4, "Done when": the demo agent provider and the demo service as two servers (two
 * `createServer`s on two ports, two SQLite files), talking over HTTP only. The user consents at the
 * provider, the agent mints an ID-JAG and registers with it, exchanges, calls the API; the user
 * revokes at the provider, whose outbox pushes a revocation SET to the service; everything of that
 * delegation stops; fresh consent revives it. And the outbox keeps retrying across a provider restart
 * while the service is down.
 */

const later = <T extends { close(): Promise<void> }>(server: T): T => {
  afterTest(() => server.close());
  return server;
};
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-agent-verified-'));
  afterTest(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

/** The provider's outbox row of a revoked grant, once it has settled. */
async function settled(provider: RunningDemoProvider, userId: string, grantId: string): Promise<OutboxEntry> {
  return waitFor(`the revocation SET of ${grantId} to settle`, async () => {
    const entry = (await provider.provider.outbox.list({ userId })).find((e) => e.grantId === grantId);
    return entry && entry.status !== 'pending' ? entry : undefined;
  });
}

describe('Agent Verified end to end: the demo provider and the demo service over HTTP', () => {
  it('consent → mint → register → exchange → API; revoke at the provider → SET → all refused; fresh consent revives', async () => {
    const logger = recordingLogger();
    // npm start's wiring: two servers, two ports, authmd.db and provider.db, background delivery.
    const demo: RunningDemo = later(await startDemo({ port: 0, providerPort: 0, dataDir: tempDir(), logger }));
    const provider = demo.provider!;
    expect(provider.port).not.toBe(demo.port);
    expect(provider.dbPath).not.toBe(demo.dbPath);
    const service = new ServiceClient(demo.url);
    const ada = await ProviderSession.login(provider.url, 'ada@example.com');

    // No consent, no ID-JAG.
    const unconsented = await ada.mint(demo.url);
    expect(unconsented.status).toBe(403);
    expect(unconsented.body.error).toBe('consent_required');

    // Consent, then mint: the provider learned the service's events endpoint from its metadata.
    const grant = await ada.grant(demo.url);
    expect(grant).toMatchObject({ audience: demo.url, mode: 'always', status: 'active', events_uri: `${demo.url}/agent/event/notify` });
    const idJag = await ada.idJag(demo.url);
    expect(claimsOf(idJag)).toMatchObject({ iss: provider.url, aud: demo.url, sub: 'usr_ada', email: 'ada@example.com', email_verified: true });

    // Register: a new user here, so a clean match: 200 and credentials at once, with the post-claim scopes.
    const first = await service.connect(idJag);
    expect(first.registrationId).toMatch(/^reg_/);
    expect(first.scope).toBe('notes.read notes.write');
    expect(await service.listNotes(first.token)).toBe(200);
    expect(await service.addNote(first.token, 'vouched for')).toBe(201);
    // The ID-JAG is single use.
    const replayed = await service.register(idJag);
    expect(replayed.status).toBe(400);
    expect(replayed.body.reason).toBe('replay_detected');

    // A second ID-JAG of the same account: the same registration, another assertion and token.
    const second = await service.connect(await ada.idJag(demo.url));
    expect(second.registrationId).toBe(first.registrationId);
    expect(await service.listNotes(second.token)).toBe(200);
    // One minted before the revocation and kept back: it must not undo the revocation later.
    const keptBack = await ada.idJag(demo.url);

    // The user revokes at the provider: the SET is delivered before the 204 (issue 10).
    const revokedAt = Date.now();
    const revoked = await ada.revoke(grant.id);
    expect(revoked.status).toBe(204);
    expect(revoked.headers.get('revocation-status')).toBe('delivered');
    const delivered = await settled(provider, 'usr_ada', grant.id);
    expect(delivered).toMatchObject({ status: 'delivered', lastStatus: 202, attempts: 1, endpoint: `${demo.url}/agent/event/notify`, audience: demo.url });
    expect(delivered.settledAt! - revokedAt, 'delivered before the answer').toBeLessThan(2000);
    expect(providerRevocations(logger, first.registrationId)).toBe(1);

    // Every access token and every assertion of that delegation is refused.
    for (const { token, assertion } of [first, second]) {
      expect(await service.listNotes(token)).toBe(401);
      expect(await service.addNote(token, 'after revocation')).toBe(401);
      const exchanged = await service.exchange(assertion);
      expect(exchanged.status).toBe(400);
      expect(exchanged.body.error).toBe('invalid_grant');
    }
    // So is an ID-JAG minted before the revocation, and the provider mints no new one without consent.
    const stale = await service.register(keptBack);
    expect(stale.status).toBe(400);
    expect(stale.body.reason).toBe('revoked');
    expect((await ada.mint(demo.url)).body.error).toBe('consent_required');

    // Fresh consent and a new ID-JAG revive the delegation: the same registration, working again.
    // (The service compares the ID-JAG's iat, in whole seconds, with the time it received the SET, in
    // milliseconds, and refuses ties: an ID-JAG minted in the very second of the revocation is refused.)
    await nextSecond();
    const regrant = await ada.grant(demo.url);
    expect(regrant.id).not.toBe(grant.id);
    const revived = await service.connect(await ada.idJag(demo.url));
    expect(revived.registrationId).toBe(first.registrationId);
    expect(revived.scope).toBe('notes.read notes.write');
    expect(await service.listNotes(revived.token)).toBe(200);
    expect(await service.addNote(revived.token, 'back again')).toBe(201);
    // What the revocation killed stays dead.
    expect(await service.listNotes(first.token)).toBe(401);
    expect((await service.exchange(second.assertion)).body.error).toBe('invalid_grant');
  }, 60_000);

  it('the outbox retries across a provider restart while the service is down; the SET takes effect exactly once', async () => {
    const serviceDir = tempDir();
    const providerDir = tempDir();
    const servicePort = await freePort();
    const serviceUrl = `http://127.0.0.1:${servicePort}`;
    const serviceLog = recordingLogger();
    const deliveries = new SetDeliveries();
    // Short backoff so the test is quick; the defaults (2 s doubling to 10 min) behave the same, slower.
    const outbox = { initialDelayMs: 200, maxDelayMs: 1000 };
    const startProvider = (port: number, deliverInBackground: boolean) =>
      startDemoProvider({ port, dataDir: providerDir, serviceUrl, fetcher: deliveries.fetcher, outbox, deliverInBackground });
    const startService = async (trust: RunningDemoProvider) => {
      const demo = await startDemo({ port: servicePort, dataDir: serviceDir, logger: serviceLog, trustProvider: trust.trustEntry });
      afterTest(() => demo.close());
      return demo;
    };

    let provider = await startProvider(0, false);
    const firstProvider = provider;
    afterTest(() => firstProvider.close());
    let demo = await startService(provider);
    expect(demo.url).toBe(serviceUrl);
    const service = new ServiceClient(serviceUrl);
    const ada = await ProviderSession.login(provider.url, 'ada@example.com');
    const grant = await ada.grant(serviceUrl);
    const before = await service.connect(await ada.idJag(serviceUrl));
    expect(await service.addNote(before.token, 'before the outage')).toBe(201);
    const keptBack = await ada.idJag(serviceUrl);

    // The service goes down: its port is closed.
    await demo.close();
    await expect(fetch(`${serviceUrl}/`)).rejects.toThrow();

    // The user revokes meanwhile: the grant is gone at once; the one attempt made before the answer
    // fails, and the SET waits in the outbox.
    const revoked = await ada.revoke(grant.id);
    expect(revoked.status).toBe(204);
    expect(revoked.headers.get('revocation-status')).toBe('queued');
    const [queued] = await provider.provider.outbox.list({ userId: 'usr_ada' });
    expect(queued).toMatchObject({ grantId: grant.id, status: 'pending', attempts: 1, lastStatus: null, lastError: expect.stringContaining('network') });
    const jti = queued!.jti;

    // The provider restarts on the same port and SQLite file, and keeps trying while the service is still down.
    await provider.close();
    provider = await startProvider(provider.port, true);
    const secondProvider = provider;
    afterTest(() => secondProvider.close());
    expect(provider.url).toBe(firstProvider.url);
    await waitFor('a retry by the restarted provider', async () => {
      const entry = (await provider.provider.outbox.list({ userId: 'usr_ada' })).find((e) => e.jti === jti);
      return entry && entry.attempts >= 2 ? entry : undefined;
    });
    expect(deliveries.accepted(jti)).toBe(0);

    // The service comes back on the same port and data. The first acknowledgement is lost on the way
    // back, so the outbox sends the SET again (re-signed, the same jti): the service must take it once.
    deliveries.loseNextAcknowledgement = true;
    demo = await startService(provider);
    const entry = await settled(provider, 'usr_ada', grant.id);
    expect(entry).toMatchObject({ jti, status: 'delivered', lastStatus: 202, lastError: null });
    expect(deliveries.accepted(jti), 'the service acknowledged the SET twice: the lost answer, then the retry').toBe(2);
    expect(deliveries.attempts(jti)).toBe(entry.attempts);
    const [lost, retried] = deliveries.acceptedBodies(jti);
    expect(lost).not.toBe(retried);
    expect(claimsOf(lost!).jti).toBe(claimsOf(retried!).jti);
    expect(providerRevocations(serviceLog, before.registrationId), 'one teardown for two deliveries').toBe(1);

    // The revocation took effect.
    expect(await service.listNotes(before.token)).toBe(401);
    expect((await service.exchange(before.assertion)).body.error).toBe('invalid_grant');
    expect((await service.register(keptBack)).body.reason).toBe('revoked');

    // Fresh consent revives it; a late duplicate of the old SET (the same bytes again) changes nothing.
    await nextSecond();
    await ada.grant(serviceUrl);
    const after = await service.connect(await ada.idJag(serviceUrl));
    expect(after.registrationId).toBe(before.registrationId);
    expect(await service.addNote(after.token, 'after the outage')).toBe(201);
    const duplicate = await fetch(entry.endpoint!, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: retried });
    expect(duplicate.status).toBe(202);
    expect(await service.listNotes(after.token)).toBe(200);
    expect(providerRevocations(serviceLog, before.registrationId)).toBe(1);
  }, 60_000);
});

/**
 * The revocation's own second: `iat` has whole seconds, so an ID-JAG minted in the second of the
 * revocation may predate it and is refused (docs/decisions.md); one minted a second later revives.
 */
describe('consent given again within the second of the revocation', () => {
  it('is refused with reason revoked for that second, and an ID-JAG of the next second revives the delegation', async () => {
    const demo = later(await startDemo({ port: 0, providerPort: 0, dataDir: tempDir() }));
    const provider = demo.provider!;
    const service = new ServiceClient(demo.url);
    const ada = await ProviderSession.login(provider.url, 'ada@example.com');
    const grant = await ada.grant(demo.url);
    const first = await service.connect(await ada.idJag(demo.url));

    await nextSecond(); // what follows takes a few tens of milliseconds: all of it within this second
    expect((await ada.revoke(grant.id)).status).toBe(204);
    await provider.provider.deliverDue();
    expect(await settled(provider, 'usr_ada', grant.id)).toMatchObject({ status: 'delivered' });
    expect(await service.listNotes(first.token)).toBe(401);
    await ada.grant(demo.url);
    const sameSecond = await service.register(await ada.idJag(demo.url));
    expect(sameSecond.status, JSON.stringify(sameSecond.body)).toBe(400);
    expect(sameSecond.body).toMatchObject({ error: 'invalid_request', reason: 'revoked' });

    await nextSecond();
    const revived = await service.register(await ada.idJag(demo.url));
    expect(revived.status, JSON.stringify(revived.body)).toBe(200);
    expect(revived.body.id).toBe(first.registrationId);
  });
});

/**
 * The provider's outbound HTTP, recorded: every POST of a SET and what came of it. With
 * `loseNextAcknowledgement`, the next 2xx reaches the service but not the provider, which then sees a
 * network error (the connection dropped after the service answered) and retries.
 */
class SetDeliveries {
  loseNextAcknowledgement = false;
  private readonly log: { jti: string; body: string; status: number | null }[] = [];

  readonly fetcher: Fetcher = async (url, options = {}) => {
    if (options.method !== 'POST' || typeof options.body !== 'string') return safeFetch(url, options);
    const record = { jti: claimsOf(options.body).jti as string, body: options.body, status: null as number | null };
    this.log.push(record);
    const response = await safeFetch(url, options);
    record.status = response.status;
    if (this.loseNextAcknowledgement && response.status >= 200 && response.status < 300) {
      this.loseNextAcknowledgement = false;
      throw Object.assign(new Error(`${new URL(url).origin} closed the connection before answering`), { code: 'network' });
    }
    return response;
  };

  attempts(jti: string): number {
    return this.log.filter((r) => r.jti === jti).length;
  }

  accepted(jti: string): number {
    return this.acceptedBodies(jti).length;
  }

  acceptedBodies(jti: string): string[] {
    return this.log.filter((r) => r.jti === jti && r.status !== null && r.status >= 200 && r.status < 300).map((r) => r.body);
  }
}
