import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROVIDER_EXAMPLE_EMAIL } from '../src/agent-verified-walkthrough.ts';
import { renderBanner } from '../src/banner.ts';
import { DEMO_USERS } from '../src/provider/index.ts';
import { readSettings } from '../src/settings.ts';
import { startDemo } from '../src/start.ts';
import { ProviderSession, ServiceClient } from './agent-verified-http.ts';
import { pageCommands, pointAt, README_BASE, README_PROVIDER, readmeBlocks, readmeSection } from './readme.ts';
import { readmeDemoPerFile, Shell } from './readme-demo.ts';

/**
 * Agent Verified as a first-time user meets it: the commands of the README's "Agent Verified" part and
 * of the home page run in bash as written against a demo on ephemeral ports (only the two addresses are
 * put in): sign in at the provider, consent, mint, register, exchange, write; revoke, and the very next
 * request with the token is refused.
 */

const HEADING = '### Agent Verified: a provider vouches for the user';

const running = readmeDemoPerFile('agent-verified', { providerPort: 0 });

async function run(command: string | undefined): Promise<string> {
  expect(command, 'the command is shown').toBeDefined();
  const result = await running.shell!.run(command!).done;
  expect(result.status, result.output).toBe(0);
  return result.output;
}

/** What the commands print up to the note: the scopes at registration, then the saved note. */
function expectRegisteredAndWritten(output: string): void {
  expect(output, 'the registration has the post-claim scopes at once').toMatch(/^notes\.read notes\.write$/m);
  expect(output, 'the note is saved').toMatch(/\{"note":\{"id":"note_[^"]+","text":"[^"]+"/);
}

/** What the revocation and, seconds later, the check print. */
function expectRevokedAndRefused(revoke: string, refused: string): void {
  expect(revoke).toMatch(/^HTTP\/1\.1 204/m);
  expect(revoke, 'the SET was delivered before the answer (issue 10)').toMatch(/^revocation-status: delivered\r?$/im);
  expect(refused, 'the provider delivered the SET').toMatch(/^delivered$/m);
  expect(refused, 'the API refuses the token').toMatch(/^HTTP\/1\.1 401/m);
  expect(refused).toContain('invalid_token');
}

/** The user's fresh consent and a new ID-JAG bring the registration back (checked over HTTP). */
async function expectFreshConsentRevives(): Promise<void> {
  // iat has whole seconds: an ID-JAG of the revocation's own second is refused (as it may predate it).
  // A person takes longer than that between revoking and consenting again; the test waits for it.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const ada = await ProviderSession.login(running.demo.provider!.url, PROVIDER_EXAMPLE_EMAIL);
  await ada.grant(running.demo.url);
  const service = new ServiceClient(running.demo.url);
  const revived = await service.connect(await ada.idJag(running.demo.url));
  expect(revived.scope).toBe('notes.read notes.write');
  expect(await service.addNote(revived.token, 'back')).toBe(201);
}

describe(`README.md, "${HEADING.slice(4)}"`, () => {
  it('names what npm start serves: the provider on 8788, its page and its seeded accounts', () => {
    const section = readmeSection(HEADING);
    expect(readSettings({}, '/')).toMatchObject({ ok: true, settings: { port: 8787, providerPort: 8788 } });
    expect(section).toContain(`<${README_PROVIDER}/>`);
    for (const user of DEMO_USERS) expect(section, user.email).toContain(`\`${user.email}\``);
    expect(DEMO_USERS.find((u) => u.email === PROVIDER_EXAMPLE_EMAIL)?.emailVerified).toBe(true);
  });

  it('runs as written: sign in, consent, mint, register, exchange, write; revoke, and the token is refused', async () => {
    const blocks = readmeBlocks(HEADING);
    expect(blocks, 'two bash blocks: connect, then revoke').toHaveLength(2);
    const [connect, revoke] = blocks.map((block) => pointAt(block, { [README_BASE]: running.demo.url, [README_PROVIDER]: running.demo.provider!.url })) as [string, string];
    expect(connect).toContain(`"audience":"${running.demo.url}"`);
    running.shell = new Shell();

    expectRegisteredAndWritten(await run(connect));
    const revoked = await run(revoke);
    expectRevokedAndRefused(revoked, revoked);
    expect(revoked, 'the assertion is refused too').toContain('"error":"invalid_grant"');
    await expectFreshConsentRevives();
  }, 60_000);
});

describe('the home page walkthrough of Agent Verified', () => {
  it('explains it, links to the provider page, and its commands run as written', async () => {
    const html = await (await fetch(`${running.demo.url}/`)).text();
    expect(html).toContain('Agent Verified: a provider vouches for the user');
    expect(html).toContain(`href="${running.demo.provider!.url}/"`);
    const providerPage = await fetch(`${running.demo.provider!.url}/`);
    expect(providerPage.status).toBe(200);
    expect(await providerPage.text()).toContain(`<code>${PROVIDER_EXAMPLE_EMAIL}</code>`);

    const commands = pageCommands(html);
    const ids = ['av-login', 'av-grant', 'av-mint', 'av-register', 'av-exchange', 'av-add-note', 'av-revoke', 'av-refused'];
    expect([...commands.keys()].filter((id) => id.startsWith('av-'))).toEqual(ids);
    for (const id of ids) {
      for (const origin of commands.get(id)!.match(/https?:\/\/[^/\s"'`\\]+/g) ?? []) expect([running.demo.url, running.demo.provider!.url], id).toContain(origin);
    }

    running.shell = new Shell();
    for (const id of ['av-login', 'av-grant', 'av-mint']) await run(commands.get(id));
    const registered = await run(commands.get('av-register'));
    await run(commands.get('av-exchange'));
    expectRegisteredAndWritten(registered + (await run(commands.get('av-add-note'))));
    expectRevokedAndRefused(await run(commands.get('av-revoke')), await run(commands.get('av-refused')));
    await expectFreshConsentRevives();
  }, 60_000);

  it('is only on the page when a provider is trusted, and the banner points at the provider', async () => {
    const banner = renderBanner({ name: 'n', url: README_BASE, dbPath: '/tmp/x.db', providerUrl: README_PROVIDER });
    expect(banner).toContain(`${README_PROVIDER}/`);
    expect(banner).toContain(PROVIDER_EXAMPLE_EMAIL);
    expect(banner).toContain('Agent Verified');
    expect(renderBanner({ name: 'n', url: README_BASE, dbPath: '/tmp/x.db' })).not.toContain('Agent Verified');

    const aloneDir = mkdtempSync(join(tmpdir(), 'authmd-demo-alone-'));
    const alone = await startDemo({ port: 0, dataDir: aloneDir });
    try {
      expect(await (await fetch(`${alone.url}/`)).text()).not.toContain('Agent Verified');
    } finally {
      await alone.close();
      rmSync(aloneDir, { recursive: true, force: true });
    }
  });
});
