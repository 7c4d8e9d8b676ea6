import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentProvider } from '../src/index.ts';
import { startFakeService, startProvider, TestClock, type FakeService } from './support.ts';

/** The provider's metrics (issue 14): the SET outbox backlog and delivery outcomes; off by default. */

const cleanup: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c.close();
});

async function fakeService(): Promise<FakeService> {
  const s = await startFakeService();
  cleanup.push(s);
  return s;
}

async function revoke(p: AgentProvider, s: FakeService, userId: string): Promise<void> {
  const grant = await p.grants.create(userId, { audience: s.url, mode: 'always' });
  await p.grants.delete(userId, grant.id);
}

async function valueOf(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  if (!metric) throw new Error(`no metric ${name}`);
  return metric.values.find((v) => Object.entries(labels).every(([key, value]) => v.labels[key] === value))?.value ?? 0;
}

describe('provider metrics', () => {
  it('the backlog gauge follows the outbox; deliveries are counted by outcome', async () => {
    const s = await fakeService();
    const clock = new TestClock();
    const running = await startProvider({ clock: clock.now, metrics: true, outbox: { inlineTimeoutMs: 0, random: () => 0.5 } });
    cleanup.push(running);
    const p = running.provider;
    const registry = p.metrics! as Registry;

    expect(await valueOf(registry, 'authmd_set_outbox_backlog')).toBe(0);
    await revoke(p, s, 'user_ada');
    await revoke(p, s, 'user_bob');
    expect(await valueOf(registry, 'authmd_set_outbox_backlog')).toBe(2);

    // One delivered, one refused for good (a 400 is the receiver's final word).
    s.answerWith([{ status: 202 }, { status: 400, body: { err: 'invalid_audience', description: 'Not for us.' } }]);
    expect(await p.deliverDue()).toEqual({ attempted: 2, delivered: 1, retrying: 0, failed: 1 });
    expect(await valueOf(registry, 'authmd_set_deliveries_total', { outcome: 'delivered' })).toBe(1);
    expect(await valueOf(registry, 'authmd_set_deliveries_total', { outcome: 'failed' })).toBe(1);
    expect(await valueOf(registry, 'authmd_set_deliveries_total', { outcome: 'retrying' })).toBe(0);
    expect(await valueOf(registry, 'authmd_set_outbox_backlog')).toBe(0);

    // A 503 is retried: counted as retrying, and the SET stays in the backlog.
    await revoke(p, s, 'user_cy');
    s.answerWith([{ status: 503 }]);
    expect(await p.deliverDue()).toMatchObject({ attempted: 1, retrying: 1 });
    expect(await valueOf(registry, 'authmd_set_deliveries_total', { outcome: 'retrying' })).toBe(1);
    expect(await valueOf(registry, 'authmd_set_outbox_backlog')).toBe(1);

    // Bounded labels only: no user, audience, endpoint or jti.
    const exposition = await registry.metrics();
    for (const value of ['user_ada', 'user_bob', s.url, '127.0.0.1']) expect(exposition).not.toContain(value);
  });

  it("in the host's registry (the service's, say), beside its other collectors", async () => {
    const registry = new Registry();
    const running = await startProvider({ metrics: { registry } });
    cleanup.push(running);
    expect(running.provider.metrics).toBe(registry);
    expect((await registry.getMetricsAsJSON()).map((m) => m.name).sort()).toEqual(['authmd_set_deliveries_total', 'authmd_set_outbox_backlog']);
  });

  it('off by default: no registry', async () => {
    const running = await startProvider();
    cleanup.push(running);
    expect(running.provider.metrics).toBeUndefined();
  });
});
