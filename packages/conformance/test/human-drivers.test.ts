import { grantTypes } from '@authmd/protocol';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type RunningDemo } from '../../../examples/demo/src/start.ts';
import { AuthmdPagesHuman } from '../src/human/authmd-pages.ts';
import { mailbox } from '../src/human/browser.ts';
import type { HumanDriver } from '../src/human/driver.ts';
import { ManualHuman } from '../src/human/manual.ts';

/**
 * The two humans of the conformance suite. `AuthmdPagesHuman` against the real demo (its pages, its
 * development mailbox), each ceremony finished on the agent's side over HTTP as an agent would;
 * `ManualHuman` over streams standing in for a terminal.
 */

interface Registration {
  claimToken: string;
  verificationUri: string;
  /** The agent's code for type-in. */
  userCode: string;
}

let demo: RunningDemo;
let base: string;
let dataDir: string;
const drivers: HumanDriver[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'authmd-conformance-human-'));
  demo = await startDemo({ port: 0, dataDir, pollIntervalSeconds: 1 });
  base = demo.url;
});
afterAll(async () => {
  await demo?.close();
  rmSync(dataDir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const driver of drivers.splice(0)) await driver.close?.();
});

function pagesHuman(fetcher?: (url: string, init: RequestInit) => Promise<Response>): AuthmdPagesHuman {
  const human = new AuthmdPagesHuman(base, fetcher);
  drivers.push(human);
  return human;
}

/** `POST /agent/identity` with an email: no access yet, a claim token and the link for the person. */
async function registerByEmail(email: string): Promise<Registration> {
  const response = await fetch(`${base}/agent/identity`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'service_auth', login_hint: email }),
  });
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(200);
  const claim = body.claim;
  const verificationUri: string = claim.attempt?.verification_uri ?? claim.verification_uri;
  expect(verificationUri, JSON.stringify(body)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/claim\?token=/);
  expect(claim.user_code).toMatch(/^\d{6}$/);
  return { claimToken: claim.token ?? body.claim_token, verificationUri, userCode: claim.user_code };
}

async function complete(registration: Registration, code: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${base}/agent/identity/claim/complete`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ claim_token: registration.claimToken, user_code: code }),
  });
  return { status: response.status, body: await response.json() };
}

async function pollClaimGrant(registration: Registration): Promise<{ status: number; body: any }> {
  const response = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: grantTypes.claim, claim_token: registration.claimToken }).toString(),
  });
  return { status: response.status, body: await response.json() };
}

/** Polls the claim grant as an agent does (RFC 8628: wait `interval`, more on slow_down) until it is no longer pending. */
async function pollUntilDone(registration: Registration, deadlineMs = 15_000): Promise<{ status: number; body: any }> {
  const deadline = Date.now() + deadlineMs;
  let interval = 1;
  for (;;) {
    const answer = await pollClaimGrant(registration);
    const error = answer.body.error;
    if (error !== 'authorization_pending' && error !== 'slow_down') return answer;
    if (error === 'slow_down') interval = answer.body.interval ?? interval + 5;
    if (Date.now() + interval * 1000 > deadline) return answer;
    await new Promise((resolve) => setTimeout(resolve, interval * 1000));
  }
}

async function codesMailedTo(email: string): Promise<number> {
  return (await mailbox(base)).filter((message) => message.to === email).length;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    (value) => ({ resolved: true as const, value }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) expect.fail(`expected a rejection, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(Error);
  return outcome.error as Error;
}

describe('AuthmdPagesHuman, on the demo', () => {
  it('read-back: signs in, presses Authorize and returns the code, which completes the claim', async () => {
    const human = pagesHuman();
    expect(human.name).toBe('authmd pages');
    const registration = await registerByEmail('read-back@example.com');
    const code = await human.readBack(registration.verificationUri, 'read-back@example.com');
    expect(code).toMatch(/^\d{6}$/);
    const completed = await complete(registration, code);
    expect(completed.status, JSON.stringify(completed.body)).toBe(200);
    expect(completed.body.identity.assertion).toMatch(/^ey/);
  });

  it("type-in: types the agent's code on the page, and the claim grant then hands out an access token", async () => {
    const human = pagesHuman();
    const registration = await registerByEmail('type-in@example.com');
    await human.typeIn(registration.verificationUri, 'type-in@example.com', registration.userCode);
    const polled = await pollUntilDone(registration);
    expect(polled.status, JSON.stringify(polled.body)).toBe(200);
    expect(polled.body).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String), scope: 'notes.read notes.write' });
  });

  it('deny: presses Deny, and the claim grant answers access_denied', async () => {
    const human = pagesHuman();
    const registration = await registerByEmail('deny@example.com');
    await human.deny(registration.verificationUri, 'deny@example.com');
    const polled = await pollUntilDone(registration);
    expect(polled.status).toBe(400);
    expect(polled.body.error).toBe('access_denied');
  });

  it('signs in once per email: two ceremonies, one code mailed; another email signs in on its own', async () => {
    const human = pagesHuman();
    const email = 'twice@example.com';
    const first = await registerByEmail(email);
    const second = await registerByEmail(email);
    expect(await codesMailedTo(email)).toBe(0);

    expect((await complete(first, await human.readBack(first.verificationUri, email))).status).toBe(200);
    expect(await codesMailedTo(email)).toBe(1);
    await human.typeIn(second.verificationUri, email, second.userCode);
    expect(await codesMailedTo(email)).toBe(1);
    expect((await pollUntilDone(second)).status).toBe(200);

    const other = await registerByEmail('someone-else@example.com');
    await human.deny(other.verificationUri, 'someone-else@example.com');
    expect(await codesMailedTo('someone-else@example.com')).toBe(1);
    expect(await codesMailedTo(email)).toBe(1);
  });

  it('two ceremonies at once for one email still sign in once', async () => {
    const human = pagesHuman();
    const email = 'at-once@example.com';
    const [first, second] = [await registerByEmail(email), await registerByEmail(email)];
    const codes = await Promise.all([human.readBack(first.verificationUri, email), human.readBack(second.verificationUri, email)]);
    expect(await codesMailedTo(email)).toBe(1);
    expect((await complete(first, codes[0])).status).toBe(200);
    expect((await complete(second, codes[1])).status).toBe(200);
  });

  it('says what the person saw when the link opens no claim page', async () => {
    const human = pagesHuman();
    const registration = await registerByEmail('bad-link@example.com');
    const broken = registration.verificationUri.replace(/token=[^&]+/, 'token=cvt_not-a-real-one');
    const error = await rejection(human.readBack(broken, 'bad-link@example.com'));
    expect(error.message).toMatch(/^the claim link .* did not open a claim page: HTTP 4\d\d, the page says ".+"; expected a page with Authorize and Deny forms$/);

    const elsewhere = await rejection(human.readBack('https://elsewhere.example/claim?token=x', 'bad-link@example.com'));
    expect(elsewhere.message).toContain(`is not on ${base}`);
  });

  it('says which form the claim page lacks', async () => {
    const human = pagesHuman();
    const registration = await registerByEmail('no-type-in@example.com');
    // The same claim page without its type-in form, as a service that offers read-back only would show it.
    const page = await human.openClaim(registration.verificationUri, 'no-type-in@example.com');
    const readBackOnly = page.html.replace(/<form method="post" action="[^"]*\/claim\/code">[\s\S]*?<\/form>/, '');
    const error = await rejection(human.typeInOn(readBackOnly, 'no-type-in@example.com', registration.userCode));
    expect(error.message).toMatch(/^the claim page has no form to type the agent's code in: the page says ".*"; expected a form posting to \/claim\/code$/);
    const noAuthorize = page.html.replace(/<form method="post" action="[^"]*\/claim\/authorize">[\s\S]*?<\/form>/, '');
    expect((await rejection(human.authorizeOn(noAuthorize, 'no-type-in@example.com'))).message).toMatch(/^the claim page has no Authorize form: /);
  });

  it('says a wrong agent code was not taken', async () => {
    const human = pagesHuman();
    const registration = await registerByEmail('wrong-code@example.com');
    const wrong = String((Number(registration.userCode) + 1) % 1_000_000).padStart(6, '0');
    const error = await rejection(human.typeIn(registration.verificationUri, 'wrong-code@example.com', wrong));
    expect(error.message).toMatch(new RegExp(`^the page did not take the agent's code ${wrong}: HTTP 4\\d\\d, the page says ".*That is not the code your agent shows`));
    expect(error.message).toContain('expected HTTP 200 and "Agent linked"');
  });

  it('without the development mailbox, says it is for the demo and names --human manual', async () => {
    // The same service, as one without /dev/mailbox.json would answer (the fetch function is the driver's).
    const human = pagesHuman((url, init) => (new URL(url).pathname === '/dev/mailbox.json' ? Promise.resolve(new Response('Not found', { status: 404 })) : fetch(url, init)));
    const registration = await registerByEmail('no-mailbox@example.com');
    const error = await rejection(human.readBack(registration.verificationUri, 'no-mailbox@example.com'));
    expect(error.message).toContain('answered 404');
    expect(error.message).toContain("this driver needs the development mailbox of authmd's demo; for another service use `--human manual`");
    // The failed sign-in is not retried: a second ceremony gets the same error without another code.
    const again = await rejection(human.readBack(registration.verificationUri, 'no-mailbox@example.com'));
    expect(again.message).toBe(error.message);
    expect(await codesMailedTo('no-mailbox@example.com')).toBe(1);
  });
});

describe('AuthmdPagesHuman, the v0.1 claim email (issue 12)', () => {
  async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
    const response = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: response.status, body: await response.json() };
  }

  /** A v0.1 anonymous registration whose claim was started for `email`: the service has emailed the code. */
  async function claimStartedFor(email: string): Promise<string> {
    const registered = await post('/agent/auth', { type: 'anonymous', requested_credential_type: 'api_key' });
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    const started = await post('/agent/auth/claim', { claim_token: registered.body.claim_token, email });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    return registered.body.claim_token;
  }

  it('reads the code from the claim email in the development mailbox; it completes the claim', async () => {
    const human = pagesHuman();
    const claimToken = await claimStartedFor('v01-reader@example.com');
    const code = await human.emailedCode('V01-Reader@example.com');
    expect(code).toMatch(/^\d{6}$/);
    const done = await post('/agent/auth/claim/complete', { claim_token: claimToken, otp: code });
    expect(done).toMatchObject({ status: 200, body: { status: 'claimed' } });
  });

  it('an email that carries only its link (as the v0.1 sample\'s): opens it and presses "Show me a new code"', async () => {
    // The demo's mailbox with the code taken out of every message, as a service that emails only the link.
    const linkOnly = async (url: string, init: RequestInit): Promise<Response> => {
      const response = await fetch(url, init);
      if (new URL(url).pathname !== '/dev/mailbox.json') return response;
      const { messages } = (await response.json()) as { messages: { subject: string; text: string }[] };
      const stripped = messages.map((m) => ({ ...m, subject: m.subject.replace(/\d{6}/g, '(code)'), text: m.text.replace(/\b\d{6}\b/g, '(code)') }));
      return Response.json({ messages: stripped });
    };
    const human = pagesHuman(linkOnly);
    const claimToken = await claimStartedFor('v01-link@example.com');
    const code = await human.emailedCode('v01-link@example.com');
    expect(code).toMatch(/^\d{6}$/);
    const done = await post('/agent/auth/claim/complete', { claim_token: claimToken, otp: code });
    expect(done).toMatchObject({ status: 200, body: { status: 'claimed' } });
  });

  it('says so when no email to the address arrives', async () => {
    const human = pagesHuman();
    const error = await rejection(human.emailedCode('v01-nobody@example.com'));
    expect(error.message).toMatch(/^no email to v01-nobody@example\.com in the development mailbox within 3 s/);
  });
});

describe('ManualHuman', () => {
  function manual(): { human: ManualHuman; input: PassThrough; printed(): string } {
    const input = new PassThrough();
    const output = new PassThrough();
    let printed = '';
    output.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
    const human = new ManualHuman({ input, output });
    drivers.push(human);
    return { human, input, printed: () => printed };
  }

  const tick = () => new Promise((resolve) => setTimeout(resolve, 10));

  it('read-back: prints what to do, re-asks until the answer is 6 digits, returns the code', async () => {
    const { human, input, printed } = manual();
    expect(human.name).toBe('manual');
    const answer = human.readBack('http://service.example/claim?token=cvt_1', 'ada@example.com');
    await tick();
    expect(printed()).toBe(
      'Open http://service.example/claim?token=cvt_1, sign in as ada@example.com, press Authorize, then type the 6-digit code the page shows and press Enter:\n',
    );
    input.write('12345\n');
    await tick();
    expect(printed()).toContain('"12345" is not 6 digits. Type the 6-digit code the page shows and press Enter:\n');
    input.write('\n');
    await tick();
    expect(printed()).toContain('Nothing was typed. Type the 6-digit code');
    input.write(' 123456 \n');
    expect(await answer).toBe('123456');
  });

  it('type-in: prints the code to type and resolves on Enter', async () => {
    const { human, input, printed } = manual();
    let done = false;
    const typed = human.typeIn('http://service.example/claim?token=cvt_2', 'grace@example.com', '654321').then(() => (done = true));
    await tick();
    expect(printed()).toBe(
      'Open http://service.example/claim?token=cvt_2, sign in as grace@example.com and type this code on the page: 654321. Press Enter here once the page says the agent is linked.\n',
    );
    expect(done).toBe(false);
    input.write('\n');
    await typed;
    expect(done).toBe(true);
  });

  it('deny, then read-back on the same input: one line each, in turn', async () => {
    const { human, input, printed } = manual();
    input.write('\n654321\n'); // typed ahead: the Enter for Deny, then the code
    await human.deny('http://service.example/claim?token=cvt_3', 'mallory@example.com');
    expect(printed()).toBe('Open http://service.example/claim?token=cvt_3, sign in as mallory@example.com and press Deny. Press Enter here once you have.\n');
    expect(await human.readBack('http://service.example/claim?token=cvt_4', 'mallory@example.com')).toBe('654321');
  });

  it('v0.1: asks for the code from the email, re-asks until it is 6 digits', async () => {
    const { human, input, printed } = manual();
    const answer = human.emailedCode('ada@example.com');
    await tick();
    expect(printed()).toBe(
      'Open the email the service just sent to ada@example.com (it asks to let an agent act for you), then type the 6-digit code it gives (in the email, or on the page its link opens) and press Enter:\n',
    );
    input.write('12 34\n');
    await tick();
    expect(printed()).toContain('"12 34" is not 6 digits. Type the 6-digit code from the email and press Enter:\n');
    input.write('123-456\n');
    expect(await answer).toBe('123456');
  });

  it('rejects with a clear error when the input ends', async () => {
    const { human, input } = manual();
    const answer = human.readBack('http://service.example/claim?token=cvt_5', 'zoe@example.com');
    input.end('abc\n');
    const error = await rejection(answer);
    expect(error.message).toBe('the input ended while waiting for the 6-digit code the page shows');
    expect((await rejection(human.typeIn('http://service.example/claim?token=cvt_6', 'zoe@example.com', '111111'))).message).toContain('the input ended');
  });

  it('close() ends a wait', async () => {
    const { human } = manual();
    const answer = human.deny('http://service.example/claim?token=cvt_7', 'zoe@example.com');
    await tick();
    human.close();
    expect((await rejection(answer)).message).toContain('while waiting for Enter');
  });
});
