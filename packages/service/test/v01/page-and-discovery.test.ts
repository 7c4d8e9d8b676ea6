import { describe, expect, it } from 'vitest';
import { postForm, postJson, servicePerTest } from '../support/harness.ts';
import { claimEmail, complete, refusal, registered } from './v01.ts';

/** issue 12: the page the claim email links to, and what discovery says about v0.1. */
const start = servicePerTest();

const byEmail = (base: string, email: string) => registered(base, { type: 'identity_assertion', assertion_type: 'verified_email', assertion: email });

describe('the emailed link\'s page', () => {
  it('opening it (as a mail scanner does, repeatedly) reveals no code and changes nothing', async () => {
    const { base } = await start();
    const agent = await byEmail(base, 'pia@example.com');
    const { code, link } = await claimEmail(base, 'pia@example.com');
    expect(new URL(link).origin).toBe(base);
    for (let i = 0; i < 3; i++) {
      const page = await fetch(link);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toContain('text/html');
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(page.headers.get('referrer-policy')).toBe('no-referrer');
      const html = await page.text();
      expect(html).toContain('pia@example.com');
      expect(html).toContain('notes.write');
      expect(html).not.toMatch(/\b\d{6}\b/);
      expect(html).not.toContain('<script');
    }
    expect((await complete(base, agent.claim_token, code)).status).toBe(200);
  });

  it('"Show me a new code" reveals a code that replaces the emailed one', async () => {
    const { base } = await start();
    const agent = await byEmail(base, 'quin@example.com');
    const { code, link } = await claimEmail(base, 'quin@example.com');
    const token = new URL(link).searchParams.get('token')!;
    const revealed = await postForm(`${base}/agent/auth/claim/view`, { token });
    expect(revealed.status).toBe(200);
    const fresh = /data-testid="page-code">(\d{6})</.exec(await revealed.text())?.[1];
    expect(fresh).toMatch(/^\d{6}$/);
    if (fresh !== code) expect((await refusal(await complete(base, agent.claim_token, code))).error).toBe('otp_invalid');
    expect((await complete(base, agent.claim_token, fresh!)).status).toBe(200);
    // Once claimed, the link says so.
    const after = await fetch(link);
    expect(after.status).toBe(409);
    expect(await after.text()).toContain('already linked');
  });

  it('an unknown or missing token gets an HTML page, never JSON or a 500', async () => {
    const { base } = await start();
    for (const url of [`${base}/agent/auth/claim/view`, `${base}/agent/auth/claim/view?token=cvt_nope`, `${base}/agent/auth/claim/view?token=%00%ff`]) {
      const page = await fetch(url);
      expect(page.status, url).toBe(404);
      expect(page.headers.get('content-type')).toContain('text/html');
    }
    expect((await postForm(`${base}/agent/auth/claim/view`, { token: 'cvt_nope' })).status).toBe(404);
    expect((await postForm(`${base}/agent/auth/claim/deny`, {})).status).toBe(404);
    const notForm = await postJson(`${base}/agent/auth/claim/view`, { token: 'x' });
    expect(notForm.status).toBe(400);
  });

  it('the page of a current-dialect attempt is not reachable through the v0.1 link path', async () => {
    const { base } = await start();
    const registration = await postJson(`${base}/agent/identity`, { type: 'service_auth', login_hint: 'ray@example.com' });
    const token = new URL((await registration.json()).claim.attempt.verification_uri).searchParams.get('token')!;
    // Without the emailed code, this link would let whoever holds it claim without signing in.
    expect((await fetch(`${base}/agent/auth/claim/view?token=${token}`)).status).toBe(404);
    expect((await postForm(`${base}/agent/auth/claim/view`, { token })).status).toBe(404);
  });
});

describe('discovery with v0.1', () => {
  const metadata = async (base: string) => (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<string, any>;

  it('advertises register_uri, claim_uri and the credential types next to the current names', async () => {
    const { base } = await start();
    const agentAuth = (await metadata(base)).agent_auth;
    expect(agentAuth).toMatchObject({
      identity_endpoint: `${base}/agent/identity`,
      register_uri: `${base}/agent/auth`,
      claim_uri: `${base}/agent/auth/claim`,
      anonymous: { credential_types_supported: ['api_key'] },
      identity_assertion: { assertion_types_supported: ['verified_email'], credential_types_supported: ['access_token', 'api_key'] },
    });
    // No provider is trusted here: no provider revocation endpoint.
    expect(agentAuth.revocation_uri).toBeUndefined();
    expect(agentAuth.identity_types_supported).not.toContain('identity_assertion');
  });

  it('says nothing of v0.1 when it is off, and its paths are not served', async () => {
    const { base } = await start({ dialects: { 'v0.1': false } });
    const text = JSON.stringify(await metadata(base));
    for (const name of ['register_uri', 'claim_uri', 'revocation_uri', 'credential_types_supported', 'verified_email']) expect(text).not.toContain(name);
    expect((await postJson(`${base}/agent/auth`, { type: 'anonymous' })).status).toBe(404);
    expect((await fetch(`${base}/agent/auth/claim/view?token=x`)).status).toBe(404);
  });

  it('a service that speaks only v0.1 advertises no identity endpoint and serves none', async () => {
    const { base } = await start({ dialects: { current: false, 'v0.7': false, 'v0.1': true } });
    const document = await metadata(base);
    expect(document.agent_auth.identity_endpoint).toBeUndefined();
    expect(document.agent_auth.claim_endpoint).toBeUndefined();
    expect(document.agent_auth.register_uri).toBe(`${base}/agent/auth`);
    expect((await postJson(`${base}/agent/identity`, { type: 'anonymous' })).status).toBe(404);
    expect((await postJson(`${base}/agent/auth`, { type: 'anonymous' })).status).toBe(200);
    const authMd = await (await fetch(`${base}/auth.md`)).text();
    expect(authMd).toContain(`${base}/agent/auth`);
    expect(authMd).not.toContain(`${base}/agent/identity`);
  });
});
