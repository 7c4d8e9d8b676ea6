import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { recordSpans } from '../../../test-support/tracing.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeService, startProvider } from './support.ts';

/** The provider's spans (issue 14): one per revocation SET delivery attempt, under the host's active span. */

const exporter = recordSpans();

const cleanup: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c.close();
  exporter.reset();
});

describe('SET delivery spans', () => {
  it('each attempt is a CLIENT span with its outcome and status, a child of the active span; a failure for good is an error', async () => {
    const s = await startFakeService();
    cleanup.push(s);
    const running = await startProvider({ outbox: { inlineTimeoutMs: 0 } });
    cleanup.push(running);
    const p = running.provider;
    for (const user of ['user_ada', 'user_bob']) {
      const grant = await p.grants.create(user, { audience: s.url, mode: 'always' });
      await p.grants.delete(user, grant.id);
    }
    s.answerWith([{ status: 202 }, { status: 400, body: { err: 'invalid_audience', description: 'Not for us.' } }]);
    const host = trace.getTracer('host-app');
    await host.startActiveSpan('host job', async (span) => {
      await p.deliverDue();
      span.end();
    });

    const [hostSpan] = exporter.getFinishedSpans().filter((span) => span.name === 'host job');
    const deliveries = exporter.getFinishedSpans().filter((span) => span.name === 'deliver revocation SET');
    expect(deliveries).toHaveLength(2);
    for (const span of deliveries) {
      expect(span.instrumentationScope.name).toBe('@authmd/provider');
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.parentSpanContext?.spanId).toBe(hostSpan!.spanContext().spanId);
      expect(span.attributes['authmd.set.attempt']).toBe(1);
    }
    const byOutcome = Object.fromEntries(deliveries.map((span) => [span.attributes['authmd.set.outcome'], span]));
    expect(byOutcome.delivered!.attributes['http.response.status_code']).toBe(202);
    expect(byOutcome.delivered!.status.code).toBe(SpanStatusCode.UNSET);
    expect(byOutcome.failed!.attributes['http.response.status_code']).toBe(400);
    expect(byOutcome.failed!.status.code).toBe(SpanStatusCode.ERROR);
  });
});
