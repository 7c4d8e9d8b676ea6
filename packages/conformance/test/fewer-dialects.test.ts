import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { v01Checks } from '../src/checks/v01.ts';
import { runConformance } from '../src/runner.ts';
import { editJson, pathOf, type Breakage } from './fixtures/broken-service.ts';
import { brokenServices } from './fixtures/lifecycle.ts';

/**
 * Issue 6, Build 5 (and issue 12 for v0.1): against a service that advertises fewer dialects, the checks
 * of what it does not advertise skip, and none fails. The demo speaks all three; the proxy hides some
 * from its metadata (the demo still serves them, but a conforming suite only uses what is advertised).
 */

const { startWithProvider } = brokenServices();

/** Rewrites the authorization server metadata the service publishes. */
const advertising = (edit: (metadata: Record<string, any>) => void): Breakage => ({
  response: (request, response) => (pathOf(request) === '/.well-known/oauth-authorization-server' ? editJson(response, (body) => (edit(body), body)) : response),
});

const v01Ids = v01Checks.map((check) => check.id);
/** The v0.1 checks (src/checks/v01.ts), in catalogue order: every run must report each of them. */
const V01_IDS = [
  'registration.v01-anonymous',
  'registration.v01-api-key',
  'revocation.v01-api-key',
  'ceremony.v01-email-claim',
  'ceremony.v01-verified-email',
  'ceremony.v01-wrong-otp',
  'ceremony.v01-complete-once',
  'ceremony.v01-invalid-claim-token',
  'bad-input.v01-bodies',
];

describe.each([
  ['only v0.7 (no refresh: no read-back ceremony)', 'v07', advertising((m) => (m.agent_auth.identity_types_supported = m.agent_auth.identity_types_supported.filter((t: string) => t !== 'refresh')))],
  ['only the current dialect (no claim grant)', 'current', advertising((m) => (m.grant_types_supported = m.grant_types_supported.filter((g: string) => g !== grantTypes.claim)))],
  [
    'only v0.1 (no identity endpoint)',
    'v01',
    advertising((m) => {
      delete m.agent_auth.identity_endpoint;
      delete m.agent_auth.claim_endpoint;
      m.grant_types_supported = m.grant_types_supported.filter((g: string) => g !== grantTypes.claim);
    }),
  ],
  [
    'no v0.1 (no register_uri)',
    'no-v01',
    advertising((m) => {
      for (const key of ['register_uri', 'claim_uri', 'revocation_uri', 'anonymous']) delete m.agent_auth[key];
    }),
  ],
] as const)('a service advertising %s', (_, kept, breakage) => {
  it('gets no failure: the checks of the other dialect are skipped', async () => {
    const { provider, service } = await startWithProvider(() => breakage);
    const report = await runConformance({ base: service.base, api: service.api, provider });
    const failures = report.results.filter((result) => result.outcome === 'fail').map((result) => `${result.id}: ${result.message}`);
    expect(failures).toEqual([]);
    const skipped = report.results.filter((result) => result.outcome === 'skip').map((result) => result.id);
    const otherDialect = {
      v07: ['ceremony.read-back', 'refresh.rotate', 'security.code-brute-force'],
      current: ['ceremony.type-in', 'ceremony.slow-down', 'token.unclaimed-refused'],
      v01: ['registration.anonymous', 'ceremony.read-back', 'ceremony.type-in', 'refresh.rotate', 'bad-input.malformed-json'],
      'no-v01': v01Ids,
    }[kept];
    expect(skipped).toEqual(expect.arrayContaining(otherDialect));
    // v0.1's checks run wherever v0.1 is advertised (issue 12), and pass.
    const v01 = report.results.filter((result) => v01Ids.includes(result.id));
    expect(v01.map((result) => result.id)).toEqual(V01_IDS);
    if (kept !== 'no-v01') expect(v01.map((result) => [result.id, result.outcome])).toEqual(v01.map((result) => [result.id, 'pass']));
    else for (const result of v01) expect(result.message).toMatch(/does not advertise the v0\.1 dialect/);
  }, 120_000);
});
