import { readErrorBody, tokenTypes } from '@authmd/protocol';
import { CheckFailed, requireThat, Skipped } from '../check.ts';
import type { CheckContext } from '../context.ts';
import { describeAnswer } from '../http.ts';
import type { Answer } from '../http.ts';
import { identityUrl, readRegistration, type Registration } from '../flows.ts';
import type { TestProvider } from './test-provider.ts';

/** `POST /agent/identity` with an ID-JAG, the body every dialect accepts. */
export async function registerWithIdJag(ctx: CheckContext, assertion: string) {
  const service = await ctx.service();
  return ctx.http.postJson(identityUrl(service), { type: 'identity_assertion', assertion_type: tokenTypes.idJag, assertion });
}

/**
 * The test provider, once the service has shown it trusts it: one ID-JAG registration for a person
 * of its own (`ctx.email('provider')`), made once per run. Checks that need the provider call this
 * first; when the service does not trust the provider they are skipped with what to do about it.
 */
export function trustedProvider(ctx: CheckContext): Promise<{ provider: TestProvider; registration: Registration }> {
  return ctx.once('trusted-provider', async () => {
    const { provider, answer } = await trustedProviderAnswer(ctx);
    return { provider, registration: readRegistration(answer, await ctx.service(), 'a clean ID-JAG registration from the trusted test provider') };
  });
}

/** That registration's 200 answer as it came, for the check that judges its shape before anything reads it. */
export function trustedProviderAnswer(ctx: CheckContext): Promise<{ provider: TestProvider; answer: Answer }> {
  return ctx.once('trusted-provider:answer', async () => {
    const provider = ctx.provider;
    if (!provider) throw new Skipped('the built-in test provider is not running (started without it)');
    const service = await ctx.service();
    requireThat(service.identityTypes.includes('identity_assertion'), 'the service does not advertise identity_assertion registration');
    const assertion = await provider.mintIdJag({ audience: service.issuer, email: ctx.email('provider') });
    const answer = await registerWithIdJag(ctx, assertion);
    const refusal = readErrorBody(answer.json);
    if (refusal.ok && refusal.value.error === 'issuer_not_enabled') {
      throw new Skipped(
        `the service does not trust the test provider ${provider.issuer}: add it to the service's trust list ` +
          `(issuer ${provider.issuer}, jwks_uri ${provider.jwksUri}; loopback http must be allowed) and run again`,
      );
    }
    if (answer.status !== 200) throw new CheckFailed(`a clean ID-JAG from the trusted test provider was refused: ${describeAnswer(answer)}`);
    return { provider, answer };
  });
}
