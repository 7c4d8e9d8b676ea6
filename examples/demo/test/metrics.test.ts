import { describe, expect, it } from 'vitest';
import { readSettings } from '../src/settings.ts';
import { startDemo } from '../src/start.ts';
import { startMain, waitFor } from './npm-start.ts';
import { tempDirs } from '../../../test-support/temp-dirs.ts';

/** AUTHMD_METRICS_PORT (issue 14): metrics on a server of their own on 127.0.0.1, never on the public port. */

const tempDir = tempDirs('authmd-metrics-');

const register = (base: string) => fetch(`${base}/agent/identity`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"anonymous"}' });

describe('AUTHMD_METRICS_PORT', () => {
  it('npm start serves the service\'s and the provider\'s metrics on 127.0.0.1 at that port; the public port answers 404 for /metrics', async () => {
    const main = startMain({ PORT: '0', AUTHMD_DATA_DIR: tempDir(), AUTHMD_METRICS_PORT: '0' });
    try {
      const [, url] = await waitFor(() => /Home page\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(main.output().stdout), main.exited, 'home page URL');
      const [, metricsUrl] = await waitFor(() => /Prometheus metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(main.output().stdout), main.exited, 'metrics URL');
      expect(new URL(metricsUrl!).port).not.toBe(new URL(url!).port);

      expect((await register(url!)).status).toBe(200);
      const scraped = await fetch(metricsUrl!);
      expect(scraped.status).toBe(200);
      expect(scraped.headers.get('content-type')).toContain('text/plain');
      const text = await scraped.text();
      expect(text).toContain('authmd_registrations_total{method="anonymous",outcome="ok"} 1');
      expect(text).toContain('authmd_http_request_duration_seconds_count{route="/agent/identity",method="POST",status_class="2xx"} 1');
      expect(text).toContain('authmd_set_outbox_backlog 0');
      expect(text).toContain('# TYPE authmd_set_deliveries_total counter');

      // Not public: the demo's own port has no /metrics, and the metrics server has nothing else.
      expect((await fetch(`${url}/metrics`)).status).toBe(404);
      expect((await fetch(metricsUrl!.replace('/metrics', '/'))).status).toBe(404);
    } finally {
      main.child.kill('SIGTERM');
    }
    expect(await main.exited).toBe(0);
  });

  it('without it, no metrics server is started and the demo says nothing of metrics', async () => {
    const demo = await startDemo({ port: 0, dataDir: tempDir(), store: 'memory' });
    try {
      expect(demo.metricsUrl).toBeUndefined();
      expect(demo.service.metrics).toBeUndefined();
      expect((await fetch(`${demo.url}/metrics`)).status).toBe(404);
    } finally {
      await demo.close();
    }
  });

  it('is validated: a port, not PORT or PROVIDER_PORT', () => {
    const read = (env: Record<string, string>) => readSettings({ PORT: '8787', ...env }, '/tmp');
    expect(read({ AUTHMD_METRICS_PORT: '9464' })).toMatchObject({ ok: true, settings: { metricsPort: 9464 } });
    expect(read({ AUTHMD_METRICS_PORT: '0' })).toMatchObject({ ok: true, settings: { metricsPort: 0 } });
    expect(read({})).toMatchObject({ ok: true, settings: expect.not.objectContaining({ metricsPort: expect.anything() }) });
    for (const bad of ['abc', '70000', '-1', '8787', '8788']) {
      const outcome = read({ AUTHMD_METRICS_PORT: bad });
      expect(outcome.ok, bad).toBe(false);
      if (!outcome.ok) expect(outcome.message).toContain(`AUTHMD_METRICS_PORT must be a free port from 0 to 65535 other than PORT and PROVIDER_PORT (got "${bad}")`);
    }
  });
});
