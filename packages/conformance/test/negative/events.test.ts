import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eventsChecks } from '../../src/checks/events.ts';
import { startTestProvider, type TestProvider } from '../../src/provider/test-provider.ts';
import { jsonAnswer, pathOf, type Breakage, type ProxiedRequest } from '../fixtures/broken-service.ts';
import { brokenServices } from '../fixtures/lifecycle.ts';
import { runCheck, runChecks } from '../fixtures/run-check.ts';

/**
 * Each events check against a service broken in exactly the rule it tests. The proxy plays a
 * receiver that verifies less than it should by re-signing a SET it was sent with the provider's
 * real key (after changing what the breakage ignores), so the real service acts on it.
 */

type Json = Record<string, any>;

const EVENTS_PATH = '/agent/event/notify';
const TIMEOUT_MS = 60_000;

/** The provider first (the service must trust it), then the broken service; `make` sees the provider. */
const { startWithProvider: start } = brokenServices();

function decode(token: string): { header: Json; payload: Json } {
  const [header, payload] = token.split('.') as [string, string];
  const json = (segment: string) => JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Json;
  return { header: json(header), payload: json(payload) };
}

const isSetDelivery = (request: ProxiedRequest) => request.method === 'POST' && pathOf(request) === EVENTS_PATH;

/** The SET re-signed with the provider's published key, typed secevent+jwt, its claims changed by `edit`. */
function resign(provider: TestProvider, set: string, edit: (payload: Json) => Json = (payload) => payload): Promise<string> {
  const payload = edit(decode(set).payload);
  return provider.signSet({ audience: payload.aud, email: 'ignored@example.com', claims: payload });
}

/** A receiver that skips a check: every delivered SET reaches the service as a valid one (after `edit`). */
function acceptsAnySet(provider: TestProvider, edit?: (payload: Json) => Json): Breakage {
  return {
    async request(request) {
      if (!isSetDelivery(request)) return request;
      const set = await resign(provider, request.body.toString('utf8').trim(), edit);
      return { ...request, headers: { ...request.headers, 'content-type': 'application/secevent+jwt' }, body: Buffer.from(set) };
    },
  };
}

describe('events checks against broken services', () => {
  it('events.revocation fails when the receiver acknowledges the SET but does nothing', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => ({ answer: (request) => (isSetDelivery(request) ? { status: 202, headers: {}, cookies: [], body: Buffer.alloc(0) } : undefined) }));
    const result = await runCheck(service, 'events.revocation', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/access token must then be refused at the API \(401\), got GET \/api\/notes → 200/);
  });

  it('events.revocation fails when the receiver answers 200 instead of 202', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => ({ response: (request, response) => (isSetDelivery(request) && response.status === 202 ? { ...response, status: 200 } : response) }));
    const result = await runCheck(service, 'events.revocation', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected 202 Accepted \(RFC 8935 §2\.2\), got POST \/agent\/event\/notify → 200/);
  });

  it('events.duplicate fails when a redelivered SET gets a 500', { timeout: TIMEOUT_MS }, async () => {
    const seen = new Set<string>();
    const { service, provider } = await start(() => ({
      answer(request) {
        if (!isSetDelivery(request)) return undefined;
        const body = request.body.toString('utf8');
        if (!seen.has(body)) return void seen.add(body);
        return jsonAnswer(500, { error: 'internal_error' });
      },
    }));
    const result = await runCheck(service, 'events.duplicate', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/delivered a second time .* got POST \/agent\/event\/notify → 500/);
  });

  it('events.duplicate fails when a redelivered SET is processed again', { timeout: TIMEOUT_MS }, async () => {
    const seen = new Set<string>();
    const { service, provider } = await start((provider) => ({
      async request(request) {
        if (!isSetDelivery(request)) return request;
        const body = request.body.toString('utf8');
        if (!seen.has(body)) {
          seen.add(body);
          return request;
        }
        // No jti memory: the same event again, as if it were new.
        return { ...request, body: Buffer.from(await resign(provider, body, (payload) => ({ ...payload, jti: randomUUID() }))) };
      },
    }));
    const result = await runCheck(service, 'events.duplicate', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the duplicate SET had a second effect: the token issued on consent given after the first delivery now gets GET \/api\/notes → 401/);
  });

  it('events.bad-signature fails when the receiver does not verify signatures', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start((provider) => acceptsAnySet(provider));
    const result = await runCheck(service, 'events.bad-signature', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/a SET signed by a key that is in no JWKS of the provider: expected 400 .* got POST \/agent\/event\/notify → 202/);
  });

  it('events.bad-signature fails when the refusal has no {err, description} body', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => ({
      response: (request, response) => (isSetDelivery(request) && response.status === 400 ? jsonAnswer(400, { error: 'invalid_signature' }) : response),
    }));
    const result = await runCheck(service, 'events.bad-signature', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/must carry a JSON object with "err" and "description"/);
  });

  it('events.wrong-audience fails when the receiver ignores aud', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start((provider) => acceptsAnySet(provider, (payload) => ({ ...payload, aud: service!.base })));
    const result = await runCheck(service, 'events.wrong-audience', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/a SET with aud https:\/\/another-service\.example: expected 400 .* got POST \/agent\/event\/notify → 202/);
  });

  it('events.untrusted-issuer fails when the refusal names the wrong error code', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => ({
      response: (request, response) => (isSetDelivery(request) && response.status === 400 ? jsonAnswer(400, { err: 'invalid_request', description: 'Bad SET.' }) : response),
    }));
    const result = await runCheck(service, 'events.untrusted-issuer', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected err "invalid_issuer", got POST \/agent\/event\/notify → 400/);
  });

  it('events.untrusted-issuer fails when the receiver acts on SETs of any issuer', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start((provider) => acceptsAnySet(provider, (payload) => ({ ...payload, iss: provider.issuer })));
    const result = await runCheck(service, 'events.untrusted-issuer', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/iss https:\/\/untrusted-provider\.example: expected 400 .* got POST \/agent\/event\/notify → 202/);
  });

  it('events.content-type fails when a JSON-typed delivery crashes the receiver', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => ({
      answer: (request) => (isSetDelivery(request) && request.headers['content-type'] === 'application/json' ? jsonAnswer(500, { error: 'internal_error' }) : undefined),
    }));
    const result = await runCheck(service, 'events.content-type', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/Content-Type application\/json: expected 400 .* got POST \/agent\/event\/notify → 500/);
  });

  it('events.content-type fails when the receiver refuses the delivery but acts on it', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start(() => ({
      // The JSON delivery is processed as a SET, and then answered as a refusal.
      request: (request) =>
        isSetDelivery(request) && request.headers['content-type'] === 'application/json'
          ? { ...request, headers: { ...request.headers, 'content-type': 'application/secevent+jwt', 'x-was-json': '1' } }
          : request,
      response: (request, response) => (request.headers['x-was-json'] ? jsonAnswer(400, { err: 'invalid_request', description: 'Use application/secevent+jwt.' }) : response),
    }));
    const result = await runCheck(service, 'events.content-type', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/Content-Type application\/json was refused yet took effect: the person's access token now gets GET \/api\/notes → 401/);
  });

  it('events.wrong-typ fails when the receiver ignores typ', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start((provider) => acceptsAnySet(provider));
    const result = await runCheck(service, 'events.wrong-typ', { provider });
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/a SET with typ oauth-id-jag\+jwt: expected 400 .* got POST \/agent\/event\/notify → 202/);
  });
});

describe('events checks against the unbroken service', () => {
  it('every events check passes', { timeout: TIMEOUT_MS }, async () => {
    const { service, provider } = await start();
    const results = await runChecks(service, ['events'], { provider });
    expect(results.map((result) => result.id)).toEqual(eventsChecks.map((check) => check.id));
    for (const result of results) expect({ id: result.id, outcome: result.outcome, message: result.message }).toEqual({ id: result.id, outcome: 'pass', message: undefined });
  });

  it('every events check is skipped, saying how to trust it, when the service does not trust the test provider', { timeout: TIMEOUT_MS }, async () => {
    // The service trusts another provider, so it has an events endpoint, but not the suite's.
    const trusted = await startTestProvider({ port: 0 });
    try {
      const { provider, service } = await start(undefined, { trust: trusted.trustEntry });
      const results = await runChecks(service, ['events'], { provider });
      for (const result of results) {
        expect(result.outcome).toBe('skip');
        expect(result.message).toMatch(/does not trust the test provider .* add it to the service's trust list/);
      }
    } finally {
      await trusted.close();
    }
  });
});
