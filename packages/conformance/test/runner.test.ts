import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckFailed, Skipped, type Check } from '../src/check.ts';
import { callApi, exchange, registerAnonymous } from '../src/flows.ts';
import { runConformance, RunOptionsError, selectChecks } from '../src/runner.ts';
import { startBrokenService, type BrokenService } from './fixtures/broken-service.ts';

const check = (id: string, run: Check['run']): Check => ({ id, group: id.split('.')[0] as Check['group'], title: `title of ${id}`, ref: 'ref', run });

let service: BrokenService;
beforeAll(async () => {
  service = await startBrokenService();
});
afterAll(() => service?.close());

describe('runConformance', () => {
  it('reports pass, fail and skip with their messages, in order, and counts them', async () => {
    const seen: string[] = [];
    const report = await runConformance({
      base: service.base,
      api: service.api,
      providerPort: false,
      checks: [
        check('token.works', async (ctx) => {
          const registration = await registerAnonymous(ctx);
          const { accessToken } = await exchange(ctx, registration.assertion!);
          expect((await callApi(ctx, accessToken)).status).toBe(200);
        }),
        check('token.broken', async () => {
          throw new CheckFailed('expected 400, got 200');
        }),
        check('events.absent', async () => {
          throw new Skipped('the service advertises no events endpoint');
        }),
        check('security.crash', async () => {
          throw new TypeError('boom');
        }),
      ],
      onResult: (result) => seen.push(result.id),
    });
    expect(seen).toEqual(['token.works', 'token.broken', 'events.absent', 'security.crash']);
    expect(report.results.map((r) => [r.id, r.outcome, r.message?.split('\n')[0]])).toEqual([
      ['token.works', 'pass', undefined],
      ['token.broken', 'fail', 'expected 400, got 200'],
      ['events.absent', 'skip', 'the service advertises no events endpoint'],
      ['security.crash', 'fail', 'the check itself crashed: TypeError: boom'],
    ]);
    expect(report.summary).toMatchObject({ total: 4, passed: 1, failed: 2, skipped: 1 });
  });

  it('fails a check that takes longer than the timeout', async () => {
    const report = await runConformance({
      base: service.base,
      providerPort: false,
      checkTimeoutMs: 200,
      checks: [check('ceremony.stuck', () => new Promise(() => undefined))],
    });
    expect(report.results[0]).toMatchObject({ outcome: 'fail', message: 'no outcome within 0.2 s' });
  });

  it('skips checks that need discovery when discovery fails, and says why', async () => {
    const report = await runConformance({
      base: `${service.base}/nothing-here`,
      providerPort: false,
      checks: [check('token.needs-discovery', async (ctx) => void (await ctx.service()))],
    });
    expect(report.results[0]!.outcome).toBe('skip');
    expect(report.results[0]!.message).toMatch(/^needs discovery, which failed: no protected resource metadata at .*\/\.well-known\/oauth-protected-resource\/nothing-here/);
  });
});

describe('selectChecks', () => {
  const checks = [check('discovery.prm', async () => {}), check('discovery.prm-resource', async () => {}), check('token.grant', async () => {})];

  it('selects by group, by id and by id prefix, in catalogue order', () => {
    expect(selectChecks(checks, ['token']).map((c) => c.id)).toEqual(['token.grant']);
    expect(selectChecks(checks, ['discovery.prm']).map((c) => c.id)).toEqual(['discovery.prm']);
    expect(selectChecks(checks, ['token.grant', 'discovery']).map((c) => c.id)).toEqual(['discovery.prm', 'discovery.prm-resource', 'token.grant']);
    expect(selectChecks(checks, undefined)).toHaveLength(3);
  });

  it('refuses a name that selects nothing, listing the groups', () => {
    expect(() => selectChecks(checks, ['tokens'])).toThrow(RunOptionsError);
    expect(() => selectChecks(checks, ['tokens'])).toThrow(/--only tokens names no check\. Groups: discovery, registration, token/);
  });
});
