import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';
import { createMemoryStore, createService, nodeMiddleware, silentLogger, type AuthmdService, type ServiceOptions } from '@authmd/service';

/**
 * A real service on 127.0.0.1 (plain HTTP, ephemeral port) whose issuer the test chooses from the
 * bound address: `https://127.0.0.1:<port>` for an https issuer, `http://127.0.0.1:<port>/auth` for
 * one with a path. The node adapter resolves request targets against the issuer's origin and never
 * trusts the Host header, so plain HTTP reaches an https issuer's pages. Closed after each test.
 */
export interface IssuerServer {
  /** Where the server listens: `http://127.0.0.1:<port>`. */
  base: string;
  issuer: string;
  service: AuthmdService;
}

export function issuerServerPerTest(): (issuerFor: (base: string) => string, options?: Partial<Omit<ServiceOptions, 'issuer'>>) => Promise<IssuerServer> {
  let closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(closers.map((close) => close()));
    closers = [];
  });
  return async (issuerFor, options = {}) => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const issuer = issuerFor(base);
    const service = await createService({
      issuer,
      scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
      store: createMemoryStore(),
      logger: silentLogger,
      maintenanceIntervalSeconds: 0,
      limits: { signInCodesPerIpPerHour: 1_000_000 },
      mail: { outbox: true },
      ...options,
    });
    server.on('request', nodeMiddleware(service));
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await service.close();
    });
    return { base, issuer, service };
  };
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One request through node:http, which (unlike fetch) sends the Host header it is given: what a
 * browser sends for a page whose name was rebound to 127.0.0.1 (DNS rebinding).
 */
export function rawRequest(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, timeout: 5000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`${url}: no answer within 5 s`)));
    request.on('error', reject);
    request.end(options.body);
  });
}
