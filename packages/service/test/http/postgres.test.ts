import { afterEach, describe, expect, it } from 'vitest';
import { createPostgresStore } from '@authmd/service';
import { accessTokenFor, callApi, postJson, registerAnonymous, startService, type RunningService } from '../support/harness.ts';
import { createTestDatabase, relay, type TestDatabase } from '../../../../test-support/postgres.ts';

let running: RunningService | undefined;
let db: TestDatabase | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
  await db?.drop();
  db = undefined;
});

describe('postgres backend over HTTP', () => {
  it('runs register → exchange → API on the harness backend', async () => {
    running = await startService({ backend: 'postgres' });
    expect(running.service.store.kind).toBe('postgres');
    const registration = await registerAnonymous(running.base);
    const token = await accessTokenFor(running.base, registration.identity.assertion);
    expect((await callApi(running.base, token)).status).toBe(200);
  });

  it('answers 503 temporarily_unavailable with Retry-After at once while the database is unreachable, and recovers', async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    let link = await relay(target);
    const url = new URL(db.url);
    url.host = `127.0.0.1:${link.port}`;
    running = await startService({ store: createPostgresStore({ connectionString: url.toString(), connectionTimeoutMs: 1000 }) });
    const { base } = running;
    expect((await registerAnonymous(base)).id).toBeTruthy();
    const unchecked = await accessTokenFor(base, (await registerAnonymous(base)).identity.assertion);

    await link.cut();
    // The protected API cannot judge a token it has not cached: 503 with Retry-After, never a 401.
    const api = await callApi(base, unchecked);
    expect(api.status).toBe(503);
    expect(api.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(api.headers.get('www-authenticate')).toBeNull();
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const response = await postJson(`${base}/agent/identity`, { type: 'anonymous' });
      expect(performance.now() - started).toBeLessThan(2000);
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('1');
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      const body = await response.json();
      expect(body.error).toBe('temporarily_unavailable');
      expect(body.error_description).toMatch(/cannot reach its database/);
      expect(body.retry_after).toBe(1);
    }

    link = await relay(target, link.port); // the database is back on the same address
    expect((await registerAnonymous(base)).id).toBeTruthy();
    await link.cut();
    await running.close().catch(() => {});
    running = undefined;
  });
});
