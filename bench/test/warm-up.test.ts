import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startServerChild, type ServerChild } from '../src/child.ts';
import type { KeptSecrets } from '../src/growth/fill.ts';
import { warmUp, warmUpTimes } from '../src/growth/warm-up.ts';
import { expectJson, registrationRequest, tokenRequest } from '../src/replicas.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const children: ServerChild[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((child) => child.stop()));
});

const keptAt = (...times: number[]): KeptSecrets[] => times.map((createdAt, index) => ({ index, accessToken: '', claimToken: '', createdAt }));

describe('where the warm-up reads', () => {
  it('reads in the middle half of the gaps between kept registrations, each gap in turn, a different place at each visit', () => {
    const times = warmUpTimes(keptAt(40_000, 0, 10_000, 20_000));
    const gaps = [
      [0, 10_000],
      [10_000, 20_000],
      [20_000, 40_000],
    ];
    const seen = gaps.map(() => new Set<number>());
    for (let n = 0; n < 30; n++) {
      const gap = n % 3;
      const [start, end] = gaps[gap]!;
      const width = end! - start!;
      const to = times(n);
      expect(to, `page ${n}`).toBeGreaterThanOrEqual(start! + width / 4);
      expect(to, `page ${n}`).toBeLessThan(start! + (3 * width) / 4);
      seen[gap]!.add(to);
    }
    for (const places of seen) expect(places.size).toBe(10);
  });

  it('needs two kept registrations to read between', () => {
    expect(() => warmUpTimes(keptAt(5))).toThrow(/at least two kept registrations/);
  });
});

describe('the warm-up against the demo child', () => {
  it('reads pages of the operator\'s search in batches until the demo\'s memory stops growing', async () => {
    const child = await startServerChild('bench/src/servers/demo-server.ts', { cwd: ROOT, nodeArgs: ['--conditions=@authmd/source'], env: {} });
    children.push(child);
    const kept: KeptSecrets[] = [];
    for (const index of [0, 1, 2]) {
      const registered = await expectJson(child.url, registrationRequest);
      const exchanged = await expectJson(child.url, tokenRequest(registered.identity.assertion));
      kept.push({ index, accessToken: exchanged.access_token, claimToken: registered.claim.token, createdAt: Date.now() });
      await new Promise((done) => setTimeout(done, 5));
    }
    const before = (await child.stats())!.requests;

    const done = await warmUp(child, kept);

    // Whole batches of 250, every one answered 200 (warmUp throws otherwise), and a store of three
    // registrations stops growing the demo's memory long before the bound of 20,000.
    expect(done.requests % 250).toBe(0);
    expect(done.requests).toBeGreaterThanOrEqual(250);
    expect(done.requests).toBeLessThan(20_000);
    expect((await child.stats())!.requests - before).toBe(done.requests);
    expect(done.rssBefore).toBeGreaterThan(10 * 2 ** 20);
    expect(done.rssAfter).toBeGreaterThan(10 * 2 ** 20);
  }, 60_000);
});
