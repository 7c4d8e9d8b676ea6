import { describe, expect, it } from 'vitest';
import { authMdSections, renderAuthMd, type AuthMdDescription } from '@authmd/protocol';

const issuer = 'https://svc.example';
const description: AuthMdDescription = {
  serviceName: 'Notes',
  discovery: {
    issuer,
    dialects: ['current', 'v0.7'],
    scopes: ['notes.read', 'notes.write'],
    resources: [{ resource: `${issuer}/api` }],
    identityTypes: ['anonymous'],
    refresh: false,
    endpoints: { skill: `${issuer}/auth.md`, jwks: `${issuer}/.well-known/jwks.json`, token: `${issuer}/oauth2/token`, revocation: `${issuer}/oauth2/revoke`, identity: `${issuer}/agent/identity` },
    claimGrant: false,
    idJagGrant: false,
  },
  preClaimScopes: ['notes.read'],
  postClaimScopes: ['notes.read', 'notes.write'],
  lifetimes: { assertionSeconds: 3600, accessTokenSeconds: 3600, claimWindowSeconds: 86_400 },
};

describe('auth.md renderer', () => {
  it('has the standard sections, in order', () => {
    const text = renderAuthMd(description);
    const headings = [...text.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(headings).toEqual([...authMdSections]);
  });

  it('describes the real endpoints and scopes', () => {
    const text = renderAuthMd(description);
    for (const url of [`${issuer}/agent/identity`, `${issuer}/oauth2/token`, `${issuer}/oauth2/revoke`, `${issuer}/.well-known/oauth-protected-resource/api`]) {
      expect(text).toContain(url);
    }
    expect(text).toContain('`notes.read`');
    expect(text).toContain('1 day');
  });

  it('never describes a method or ceremony that is switched off', () => {
    const text = renderAuthMd(description);
    expect(text).not.toContain('**service_auth**');
    expect(text).not.toContain('**identity_assertion**');
    expect(text).not.toContain('grant-type:claim');
    expect(text).toContain('does not offer a claim ceremony');
    expect(text).toContain('`service_auth_not_enabled`');
  });

  it('documents what is on when it is on', () => {
    const text = renderAuthMd({
      ...description,
      discovery: {
        ...description.discovery,
        identityTypes: ['anonymous', 'service_auth', 'identity_assertion'],
        claimGrant: true,
        endpoints: { ...description.discovery.endpoints, claim: `${issuer}/agent/identity/claim` },
      },
      trustedProviders: ['Acme Agents'],
    });
    expect(text).toContain('**service_auth**');
    expect(text).toContain('Trusted providers: `Acme Agents`');
    expect(text).toContain(`${issuer}/agent/identity/claim/complete`);
    expect(text).toContain('urn:workos:agent-auth:grant-type:claim');
    expect(text).toContain('`already_claimed` (v0.7: `claimed_or_in_flight`)');
  });
});
