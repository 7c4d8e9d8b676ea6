import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDemo } from '../../../examples/demo/src/start.ts';
import { freePort } from '../../../test-support/free-port.ts';
import { createTestDatabase } from '../../../test-support/postgres.ts';
import { catalogue } from '../src/checks/index.ts';
import { testProviderTrustEntry } from '../src/provider/test-provider.ts';
import type { Report } from '../src/runner.ts';
import { expectAllPassTwice, runCli } from './fixtures/check-own-demo.ts';

/**
 * The judge of our own service (issue 6, Done when): `authmd check`, spawned as a person runs it,
 * against the demo on each store (SQLite, memory, PostgreSQL; with Redis in own-service-redis.test.ts),
 * trusting the check's test provider. Every check must pass, except those of what the demo does not
 * offer; the run's output (one line per check and the summary) is printed into the test log.
 */

// The stores at once: a check run mostly waits (claim polling intervals, the person's pages).
describe('authmd check against the demo', () => {
  it.concurrent.each(['sqlite', 'memory', 'postgres'] as const)('on %s: passes every check, twice in a row (the second without --api); prints one line per check and the summary', async (store) => {
    const dataDir = mkdtempSync(join(tmpdir(), `authmd-check-${store}-`));
    const providerPort = await freePort();
    const keyFile = join(dataDir, 'check-provider-key.json');
    const database = store === 'postgres' ? await createTestDatabase() : undefined;
    const demo = await startDemo({
      port: 0,
      dataDir,
      ...(store === 'postgres' ? { databaseUrl: database!.url } : { store }),
      trustProvider: testProviderTrustEntry(providerPort),
    });
    try {
      await expectAllPassTwice(demo.url, providerPort, keyFile, store);
    } finally {
      await demo.close();
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 240_000);
});

describe('authmd check --json', () => {
  it('prints the report as one JSON object; a selection runs only what it names', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'authmd-check-json-'));
    const demo = await startDemo({ port: 0, dataDir, store: 'memory' });
    try {
      const text = await runCli(['check', demo.url, '--only', 'discovery,token', '--no-provider', '--json']);
      expect(text.code, text.stderr).toBe(0);
      const report = JSON.parse(text.stdout) as Report;
      const expected = catalogue.filter((check) => check.group === 'discovery' || check.group === 'token').map((check) => check.id);
      expect(report.results.map((result) => result.id)).toEqual(expected);
      expect(report.provider).toBeUndefined();
      expect(report.summary.failed).toBe(0);
    } finally {
      await demo.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('exits 64 with the groups listed for an --only that names nothing', async () => {
    const text = await runCli(['check', 'http://127.0.0.1:9', '--only', 'tokens']);
    expect(text.code).toBe(64);
    expect(text.stderr).toMatch(/--only tokens names no check\. Groups: discovery, registration/);
  });
});
