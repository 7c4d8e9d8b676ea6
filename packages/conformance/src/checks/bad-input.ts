import { grantTypes } from '@authmd/protocol';
import { CheckFailed, requireThat, type Check } from '../check.ts';
import type { CheckContext } from '../context.ts';
import { identityUrl } from '../flows.ts';

import { describeAnswer, type SendOptions } from '../http.ts';
import { expectJsonError, fuzzCases, fuzzProblem, type ErrorExpectation } from './bad-input-steps.ts';

/**
 * Bad input: malformed, oversized and mistyped bodies at every agent-facing endpoint. The rule is
 * the same everywhere: never a 5xx, an error in JSON, and the status the protocol names.
 */

const INVALID_REQUEST: ErrorExpectation = { status: [400], codes: ['invalid_request'] };
const JSON_TYPE = { 'content-type': 'application/json' };
const FORM_TYPE = { 'content-type': 'application/x-www-form-urlencoded' };
const MIB = 1024 * 1024;

/** Sends one bad request and expects the JSON error; `what` says what was sent. */
async function expectRefused(ctx: CheckContext, url: string, what: string, options: SendOptions, expected: ErrorExpectation = {}): Promise<void> {
  const answer = await ctx.http.send(url, { method: 'POST', ...options });
  expectJsonError(answer, what, expected);
}

/** A JSON body of `size` bytes that would be a valid anonymous registration but for its size. */
function paddedRegistration(size: number): string {
  const head = '{"type":"anonymous","padding":"';
  return `${head}${'x'.repeat(size - head.length - 2)}"}`;
}

export const badInputChecks: Check[] = [
  {
    id: 'bad-input.malformed-json',
    group: 'bad-input',
    title: 'Malformed JSON at the identity endpoint gets 400 invalid_request in JSON',
    ref: 'profile §3; auth.md §2.1',
    async run(ctx) {
      const service = await ctx.service();
      await expectRefused(ctx, identityUrl(service), 'POST {"type": (truncated JSON) to the identity endpoint', { body: '{"type":', headers: JSON_TYPE }, INVALID_REQUEST);
    },
  },
  {
    id: 'bad-input.oversized',
    group: 'bad-input',
    title: 'A 1 MiB body at the identity endpoint is refused with 413 (or 400) in JSON, not processed',
    ref: 'profile §3 (413 over 64 KiB)',
    async run(ctx) {
      const service = await ctx.service();
      await expectRefused(ctx, identityUrl(service), 'POST a 1 MiB anonymous registration to the identity endpoint', { body: paddedRegistration(MIB), headers: JSON_TYPE }, { status: [413, 400] });
    },
  },
  {
    id: 'bad-input.content-type',
    group: 'bad-input',
    title: 'The identity endpoint refuses bodies that are not declared application/json (text/plain, form, none) with a 4xx in JSON',
    ref: 'auth.md §2.1 (requests are application/json); profile §3',
    async run(ctx) {
      const service = await ctx.service();
      const url = identityUrl(service);
      const registration = '{"type":"anonymous"}';
      await expectRefused(ctx, url, 'POST {"type":"anonymous"} as text/plain to the identity endpoint', { body: registration, headers: { 'content-type': 'text/plain' } });
      await expectRefused(ctx, url, 'POST type=anonymous as a form to the identity endpoint', { body: 'type=anonymous', headers: FORM_TYPE });
      await expectRefused(ctx, url, 'POST {"type":"anonymous"} without a Content-Type to the identity endpoint', { body: new TextEncoder().encode(registration) });
    },
  },
  {
    id: 'bad-input.unknown-type',
    group: 'bad-input',
    title: 'An unknown registration type ({"type":"password"}) gets 400 invalid_request in JSON',
    ref: 'auth.md §2.3, §2.16',
    async run(ctx) {
      const service = await ctx.service();
      await expectRefused(ctx, identityUrl(service), 'POST {"type":"password"} to the identity endpoint', { body: { type: 'password', username: 'agent', password: 'hunter2' } }, INVALID_REQUEST);
    },
  },
  {
    id: 'bad-input.token-form',
    group: 'bad-input',
    title: 'The token endpoint refuses a JSON body and a form without grant_type with 400 invalid_request (or unsupported_grant_type)',
    ref: 'RFC 6749 §3.2, §5.2',
    async run(ctx) {
      const service = await ctx.service();
      const expected: ErrorExpectation = { status: [400], codes: ['invalid_request', 'unsupported_grant_type'] };
      await expectRefused(ctx, service.endpoints.token, 'POST a jwt-bearer request as JSON to the token endpoint', { body: { grant_type: grantTypes.jwtBearer, assertion: 'x.y.z' } }, expected);
      await expectRefused(ctx, service.endpoints.token, 'POST a form without grant_type to the token endpoint', { form: { assertion: 'x.y.z' } }, expected);
    },
  },
  {
    id: 'bad-input.duplicate-parameter',
    group: 'bad-input',
    title: 'The token endpoint refuses a form with grant_type twice with 400 invalid_request',
    ref: 'RFC 6749 §3.2 (parameters must not be included more than once)',
    async run(ctx) {
      const service = await ctx.service();
      const grant = `grant_type=${encodeURIComponent(grantTypes.jwtBearer)}`;
      await expectRefused(ctx, service.endpoints.token, 'POST grant_type twice to the token endpoint', { body: `${grant}&${grant}&assertion=x.y.z`, headers: FORM_TYPE }, INVALID_REQUEST);
    },
  },
  {
    id: 'bad-input.claim-body',
    group: 'bad-input',
    title: 'The claim endpoints refuse empty and mistyped bodies with 400 in JSON',
    ref: 'auth.md §2.4, §2.5, §2.1',
    async run(ctx) {
      const service = await ctx.service();
      const { claim, claimComplete } = service.endpoints;
      requireThat(claim, 'the service advertises no claim_endpoint');
      const bad: ErrorExpectation = { status: [400] };
      await expectRefused(ctx, claim, 'POST {} to the claim endpoint', { body: {} }, bad);
      await expectRefused(ctx, claim, 'POST {"type":"service_auth","claim_token":123,"login_hint":true} to the claim endpoint', { body: { type: 'service_auth', claim_token: 123, login_hint: true } }, bad);
      if (!service.dialects.current || !claimComplete) return;
      await expectRefused(ctx, claimComplete, 'POST {} to the claim completion endpoint', { body: {} }, bad);
      await expectRefused(ctx, claimComplete, 'POST {"claim_token":5,"user_code":123456} to the claim completion endpoint', { body: { claim_token: 5, user_code: 123456 } }, bad);
    },
  },
  {
    id: 'bad-input.fuzz',
    group: 'bad-input',
    title: 'A seeded sweep of malformed requests at every advertised POST endpoint never gets a 5xx, and errors come in JSON',
    ref: 'profile §3; auth.md §2.1; RFC 6749 §5.2; RFC 8935 §2.3',
    async run(ctx) {
      const cases = fuzzCases(await ctx.service());
      for (const [index, fuzz] of cases.entries()) {
        const answer = await ctx.http.send(fuzz.url, fuzz.options);
        const problem = fuzzProblem(answer, fuzz.expect);
        if (problem) {
          const expected = fuzz.expect === 'error' ? 'a 4xx error in JSON' : 'no 5xx, and errors in JSON';
          throw new CheckFailed(`request ${index + 1} of ${cases.length} (${fuzz.label}): expected ${expected}, got ${problem}: ${describeAnswer(answer)}`);
        }
      }
    },
  },
];
