import { AuthmdClientError, fromServiceError } from './errors.ts';
import type { IdJagSource } from './types.ts';

/**
 * ID-JAGs from a provider that speaks the published sample provider's API (as `@authmd/provider`'s
 * demo server does): `POST /id-jag {audience, resource?}` with the user's session token. Consent is
 * the provider's business; without it the provider answers `consent_required`.
 */
export function sampleProviderSource(options: { providerUrl: string; sessionToken: string; fetch?: typeof fetch }): IdJagSource {
  const request = options.fetch ?? fetch;
  return async (audience) => {
    const response = await request(`${options.providerUrl.replace(/\/$/, '')}/id-jag`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${options.sessionToken}` },
      body: JSON.stringify({ audience: audience.issuer, ...(audience.resource ? { resource: audience.resource } : {}) }),
    });
    const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (response.status !== 200) throw fromServiceError(response.status, body, 'Minting an ID-JAG at the provider');
    if (typeof body?.assertion !== 'string') throw new AuthmdClientError('invalid_response', 'The provider answered without an assertion.');
    return body.assertion;
  };
}

/** A provider embedded in the same process: anything with `mintIdJag` (such as `@authmd/provider`'s AgentProvider). */
export function embeddedProviderSource<U>(provider: { mintIdJag(request: { user: U; audience: string; resource?: string }): Promise<{ assertion: string }> }, user: U): IdJagSource {
  return async (audience) => (await provider.mintIdJag({ user, audience: audience.issuer, ...(audience.resource ? { resource: audience.resource } : {}) })).assertion;
}
