import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { runConformance } from '../src/runner.ts';
import { editJson, pathOf, type Breakage } from './fixtures/broken-service.ts';
import { brokenServices } from './fixtures/lifecycle.ts';

/**
 * Issue 6, Build 5: against a service that advertises fewer dialects, the checks of what it does not
 * advertise skip, and none fails. The demo speaks both; the proxy hides one from its metadata.
 */

const { startWithProvider } = brokenServices();

/** Rewrites the authorization server metadata the service publishes. */
const advertising = (edit: (metadata: Record<string, any>) => void): Breakage => ({
  response: (request, response) => (pathOf(request) === '/.well-known/oauth-authorization-server' ? editJson(response, (body) => (edit(body), body)) : response),
});

describe.each([
  ['only v0.7 (no refresh: no read-back ceremony)', 'v07', advertising((m) => (m.agent_auth.identity_types_supported = m.agent_auth.identity_types_supported.filter((t: string) => t !== 'refresh')))],
  ['only the current dialect (no claim grant)', 'current', advertising((m) => (m.grant_types_supported = m.grant_types_supported.filter((g: string) => g !== grantTypes.claim)))],
] as const)('a service advertising %s', (_, kept, breakage) => {
  it('gets no failure: the checks of the other dialect are skipped', async () => {
    const { provider, service } = await startWithProvider(() => breakage);
    const report = await runConformance({ base: service.base, api: service.api, provider });
    const failures = report.results.filter((result) => result.outcome === 'fail').map((result) => `${result.id}: ${result.message}`);
    expect(failures).toEqual([]);
    const skipped = report.results.filter((result) => result.outcome === 'skip').map((result) => result.id);
    const otherDialect = kept === 'v07' ? ['ceremony.read-back', 'refresh.rotate', 'security.code-brute-force'] : ['ceremony.type-in', 'ceremony.slow-down', 'token.unclaimed-refused'];
    expect(skipped).toEqual(expect.arrayContaining(otherDialect));
  }, 120_000);
});
