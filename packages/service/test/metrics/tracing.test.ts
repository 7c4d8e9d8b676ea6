import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { recordSpans } from '../../../../test-support/tracing.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStore, createService, nodeMiddleware, silentLogger, type AuthmdService } from '@authmd/service';
import { postJson } from '../support/harness.ts';

/**
 * Spans (issue 14): with a host's OpenTelemetry SDK registered, every request is a span named after
 * its route, under the host's own active span (its HTTP instrumentation, played here by hand).
 */

const exporter = recordSpans();

interface Running {
  base: string;
  service: AuthmdService;
  server: Server;
  failAudit: { on: boolean };
}

let running: Running | undefined;

afterEach(async () => {
  if (!running) return;
  running.server.closeAllConnections();
  await new Promise<void>((resolve) => running!.server.close(() => resolve()));
  await running.service.close();
  running = undefined;
  exporter.reset();
});

/** A host app: each request is its own span ('host request'), the service's middleware inside it. */
async function startHost(): Promise<Running> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const failAudit = { on: false };
  const service = await createService({
    issuer: base,
    scopes: { preClaim: ['notes.read'], postClaim: ['notes.read'] },
    store: createMemoryStore(),
    logger: silentLogger,
    maintenanceIntervalSeconds: 0,
    mail: { outbox: true },
    // A sink that can fail: an unexpected error, so a 500.
    audit: {
      record: async () => {
        if (failAudit.on) throw new Error('the audit sink is down');
      },
    },
  });
  const middleware = nodeMiddleware(service);
  const host = trace.getTracer('host-app');
  server.on('request', (req, res) =>
    host.startActiveSpan('host request', { kind: SpanKind.SERVER }, (span) => {
      res.on('finish', () => span.end());
      middleware(req, res, () => {
        res.writeHead(404);
        res.end();
      });
    }),
  );
  running = { base, service, server, failAudit };
  return running;
}

async function finished(name: string, count = 1): Promise<ReadableSpan[]> {
  for (let i = 0; i < 100; i++) {
    const spans = exporter.getFinishedSpans().filter((span) => span.name === name);
    if (spans.length >= count) return spans;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no finished span ${name}; have ${exporter.getFinishedSpans().map((span) => span.name).join(', ')}`);
}

describe('spans', () => {
  it("one span per request, named after its route, with its attributes, a child of the host's span", async () => {
    const { base } = await startHost();
    expect((await postJson(`${base}/agent/identity`, { type: 'anonymous' })).status).toBe(200);

    const [span] = await finished('POST /agent/identity');
    const [hostSpan] = await finished('host request');
    expect(span!.instrumentationScope.name).toBe('@authmd/service');
    expect(span!.kind).toBe(SpanKind.INTERNAL);
    expect(span!.attributes).toEqual({ 'http.request.method': 'POST', 'http.route': '/agent/identity', 'http.response.status_code': 200 });
    expect(span!.status.code).toBe(SpanStatusCode.UNSET);
    expect(span!.spanContext().traceId).toBe(hostSpan!.spanContext().traceId);
    expect(span!.parentSpanContext?.spanId).toBe(hostSpan!.spanContext().spanId);
  });

  it('a refusal names its error code; a 5xx is an error span', async () => {
    const { base, failAudit } = await startHost();
    expect((await postJson(`${base}/agent/identity`, { type: 'service_auth', login_hint: 'not-an-email' })).status).toBe(400);
    failAudit.on = true;
    expect((await postJson(`${base}/agent/identity`, { type: 'anonymous' })).status).toBe(500);

    const [refused, failed] = await finished('POST /agent/identity', 2);
    expect(refused!.attributes).toMatchObject({ 'http.response.status_code': 400, 'authmd.error': 'invalid_login_hint' });
    expect(refused!.status.code).toBe(SpanStatusCode.UNSET);
    expect(failed!.attributes).toMatchObject({ 'http.response.status_code': 500, 'authmd.error': 'server_error' });
    expect(failed!.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('a path that is not the service\'s: the method alone names the span, without http.route; no active span, no parent', async () => {
    const { base, service } = await startHost();
    expect((await service.handler(new Request(`${base}/not/the/service/4711`))).status).toBe(404);
    const [span] = await finished('GET');
    expect(span!.attributes).toEqual({ 'http.request.method': 'GET', 'http.response.status_code': 404, 'authmd.error': 'not_found' });
    expect(span!.parentSpanContext).toBeUndefined();
    expect(exporter.getFinishedSpans().some((s) => s.name.includes('4711'))).toBe(false);
  });
});
