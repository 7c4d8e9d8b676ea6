import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutboxEntry } from '@authmd/provider';
import { describe, expect, it } from 'vitest';
import { afterTest } from '../../../test-support/after-test.ts';
import { freePort } from '../../../test-support/free-port.ts';
import { startDemoProvider, type DemoProviderOptions, type RunningDemoProvider } from '../src/provider/index.ts';
import { startDemo, type RunningDemo } from '../src/start.ts';
import { ProviderSession, ServiceClient, waitFor } from './agent-verified-http.ts';

/**
 * Issue 10: `DELETE /grants/:id` tries to deliver the revocation SET before it answers, so that the
 * delegation is dead at the service by the time the user (or their tool) sees the 204, and says
 * whether it was in `Revocation-Status: delivered | queued`. When the service cannot be reached the
 * answer still comes within the inline timeout (2 s), and the durable outbox delivers it later.
 * The real demo service and the real demo provider, two servers on 127.0.0.1, HTTP only.
 */

const INLINE_TIMEOUT_MS = 2000;

const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-provider-revocation-'));
  afterTest(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

/** The demo provider and the demo service it vouches to, each with its own lifecycle. */
async function startPair(providerOptions: Partial<DemoProviderOptions> = {}) {
  const servicePort = await freePort();
  const serviceUrl = `http://127.0.0.1:${servicePort}`;
  const serviceDir = tempDir();
  const provider: RunningDemoProvider = await startDemoProvider({ port: 0, dataDir: tempDir(), serviceUrl, deliverInBackground: false, ...providerOptions });
  afterTest(() => provider.close());
  const startService = async (): Promise<RunningDemo> => {
    const demo = await startDemo({ port: servicePort, dataDir: serviceDir, trustProvider: provider.trustEntry });
    afterTest(() => demo.close());
    return demo;
  };
  const demo = await startService();
  const ada = await ProviderSession.login(provider.url, 'ada@example.com');
  const service = new ServiceClient(serviceUrl);
  return { provider, serviceUrl, demo, ada, service, startService };
}

async function outboxEntry(provider: RunningDemoProvider, grantId: string): Promise<OutboxEntry | undefined> {
  return (await provider.provider.outbox.list({ userId: 'usr_ada' })).find((e) => e.grantId === grantId);
}

describe('DELETE /grants/:id delivers the revocation SET before it answers', () => {
  it('the very next request at the service is refused, and Revocation-Status says delivered', async () => {
    // No background delivery at all: only the answer to the DELETE can have delivered the SET.
    const { provider, serviceUrl, ada, service } = await startPair();
    const grant = await ada.grant(serviceUrl);
    const connected = await service.connect(await ada.idJag(serviceUrl));
    expect(await service.listNotes(connected.token)).toBe(200);

    const revoked = await ada.revoke(grant.id);
    // The very next requests, no waiting: the access token and the assertion are dead.
    expect(await service.listNotes(connected.token)).toBe(401);
    const exchanged = await service.exchange(connected.assertion);
    expect(exchanged.status).toBe(400);
    expect(exchanged.body.error).toBe('invalid_grant');

    expect(revoked.status).toBe(204);
    expect(revoked.headers.get('revocation-status')).toBe('delivered');
    expect(await outboxEntry(provider, grant.id)).toMatchObject({ status: 'delivered', attempts: 1, lastStatus: 202, endpoint: `${serviceUrl}/agent/event/notify` });
    expect(await provider.provider.deliverDue(), 'nothing left for the outbox').toMatchObject({ attempted: 0 });
  });

  it('with the service stopped: queued at once; the outbox delivers once the service is back', async () => {
    const { provider, serviceUrl, demo, ada, service, startService } = await startPair({ outbox: { initialDelayMs: 200, maxDelayMs: 1000 } });
    const grant = await ada.grant(serviceUrl);
    const connected = await service.connect(await ada.idJag(serviceUrl));
    await demo.close();
    await expect(fetch(`${serviceUrl}/`)).rejects.toThrow();

    const started = Date.now();
    const revoked = await ada.revoke(grant.id);
    expect(Date.now() - started, 'a refused connection fails at once, well within the inline timeout').toBeLessThan(INLINE_TIMEOUT_MS);
    expect(revoked.status).toBe(204);
    expect(revoked.headers.get('revocation-status')).toBe('queued');
    // The one inline attempt was made and is recorded; the row waits for its retry.
    const queued = await outboxEntry(provider, grant.id);
    expect(queued).toMatchObject({ status: 'pending', attempts: 1, lastStatus: null, lastError: expect.stringMatching(/^network: /) });
    expect(await provider.provider.grants.get('usr_ada', grant.id)).toBeUndefined();

    await startService();
    const delivered = await waitFor('the outbox to deliver the SET', async () => {
      await provider.provider.deliverDue();
      const entry = await outboxEntry(provider, grant.id);
      return entry?.status === 'delivered' ? entry : undefined;
    });
    expect(delivered).toMatchObject({ jti: queued!.jti, attempts: 2, lastStatus: 202, lastError: null });
    expect(await service.listNotes(connected.token)).toBe(401);
    expect((await service.exchange(connected.assertion)).body.error).toBe('invalid_grant');
  });

  it('with the service not answering: the answer comes within the 2 s inline timeout, queued; background delivery takes over', async () => {
    // Background delivery on, as npm start runs it, with short retry delays so that the test is quick.
    const { provider, serviceUrl, demo, ada, service, startService } = await startPair({
      deliverInBackground: true,
      outbox: { initialDelayMs: 200, maxDelayMs: 1000, pollIntervalMs: 50 },
    });
    const grant = await ada.grant(serviceUrl);
    const connected = await service.connect(await ada.idJag(serviceUrl));

    // The service hangs: its port accepts connections and never answers.
    await demo.close();
    const hanging = await holdConnections(Number(new URL(serviceUrl).port));
    afterTest(() => hanging.close());
    const started = Date.now();
    const revoked = await ada.revoke(grant.id);
    const took = Date.now() - started;
    expect(took, 'it waited for the one inline attempt').toBeGreaterThanOrEqual(INLINE_TIMEOUT_MS * 0.75);
    expect(took, 'and no longer than its timeout (a margin for a loaded machine)').toBeLessThan(INLINE_TIMEOUT_MS + 1000);
    expect(revoked.status).toBe(204);
    expect(revoked.headers.get('revocation-status')).toBe('queued');
    expect(hanging.held()).toBeGreaterThanOrEqual(1);
    expect(await outboxEntry(provider, grant.id)).toMatchObject({ status: 'pending', attempts: 1, lastError: expect.stringMatching(/^timeout: /) });

    // The service is back on its port and data: the outbox delivers, and the delegation is dead.
    await hanging.close();
    await startService();
    const delivered = await waitFor('background delivery of the SET', async () => {
      const entry = await outboxEntry(provider, grant.id);
      return entry?.status === 'delivered' ? entry : undefined;
    });
    expect(delivered.attempts).toBeGreaterThanOrEqual(2);
    expect(delivered.lastStatus).toBe(202);
    expect(await service.listNotes(connected.token)).toBe(401);
    expect((await service.exchange(connected.assertion)).body.error).toBe('invalid_grant');
  });
});

/** A TCP server on 127.0.0.1:`port` that accepts connections and never answers (a hung service). */
async function holdConnections(port: number): Promise<{ held(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  let closing: Promise<void> | undefined;
  return {
    held: () => count,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      })),
  };
}
