import { describe, expect, it } from 'vitest';
import { pageCode } from '../../../packages/conformance/src/human/authmd-pages.ts';
import { EXAMPLE_EMAIL } from '../src/claim-walkthrough.ts';
import { pointAt, README_BASE, readmeBlocks, readmeSection, unescapeHtml } from './readme.ts';
import { readmeDemoPerFile, Shell, withCode } from './readme-demo.ts';

/**
 * Issue 12, "Done when": a person following the README claims a v0.1 registration from the email
 * alone. The commands of the README's v0.1 section run in bash as written (only the port and the
 * code are put in); the person's part is the dev mailbox (its JSON, as the other README tests read
 * sign-in codes) and, for the other way the section names, the emailed link's page over HTTP.
 */

const HEADING = '### v0.1 agents: claimed from the email alone';
const NEW_CODE_BUTTON = 'Show me a new code';
const DENY_BUTTON = 'This was not me';

const running = readmeDemoPerFile('v01');
const base = () => running.demo.url;

/** The README's two blocks, pointed at the demo under test. */
function blocks(): [string, string] {
  const found = readmeBlocks(HEADING);
  expect(found, 'two bash blocks: register and ask for the claim; send the code and write').toHaveLength(2);
  return found.map((block) => pointAt(block, { [README_BASE]: base() })) as [string, string];
}

async function run(block: string): Promise<string> {
  const result = await running.shell!.run(block).done;
  expect(result.status, result.output).toBe(0);
  return result.output;
}

/** The person's mailbox: the latest claim email to them, its code and its link, and how many there are. */
async function claimEmail(to: string): Promise<{ code: string; link: string; count: number }> {
  const { messages } = (await (await fetch(`${base()}/dev/mailbox.json`)).json()) as { messages: { to: string; subject: string; text: string }[] };
  const mine = messages.filter((m) => m.to === to && m.subject.includes('let an agent'));
  // Newest first, as the page shows them.
  const latest = mine[0];
  expect(latest, `a claim email to ${to}`).toBeDefined();
  const code = /read this code to your agent: (\d{6})/.exec(latest!.text)?.[1];
  const link = /(https?:\/\/\S+\/agent\/auth\/claim\/view\?token=\S+)/.exec(latest!.text)?.[1];
  expect(code, latest!.text).toMatch(/^\d{6}$/);
  expect(link, latest!.text).toBeDefined();
  return { code: code!, link: link!, count: mine.length };
}

/** Opens the emailed link: who asks and the two buttons the README names, and no code. */
async function openLink(link: string): Promise<string> {
  expect(new URL(link).origin, 'the link points at the demo').toBe(base());
  const page = await fetch(link);
  const html = await page.text();
  expect(page.status).toBe(200);
  expect(html).toContain(`>${NEW_CODE_BUTTON}</button>`);
  expect(html).toContain(`>${DENY_BUTTON}</button>`);
  expect(html).toContain(`<b>${EXAMPLE_EMAIL}</b>`);
  expect(html.replace(/<[^>]*>/g, ' '), 'opening the link reveals no code').not.toMatch(/(?<!\d)\d{6}(?!\d)/);
  return html;
}

/** Presses a button of the link's page (its form, as a browser posts it); the answer page's HTML. */
async function press(pageHtml: string, button: string): Promise<string> {
  const form = new RegExp(`<form method="post" action="([^"]+)"><input type="hidden" name="token" value="([^"]+)"><button type="submit"[^>]*>${button}</button></form>`).exec(pageHtml);
  expect(form, `the page has a "${button}" form`).not.toBeNull();
  const answer = await fetch(new URL(unescapeHtml(form![1]!), base()), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: unescapeHtml(form![2]!) }).toString(),
  });
  expect(answer.status).toBe(200);
  return answer.text();
}

describe(`README.md, "${HEADING.slice(4)}"`, () => {
  it('names the mailbox and the buttons the link page has', () => {
    const section = readmeSection(HEADING);
    expect(section).toContain(`<${README_BASE}/dev/mailbox>`);
    expect(section).toContain(`**${NEW_CODE_BUTTON}**`);
    expect(section).toContain(`**${DENY_BUTTON}**`);
    expect(section).toContain('claim_denied');
  });

  it('runs as written: the person reads the emailed code, the agent completes, the same API key writes a note', async () => {
    const [start, finish] = blocks();
    running.shell = new Shell();
    const started = await run(start);
    expect(started, 'the claim was started').toContain('"status":"initiated"');

    // The person: the email in the dev mailbox, and its code read to the agent.
    const { code, link, count } = await claimEmail(EXAMPLE_EMAIL);
    await openLink(link); // Looking at who asks changes nothing: the emailed code still works.

    const finished = await run(withCode(finish, code));
    expect(finished).toMatch(/"status":"claimed"/);
    expect(finished).toContain('"credential_type":"api_key","scopes":["notes.read","notes.write"]');
    expect(finished, 'the note is saved with the same API key').toMatch(/\{"note":\{"id":"note_[^"]+","text":"hello from v0\.1"/);
    expect((await claimEmail(EXAMPLE_EMAIL)).count, 'one email per claim').toBe(count);
  });

  it('runs as written with the link page’s new code instead; the emailed one is then refused', async () => {
    const [start, finish] = blocks();
    running.shell = new Shell();
    expect(await run(start)).toContain('"status":"initiated"');
    const emailed = await claimEmail(EXAMPLE_EMAIL);
    const shown = await press(await openLink(emailed.link), NEW_CODE_BUTTON);
    const code = pageCode(shown);
    expect(code, shown).toMatch(/^\d{6}$/);

    if (code !== emailed.code) {
      const stale = await run(withCode(finish, emailed.code));
      expect(stale, 'the new code replaced the emailed one').toContain('"error":"otp_invalid"');
      expect(stale, 'and nothing was written').not.toContain('"note"');
    }
    const finished = await run(withCode(finish, code!));
    expect(finished).toMatch(/"status":"claimed"/);
    expect(finished).toMatch(/\{"note":\{"id":"note_[^"]+","text":"hello from v0\.1"/);
  });

  it('"This was not me" on the link page: the agent’s step gets claim_denied and writes nothing', async () => {
    const [start, finish] = blocks();
    running.shell = new Shell();
    expect(await run(start)).toContain('"status":"initiated"');
    const emailed = await claimEmail(EXAMPLE_EMAIL);
    expect(await press(await openLink(emailed.link), DENY_BUTTON)).toContain('The agent was told no.');
    const refused = await run(withCode(finish, emailed.code));
    expect(refused).toContain('"error":"claim_denied"');
    expect(refused).toContain('"error":"insufficient_scope"');
    expect(refused).not.toContain('"note"');
  });
});
