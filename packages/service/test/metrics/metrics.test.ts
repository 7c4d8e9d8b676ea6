import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Registry, register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ConfigError, createMemoryStore, createService, silentLogger, type AuthmdService } from '@authmd/service';
import { exchange, postJson, registerAnonymous, servicePerTest } from '../support/harness.ts';
import { expectError } from '../http/helpers.ts';
import { authorize, completeClaim, deny, registerServiceAuth, signedIn, wrongCode, type Json } from '../claim/flows.ts';

/** Metrics (issue 14): exact counts over real HTTP, bounded labels only, off by default and never served by the service. */

const start = servicePerTest();

type Labels = Record<string, string>;

/** The value of one series (0 when it was never counted). */
async function valueOf(registry: Registry, name: string, labels: Labels): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  if (!metric) throw new Error(`no metric ${name}`);
  const series = metric.values.find((v) => {
    const own = v.labels as Labels;
    return Object.keys(own).length === Object.keys(labels).length && Object.entries(labels).every(([key, value]) => own[key] === value);
  });
  return series?.value ?? 0;
}

function registryOf(service: AuthmdService): Registry {
  if (!service.metrics) throw new Error('metrics are off');
  return service.metrics as Registry; // what metrics: true made: a prom-client Registry
}

describe('metrics on', () => {
  it('counts registrations, exchanges, claims, refusals and rate-limit hits exactly, and times every request', async () => {
    const running = await start({ metrics: true, rateLimits: { anonymous: { perIp: 3, perService: 100 } } });
    const { base, service } = running;
    const registry = registryOf(service);
    const secrets: string[] = [];

    // Anonymous: three fit the per-IP limit, the fourth is refused by it.
    const anonymous: Json[] = [];
    for (let i = 0; i < 3; i++) anonymous.push(await registerAnonymous(base));
    await expectError(await postJson(`${base}/agent/identity`, { type: 'anonymous' }), 429, 'rate_limit_exceeded');
    for (const registration of anonymous) secrets.push(registration.registration_id ?? registration.id, registration.identity.assertion, registration.claim.token);

    // service_auth: one refused (not an email), two made.
    await expectError(await postJson(`${base}/agent/identity`, { type: 'service_auth', login_hint: 'not-an-email' }), 400, 'invalid_login_hint');
    const ada = await registerServiceAuth(base, 'ada@example.com');
    const bob = await registerServiceAuth(base, 'bob@example.com');

    // Exchanges: one assertion accepted, one refused.
    const exchanged = await exchange(base, anonymous[0]!.identity.assertion);
    expect(exchanged.status).toBe(200);
    secrets.push((await exchanged.json()).access_token);
    await expectError(await exchange(base, 'not.a.jwt'), 400, 'invalid_grant');

    // Ada's claim: a wrong code, then confirmed. Bob denies his.
    const adaBrowser = await signedIn(base, 'ada@example.com');
    const code = await authorize(adaBrowser, ada.claim.attempt.verification_uri);
    await expectError(await completeClaim(base, ada.claim.token, wrongCode(code)), 401, 'invalid_user_code');
    const claimed = await completeClaim(base, ada.claim.token, code);
    expect(claimed.status).toBe(200);
    const claimedBody: Json = await claimed.json();
    secrets.push(claimedBody.identity?.assertion ?? claimedBody.identity_assertion, claimedBody.refresh_token ?? claimedBody.identity?.refresh_token);
    const bobBrowser = await signedIn(base, 'bob@example.com');
    expect((await deny(bobBrowser, bob.claim.attempt.verification_uri)).status).toBe(200);
    for (const registration of [ada, bob]) secrets.push(registration.registration_id ?? registration.id, registration.claim.token, registration.claim.attempt.verification_uri);

    // Not the service's: the service's own handler answers 404, under one route label.
    expect((await service.handler(new Request(`${base}/metrics`))).status).toBe(404);
    expect((await service.handler(new Request(`${base}/secret-path-4711`))).status).toBe(404);

    const count = (name: string, labels: Labels) => valueOf(registry, `authmd_${name}`, labels);
    expect(await count('registrations_total', { method: 'anonymous', outcome: 'ok' })).toBe(3);
    expect(await count('registrations_total', { method: 'anonymous', outcome: 'rate_limit_exceeded' })).toBe(1);
    expect(await count('registrations_total', { method: 'service_auth', outcome: 'ok' })).toBe(2);
    expect(await count('registrations_total', { method: 'service_auth', outcome: 'invalid_login_hint' })).toBe(1);
    expect(await count('token_exchanges_total', { grant: 'jwt_bearer', outcome: 'ok' })).toBe(1);
    expect(await count('token_exchanges_total', { grant: 'jwt_bearer', outcome: 'invalid_grant' })).toBe(1);
    expect(await count('claims_total', { outcome: 'confirmed' })).toBe(1);
    expect(await count('claims_total', { outcome: 'wrong_code' })).toBe(1);
    expect(await count('claims_total', { outcome: 'denied' })).toBe(1);
    expect(await count('rate_limit_hits_total', { limit: 'rateLimits.anonymous.perIp' })).toBe(1);
    expect(await count('refusals_total', { route: '/agent/identity', code: 'rate_limit_exceeded' })).toBe(1);
    expect(await count('refusals_total', { route: '/agent/identity', code: 'invalid_login_hint' })).toBe(1);
    expect(await count('refusals_total', { route: '/oauth2/token', code: 'invalid_grant' })).toBe(1);
    expect(await count('refusals_total', { route: '/agent/identity/claim/complete', code: 'invalid_user_code' })).toBe(1);
    expect(await count('refusals_total', { route: 'unknown', code: 'not_found' })).toBe(2);

    // The histogram: every POST /agent/identity is one observation, by status class.
    const histogram = (await registry.getMetricsAsJSON()).find((m) => m.name === 'authmd_http_request_duration_seconds')!;
    // A histogram's values name their series (_bucket, _sum, _count); prom-client's types leave it out.
    const seriesOf = (v: object) => (v as { metricName?: string }).metricName;
    const countOf = (statusClass: string) =>
      histogram.values.find((v) => seriesOf(v) === 'authmd_http_request_duration_seconds_count' && v.labels.route === '/agent/identity' && v.labels.method === 'POST' && v.labels.status_class === statusClass)?.value;
    expect(countOf('2xx')).toBe(5);
    expect(countOf('4xx')).toBe(2);
    expect(histogram.values.some((v) => seriesOf(v) === 'authmd_http_request_duration_seconds_sum' && v.labels.route === '/agent/identity' && v.value > 0)).toBe(true);

    // No label value holds an id, a secret, an email, an address or a raw path.
    const exposition = await registry.metrics();
    const ids = secrets.filter((secret) => typeof secret === 'string' && secret.startsWith('reg_'));
    expect(ids).toHaveLength(5);
    for (const secret of [...secrets.filter(Boolean), 'ada@example.com', 'bob@example.com', 'example.com', '127.0.0.1', 'secret-path-4711', '/metrics"']) {
      expect(exposition, secret).not.toContain(secret);
    }
    expect(exposition).not.toMatch(/\b(reg|clm|cvt|cla|art|at|sk|user)_[A-Za-z0-9]/);
  });

  it('counts v0.1 registrations by form, and the code tries of a claim once its attempt is closed', async () => {
    const running = await start({ metrics: true, limits: { codeTriesPerAttempt: 2, signInCodesPerIpPerHour: 1_000_000 } });
    const { base, service } = running;
    const registry = registryOf(service);
    const v01 = await postJson(`${base}/agent/auth`, { type: 'anonymous' });
    expect(v01.status).toBe(200);
    const ada = await registerServiceAuth(base, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const code = await authorize(browser, ada.claim.attempt.verification_uri);
    for (let i = 0; i < 2; i++) await expectError(await completeClaim(base, ada.claim.token, wrongCode(code)), 401, 'invalid_user_code');
    await expectError(await completeClaim(base, ada.claim.token, code), 429, 'too_many_attempts');

    expect(await valueOf(registry, 'authmd_registrations_total', { method: 'v0.1_anonymous', outcome: 'ok' })).toBe(1);
    expect(await valueOf(registry, 'authmd_claims_total', { outcome: 'wrong_code' })).toBe(2);
    expect(await valueOf(registry, 'authmd_claims_total', { outcome: 'too_many_attempts' })).toBe(1);
    expect(await valueOf(registry, 'authmd_claims_total', { outcome: 'confirmed' })).toBe(0);
  });

  it("a host's registry and prefix: the collectors go there, beside the host's own", async () => {
    const registry = new Registry();
    const { base, service } = await start({ metrics: { registry, prefix: 'myapp_authmd_' } });
    expect(service.metrics).toBe(registry);
    await registerAnonymous(base);
    expect(await valueOf(registry, 'myapp_authmd_registrations_total', { method: 'anonymous', outcome: 'ok' })).toBe(1);
    expect((await registry.getMetricsAsJSON()).every((m) => m.name.startsWith('myapp_authmd_'))).toBe(true);
  });

  it('a prefix that is not a metric name is a ConfigError', async () => {
    await expect(createService({ issuer: 'http://127.0.0.1:1', scopes: { preClaim: ['a'], postClaim: ['a'] }, store: createMemoryStore(), logger: silentLogger, metrics: { prefix: 'my-app' } })).rejects.toThrow(ConfigError);
  });
});

describe('metrics off (the default)', () => {
  it('no registry, nothing in prom-client\'s default registry, and /metrics is not served', async () => {
    const { base, service } = await start();
    expect(service.metrics).toBeUndefined();
    await registerAnonymous(base);
    expect(await globalRegistry.getMetricsAsJSON()).toEqual([]);
    expect(service.handles('/metrics')).toBe(false);
    await expectError(await service.handler(new Request(`${base}/metrics`)), 404, 'not_found');
  });

  it('prom-client is never imported: a process that serves a registration without metrics never loads it (and with them, does)', () => {
    const probe = fileURLToPath(new URL('./import-probe.ts', import.meta.url));
    const run = (mode: 'on' | 'off') => {
      const child = spawnSync(process.execPath, ['--conditions=@authmd/source', '--import', 'tsx', probe, mode], { encoding: 'utf8', timeout: 30_000 });
      expect(child.status, child.stderr).toBe(0);
      return JSON.parse(child.stdout) as { status: number; loaded: boolean; registry: boolean };
    };
    expect(run('off')).toEqual({ status: 200, loaded: false, registry: false });
    expect(run('on')).toEqual({ status: 200, loaded: true, registry: true });
  });
});
