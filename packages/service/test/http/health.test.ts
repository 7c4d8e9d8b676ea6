import { afterEach, describe, expect, it } from 'vitest';
import { createPostgresStore } from '@authmd/service';
import { startService, type RunningService } from '../support/harness.ts';
import { createTestDatabase, relay, type TestDatabase } from '../../../../test-support/postgres.ts';

let running: RunningService | undefined;
let db: TestDatabase | undefined;
afterEach(async () => {
  await running?.close().catch(() => {});
  running = undefined;
  await db?.drop();
  db = undefined;
});

describe('/healthz and /readyz', () => {
  it('answer 200 with no-store, HEAD too, refuse POST, and are not advertised in the metadata', async () => {
    running = await startService({ backend: 'memory' });
    const { base } = running;
    for (const path of ['/healthz', '/readyz']) {
      const response = await fetch(base + path);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect((await response.json()).status).toBe('ok');
      expect((await fetch(base + path, { method: 'HEAD' })).status).toBe(200);
      const post = await fetch(base + path, { method: 'POST' });
      expect(post.status).toBe(405);
      expect(post.headers.get('allow')).toBe('GET, HEAD');
    }
    const documents = await Promise.all(
      ['/.well-known/oauth-authorization-server', '/.well-known/oauth-protected-resource', '/auth.md'].map((path) => fetch(base + path).then((r) => r.text())),
    );
    for (const document of documents) expect(document).not.toMatch(/healthz|readyz/);
  });

  it('readiness names the store and turns 503 with Retry-After while PostgreSQL is unreachable; liveness stays 200', async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    let link = await relay(target);
    const url = new URL(db.url);
    url.host = `127.0.0.1:${link.port}`;
    running = await startService({ store: createPostgresStore({ connectionString: url.toString(), connectionTimeoutMs: 1000 }) });
    const { base } = running;
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', store: 'postgres' });

    await link.cut();
    const started = performance.now();
    const down = await fetch(`${base}/readyz`);
    expect(performance.now() - started).toBeLessThan(3000);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    expect(down.headers.get('cache-control')).toBe('no-store');
    expect(await down.json()).toEqual({ status: 'unavailable', store: 'postgres', retry_after: 1 });
    const live = await fetch(`${base}/healthz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });

    link = await relay(target, link.port); // the database is back on the same address
    let back = 0;
    for (let i = 0; i < 20 && back !== 200; i++) {
      back = (await fetch(`${base}/readyz`)).status;
      if (back !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(back).toBe(200);
    await link.cut();
  });
});
