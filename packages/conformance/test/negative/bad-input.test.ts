import { describe, expect, it } from 'vitest';
import { badInputChecks } from '../../src/checks/bad-input.ts';

import { bodyOf, jsonAnswer, pathOf, type Breakage, type ProxiedRequest, type ProxiedResponse } from '../fixtures/broken-service.ts';
import { brokenServices } from '../fixtures/lifecycle.ts';
import { runCheck, runChecks } from '../fixtures/run-check.ts';

const IDENTITY = '/agent/identity';
const CLAIM = '/agent/identity/claim';
const COMPLETE = '/agent/identity/claim/complete';
const TOKEN = '/oauth2/token';

const { start: broken, startWithProvider } = brokenServices();

const isPost = (request: ProxiedRequest, path: string): boolean => request.method === 'POST' && pathOf(request) === path;
const serverError = (contentType = 'text/html'): ProxiedResponse => ({ status: 500, headers: { 'content-type': contentType }, cookies: [], body: Buffer.from('<h1>Internal Server Error</h1>') });

/** A request rewritten as a lenient service would read it, before the real service sees it. */
function readAs(path: string, rewrite: (request: ProxiedRequest) => ProxiedRequest | undefined): Breakage {
  return { request: (request) => (isPost(request, path) ? (rewrite(request) ?? request) : request) };
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

describe('bad-input checks fail against a broken service', () => {
  it('bad-input.malformed-json: a 500 page for malformed JSON', async () => {
    const service = await broken({ answer: (request) => (isPost(request, IDENTITY) && !parsesAsJson(request.body.toString('utf8')) ? serverError() : undefined) });
    const result = await runCheck(service, 'bad-input.malformed-json');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/truncated JSON.*expected 400 invalid_request in JSON, got a server error: POST \/agent\/identity → 500/);
  });

  it('bad-input.malformed-json: a 400 that is not JSON', async () => {
    const service = await broken({
      answer: (request) =>
        isPost(request, IDENTITY) && !parsesAsJson(request.body.toString('utf8')) ? { status: 400, headers: { 'content-type': 'text/plain' }, cookies: [], body: Buffer.from('Bad Request') } : undefined,
    });
    const result = await runCheck(service, 'bad-input.malformed-json');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/got a body that is not JSON \(Content-Type text\/plain\)/);
  });

  it('bad-input.oversized: a service without a body cap registers the 1 MiB body', async () => {
    const service = await broken(readAs(IDENTITY, (request) => (request.body.length > 64 * 1024 ? { ...request, body: Buffer.from('{"type":"anonymous"}') } : undefined)));
    const result = await runCheck(service, 'bad-input.oversized');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/1 MiB anonymous registration.*expected 413 or 400 error in JSON, got status 200/);
  });

  it('bad-input.content-type: a service that parses text/plain as JSON', async () => {
    const service = await broken(readAs(IDENTITY, (request) => ({ ...request, headers: { ...request.headers, 'content-type': 'application/json' } })));
    const result = await runCheck(service, 'bad-input.content-type');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/as text\/plain to the identity endpoint: expected a 4xx error in JSON, got status 200/);
  });

  it('bad-input.content-type: a service that reads forms at the identity endpoint', async () => {
    const formAsJson = (request: ProxiedRequest): ProxiedRequest | undefined =>
      (request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
        ? { ...request, headers: { ...request.headers, 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(bodyOf(request))) }
        : undefined;
    const service = await broken(readAs(IDENTITY, formAsJson));
    const result = await runCheck(service, 'bad-input.content-type');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/type=anonymous as a form to the identity endpoint: expected a 4xx error in JSON, got status 200/);
  });

  it('bad-input.unknown-type: a service that takes an unknown type for anonymous', async () => {
    const service = await broken(readAs(IDENTITY, (request) => (bodyOf(request).type === 'password' ? { ...request, body: Buffer.from('{"type":"anonymous"}') } : undefined)));
    const result = await runCheck(service, 'bad-input.unknown-type');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/\{"type":"password"\}.*expected 400 invalid_request in JSON, got status 200/);
  });

  it('bad-input.token-form: a token endpoint that reads JSON bodies', async () => {
    const jsonAsForm = (request: ProxiedRequest): ProxiedRequest | undefined =>
      (request.headers['content-type'] ?? '').includes('json')
        ? { ...request, headers: { ...request.headers, 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(new URLSearchParams(bodyOf(request)).toString()) }
        : undefined;
    const service = await broken(readAs(TOKEN, jsonAsForm));
    const result = await runCheck(service, 'bad-input.token-form');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/as JSON to the token endpoint: expected 400 invalid_request or unsupported_grant_type in JSON, got error invalid_grant/);
  });

  it('bad-input.token-form: a 500 for a form without grant_type', async () => {
    const service = await broken({ answer: (request) => (isPost(request, TOKEN) && bodyOf(request).grant_type === undefined && !(request.headers['content-type'] ?? '').includes('json') ? serverError('application/json') : undefined) });
    const result = await runCheck(service, 'bad-input.token-form');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/form without grant_type.*got a server error/);
  });

  it('bad-input.duplicate-parameter: a token endpoint that keeps one of two grant_type values', async () => {
    const service = await broken(readAs(TOKEN, (request) => ({ ...request, body: Buffer.from(new URLSearchParams(Object.fromEntries(new URLSearchParams(request.body.toString('utf8')))).toString()) })));
    const result = await runCheck(service, 'bad-input.duplicate-parameter');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/grant_type twice.*expected 400 invalid_request in JSON, got error invalid_grant/);
  });

  it('bad-input.claim-body: a claim endpoint that treats a mistyped claim_token as unknown (401)', async () => {
    const service = await broken({ answer: (request) => (isPost(request, CLAIM) && typeof bodyOf(request).claim_token === 'number' ? jsonAnswer(401, { error: 'invalid_claim_token' }) : undefined) });
    const result = await runCheck(service, 'bad-input.claim-body');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/"claim_token":123.*to the claim endpoint: expected 400 error in JSON, got status 401/);
  });

  it('bad-input.claim-body: a completion endpoint that crashes on {}', async () => {
    const service = await broken({ answer: (request) => (isPost(request, COMPLETE) && request.body.toString('utf8') === '{}' ? serverError() : undefined) });
    const result = await runCheck(service, 'bad-input.claim-body');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/POST \{\} to the claim completion endpoint: expected 400 error in JSON, got a server error/);
  });

  it('bad-input.fuzz: an HTML answer to a wrong content type names the request', async () => {
    const service = await broken({
      answer: (request) =>
        request.headers['content-type'] === 'application/xml' ? { status: 415, headers: { 'content-type': 'text/html' }, cookies: [], body: Buffer.from('<p>Unsupported</p>') } : undefined,
    });
    const result = await runCheck(service, 'bad-input.fuzz');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/^request 4 of \d+ \(identity: Content-Type application\/xml\): expected a 4xx error in JSON, got a body that is not JSON \(Content-Type text\/html\): POST \/agent\/identity → 415/);
  });

  it('bad-input.fuzz: a crash on deeply nested JSON at the claim endpoint', async () => {
    const service = await broken({ answer: (request) => (isPost(request, CLAIM) && request.body.subarray(0, 4).toString() === '[[[[' ? serverError('application/json') : undefined) });
    const result = await runCheck(service, 'bad-input.fuzz');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/^request \d+ of \d+ \(claim: nesting 5000 levels deep\): expected a 4xx error in JSON, got a server error: POST \/agent\/identity\/claim → 500/);
  });

  it('bad-input.fuzz: an HTML 500 for every member null at the v0.1 completion endpoint (issue 12)', async () => {
    const service = await broken({
      answer: (request) => (isPost(request, '/agent/auth/claim/complete') && request.body.toString('utf8').includes('"otp":null') ? serverError() : undefined),
    });
    const result = await runCheck(service, 'bad-input.fuzz');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/^request \d+ of 90 \(v0\.1 claim\/complete: every member null\): expected a 4xx error in JSON, got a server error: POST \/agent\/auth\/claim\/complete → 500/);
  });
});

describe('bad-input checks against the real service', () => {
  it('every bad-input check passes', async () => {
    const service = await broken({});
    const results = await runChecks(service, ['bad-input']);
    // The group's checks, the v0.1 one (src/checks/v01.ts) included: the demo speaks v0.1.
    expect(results.map((r) => r.id)).toEqual([...badInputChecks.map((check) => check.id), 'bad-input.v01-bodies']);
    for (const result of results) expect({ id: result.id, outcome: result.outcome, message: result.message }).toEqual({ id: result.id, outcome: 'pass', message: undefined });
  });

  it('bad-input.fuzz also passes with an events endpoint (a trusted provider), whose requests it sends as secevent+jwt', async () => {
    const { provider, service } = await startWithProvider();
    expect(await runCheck(service, 'bad-input.fuzz', { provider })).toMatchObject({ outcome: 'pass' });
    const events = service.seen.filter((request) => pathOf(request) === '/agent/event/notify');
    expect(events).toHaveLength(8);
    const types = events.filter((request) => request.method === 'POST').map((request) => request.headers['content-type']);
    expect(types.filter((type) => type !== 'application/xml').every((type) => type === 'application/secevent+jwt')).toBe(true);
  });
});
