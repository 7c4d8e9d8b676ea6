import { describe, expect, it } from 'vitest';
import type { HttpRequest } from '@authmd/service';
import { Browser } from '../claim/browser.ts';
import { accessToken, callApi, postJson, registerAnonymous, servicePerTest } from '../support/harness.ts';

/**
 * The console's forms over HTTP (issue 15), with the host application's own sign-in (a header its
 * proxy sets): an operator's revocation works and redirects; the same form posted by a signed-in
 * non-operator, or without the CSRF token, changes nothing.
 */
const start = servicePerTest();

async function hostUser(request: HttpRequest) {
  const email = request.header('x-host-user');
  return email ? { id: `host-${email.split('@')[0]}`, email } : undefined;
}

async function setup() {
  const svc = await start({ signIn: { authenticateUser: hostUser }, admin: { operators: ['Ops@Example.com'] } });
  const { registration, token } = await accessToken(svc.base);
  return { ...svc, registration, token };
}

describe('the console\'s forms', () => {
  it('an operator (the host\'s user, any letter case) revokes from the registration page; a reload repeats nothing', async () => {
    const { base, registration, token } = await setup();
    const operator = new Browser(base, { 'x-host-user': 'ops@example.COM' });
    const page = await operator.get(`/admin/registration?id=${registration.id}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain('Revoke this registration');
    // The claim and sign-in pages' own defences: the same CSP, no framing, no caching.
    const login = await new Browser(base).get('/login');
    for (const header of ['content-security-policy', 'x-frame-options', 'cache-control', 'referrer-policy']) {
      expect(page.response.headers.get(header), header).toBe(login.response.headers.get(header));
    }
    expect(page.response.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'sha256-/);
    const done = await operator.submit(page, '/admin/registration/revoke');
    expect(done.status).toBe(303);
    expect(done.location).toBe(`/admin/registration?id=${registration.id}&done=revoked`);
    expect((await callApi(base, token)).status).toBe(401);
    const after = await operator.get(done.location!);
    expect(after.html).toContain('revoked_by_operator');
    expect(after.html).not.toContain('Revoke this registration');
  });

  it('a signed-in non-operator gets 403 for the page and for the form, and nothing is revoked', async () => {
    const { base, registration, token } = await setup();
    const operator = new Browser(base, { 'x-host-user': 'ops@example.com' });
    const page = await operator.get(`/admin/registration?id=${registration.id}`);
    // A valid form and CSRF pair, posted with another user's session.
    const mallory = new Browser(base, { 'x-host-user': 'mallory@example.com' });
    for (const [name, cookie] of operator.cookies) mallory.cookies.set(name, cookie);
    expect((await mallory.get(`/admin/registration?id=${registration.id}`)).status).toBe(403);
    const refused = await mallory.submit(page, '/admin/registration/revoke');
    expect(refused.status).toBe(403);
    expect(refused.html).toContain('not an operator of this service');
    expect((await callApi(base, token)).status).toBe(200);
  });

  it('a form without its CSRF token is refused, and nothing is revoked', async () => {
    const { base, registration, token } = await setup();
    const operator = new Browser(base, { 'x-host-user': 'ops@example.com' });
    await operator.get('/admin');
    const refused = await operator.post('/admin/registration/revoke', { id: registration.id });
    expect(refused.status).toBe(400);
    expect((await callApi(base, token)).status).toBe(200);
    const bulk = await operator.post('/admin/revoke', { by: 'email', value: 'x@example.com' });
    expect(bulk.status).toBe(400);
  });

  it('searches by date (the days given, both included), by type and by email, and refuses a date that is not one', async () => {
    const svc = await start({ signIn: { authenticateUser: hostUser }, admin: { operators: ['ops@example.com'] } });
    const DAY = 86_400_000;
    const first = await registerAnonymous(svc.base);
    svc.clock.advance(DAY);
    const second = await postJson(`${svc.base}/agent/identity`, { type: 'service_auth', login_hint: 'grace@example.com' }).then((r) => r.json());
    svc.clock.advance(DAY);
    const third = await registerAnonymous(svc.base);
    const operator = new Browser(svc.base, { 'x-host-user': 'ops@example.com' });
    const day = (offset: number) => new Date(svc.clock() + offset * DAY).toISOString().slice(0, 10);
    const listed = async (query: string) => {
      const page = await operator.get(`/admin?${query}`);
      expect(page.status, query).toBe(200);
      return [first.id, second.id, third.id].filter((id) => page.html.includes(`>${id}</a>`));
    };
    expect(await listed('')).toEqual([first.id, second.id, third.id]);
    expect(await listed(`from=${day(-1)}&to=${day(-1)}`)).toEqual([second.id]);
    expect(await listed(`from=${day(-1)}`)).toEqual([second.id, third.id]);
    expect(await listed(`to=${day(-1)}`)).toEqual([first.id, second.id]);
    expect(await listed('type=anonymous')).toEqual([first.id, third.id]);
    expect(await listed('email=grace%40example.com')).toEqual([second.id]);
    const bad = await operator.get('/admin?from=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('from: yesterday is not a date (YYYY-MM-DD).');
  });

  it('a stranger is sent to sign in and comes back to the page asked for', async () => {
    const { base } = await setup();
    const stranger = new Browser(base);
    const page = await stranger.get('/admin/revoke?by=provider&value=https%3A%2F%2Fidp.example');
    expect(page.status).toBe(303);
    expect(page.location).toBe(`/login?return_to=${encodeURIComponent('/admin/revoke?by=provider&value=https%3A%2F%2Fidp.example')}`);
  });
});
