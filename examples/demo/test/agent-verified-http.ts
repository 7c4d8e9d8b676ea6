import { grantTypes, tokenTypes } from '@authmd/protocol';
import type { RecordingLogger } from '../../../test-support/recording-logger.ts';
import { expect } from 'vitest';

/**
 * The Agent Verified flow over HTTP only, as an agent and a user's browser-less tools see it: the
 * demo provider's sample-compatible JSON API on one side, the auth.md service on the other.
 */


export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, any>;
}

async function answer(response: Response): Promise<Answer> {
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : {} };
}

/** The agent provider's JSON API for one signed-in user. */
export class ProviderSession {
  private constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}

  static async login(url: string, email: string): Promise<ProviderSession> {
    const signedIn = await answer(await fetch(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email }) }));
    expect(signedIn.status, JSON.stringify(signedIn.body)).toBe(200);
    return new ProviderSession(url, signedIn.body.session_token);
  }

  private async call(method: string, path: string, body?: unknown): Promise<Answer> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return answer(await fetch(`${this.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
  }

  /** Consent: agents may obtain ID-JAGs for this user at `audience`. Returns the grant. */
  async grant(audience: string, mode: 'once' | 'always' = 'always'): Promise<Record<string, any>> {
    const created = await this.call('POST', '/grants', { audience, mode });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body;
  }

  mint(audience: string): Promise<Answer> {
    return this.call('POST', '/id-jag', { audience });
  }

  /** A fresh ID-JAG for `audience`; fails the test when the provider refuses. */
  async idJag(audience: string): Promise<string> {
    const minted = await this.mint(audience);
    expect(minted.status, JSON.stringify(minted.body)).toBe(200);
    expect(minted.body.assertion_type).toBe(tokenTypes.idJag);
    return minted.body.assertion;
  }

  revoke(grantId: string): Promise<Answer> {
    return this.call('DELETE', `/grants/${encodeURIComponent(grantId)}`);
  }
}

/** The service's side: register with an ID-JAG, exchange, call the notes API. */
export class ServiceClient {
  constructor(readonly url: string) {}

  async register(idJag: string): Promise<Answer> {
    const body = { type: 'identity_assertion', assertion_type: tokenTypes.idJag, assertion: idJag };
    return answer(await fetch(`${this.url}/agent/identity`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
  }

  async exchange(assertion: string): Promise<Answer> {
    const body = new URLSearchParams({ grant_type: grantTypes.jwtBearer, assertion }).toString();
    return answer(await fetch(`${this.url}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }));
  }

  /** ID-JAG → 200 registration → jwt-bearer exchange → access token. */
  async connect(idJag: string): Promise<{ registrationId: string; assertion: string; token: string; scope: string }> {
    const registered = await this.register(idJag);
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    expect(registered.body).toMatchObject({ type: 'identity_assertion', identity: { assertion: expect.stringMatching(/^ey/) } });
    const exchanged = await this.exchange(registered.body.identity.assertion);
    expect(exchanged.status, JSON.stringify(exchanged.body)).toBe(200);
    return { registrationId: registered.body.id, assertion: registered.body.identity.assertion, token: exchanged.body.access_token, scope: exchanged.body.scope };
  }

  async listNotes(token: string): Promise<number> {
    const response = await fetch(`${this.url}/api/notes`, { headers: { authorization: `Bearer ${token}` } });
    await response.arrayBuffer();
    return response.status;
  }

  async addNote(token: string, text: string): Promise<number> {
    const response = await fetch(`${this.url}/api/notes`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
    await response.arrayBuffer();
    return response.status;
  }
}

/** Polls `probe` until it returns something other than undefined, for at most `timeoutMs` (≤ 20 s). */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + Math.min(timeoutMs, 20_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The service's audit events of provider revocations (one per registration torn down). */
export function providerRevocations(logger: RecordingLogger, registrationId: string): number {
  return logger.audit('registration.revoked').filter((fields) => fields.reason === 'provider_event' && fields.registration_id === registrationId).length;
}

/** The claims of a compact JWT, unverified (for reading a SET's jti in a test). */
export function claimsOf(jwt: string): Record<string, any> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));
}

/** Waits until the next whole second: an ID-JAG's `iat` has one-second resolution. */
export async function nextSecond(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
}
