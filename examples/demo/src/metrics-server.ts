import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsRegistry } from '@authmd/service';
import { listen } from './server-lifecycle.ts';

/**
 * AUTHMD_METRICS_PORT: the service's and the demo provider's Prometheus metrics at `/metrics`, on a
 * server of their own bound to 127.0.0.1, so that only a scraper on this machine reads them; the
 * demo's public port never serves them.
 */
export async function startMetricsServer(port: number, registries: readonly MetricsRegistry[]): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      return res.end('Not found: the metrics are at GET /metrics.\n');
    }
    // Different metric names in each registry: their expositions, one after the other, are one exposition.
    Promise.all(registries.map((registry) => registry.metrics())).then(
      (texts) => {
        res.writeHead(200, { 'Content-Type': registries[0]!.contentType });
        res.end(req.method === 'HEAD' ? undefined : texts.join('\n'));
      },
      (error: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`Collecting the metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
      },
    );
  });
  await listen(server, port, '127.0.0.1');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`, server };
}
