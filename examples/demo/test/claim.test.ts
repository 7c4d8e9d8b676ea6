import { describe, expect, it } from 'vitest';
import { EXAMPLE_EMAIL, READ_BACK_BUTTON } from '../src/claim-walkthrough.ts';
import { Human } from './human.ts';
import { pageCommands as commandsOf, pointAt, readme, README_BASE, readmeBlocks } from './readme.ts';
import { readmeDemoPerFile, Shell, withCode } from './readme-demo.ts';

/**
 * The claim ceremony as a first-time user meets it: the commands of the README's "Claim it as a
 * human" and of the home page run as written in bash (only the port and the code the page shows are
 * put in), and the human's part (sign in with the mailed code, Authorize or type the agent's code)
 * goes over HTTP with a cookie jar.
 */

const running = readmeDemoPerFile('claim');

/** A README block pointed at the demo under test: its URLs name 127.0.0.1:8787 and nothing else. */
const atDemo = (block: string): string => pointAt(block, { [README_BASE]: running.demo.url });

describe('README.md, "Claim it as a human"', () => {
  it('runs as written: register with an email, sign in, Authorize, read the code back, add a note; then type-in', async () => {
    const blocks = readmeBlocks('### Claim it as a human');
    expect(blocks, 'three bash blocks: start, read back, type-in').toHaveLength(3);
    const text = readme();
    expect(text, 'the README names the button the claim page has').toContain(`**${READ_BACK_BUTTON}**`);
    expect(text, 'the README sends the human to the mailbox the demo serves').toContain(`<${README_BASE}/dev/mailbox>`);
    const [start, readBack, typeIn] = blocks.map(atDemo) as [string, string, string];
    const human = new Human(running.demo.url, EXAMPLE_EMAIL);
    running.shell = new Shell();

    // 6. The agent registers with the email; the shell prints the link for the human.
    const started = await running.shell.run(start).done;
    expect(started.status, started.output).toBe(0);
    const link = new RegExp(`^${running.demo.url}/claim\\?token=cvt_[\\w-]+$`, 'm').exec(started.output)?.[0];
    expect(link, started.output).toBeDefined();

    // 7. The human opens it, signs in with the mailed code and presses Authorize.
    const code = await human.authorize(await human.openClaimLink(link!));

    // 8–9. Read back, exchange, add a note, refresh.
    const finished = await running.shell.run(withCode(readBack, code)).done;
    expect(finished.status, finished.output).toBe(0);
    expect(finished.output).toMatch(/^claimed$/m);
    expect(finished.output, 'the note is saved').toMatch(/\{"note":\{"id":"note_[^"]+","text":"hello"/);
    expect(finished.output, 'the refresh token buys a new pair').toMatch(/"type":"refresh","identity":\{"assertion":"ey/);

    // The other direction: the agent polls while the human types its code on the claim page.
    const polling = running.shell.run(typeIn);
    const [, typeInLink, agentCode] = await polling.waitFor(new RegExp(`open (${running.demo.url}/claim\\?token=cvt_[\\w-]+) and type (\\d{6})`));
    const claimPage = await human.openClaimLink(typeInLink!);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a human takes a moment: the first poll is still pending
    await human.typeAgentCode(claimPage, agentCode!);
    const polled = await polling.done;
    expect(polled.status, polled.output).toBe(0);
    const tokens = JSON.parse(polled.output.trim().split('\n').at(-1)!);
    expect(tokens).toMatchObject({ token_type: 'Bearer', scope: 'notes.read notes.write', identity_assertion: expect.stringMatching(/^ey/) });
    const note = await fetch(`${running.demo.url}/api/notes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'typed in' }),
    });
    expect(note.status).toBe(201);
  }, 60_000);
});

describe('the home page walkthrough of the claim', () => {
  async function pageCommands(): Promise<Map<string, string>> {
    return commandsOf(await (await fetch(`${running.demo.url}/`)).text());
  }

  async function run(command: string | undefined): Promise<string> {
    expect(command, 'the home page shows this command').toBeDefined();
    const result = await running.shell!.run(command!).done;
    expect(result.status, result.output).toBe(0);
    return result.output;
  }

  const linkAndCode = (output: string) => {
    const match = new RegExp(`^(${running.demo.url}/claim\\?token=cvt_[\\w-]+)  agent code: (\\d{6})$`, 'm').exec(output);
    expect(match, output).not.toBeNull();
    return { link: match![1]!, agentCode: match![2]! };
  };

  it('registers with an email, and the read-back gives a token that adds a note', async () => {
    const commands = await pageCommands();
    const human = new Human(running.demo.url, EXAMPLE_EMAIL);
    running.shell = new Shell();
    const { link } = linkAndCode(await run(commands.get('claim-register')));
    const code = await human.authorize(await human.openClaimLink(link));
    expect(await run(withCode(commands.get('claim-read-back') ?? '', code))).toMatch(/^claimed$/m);
    expect(await run(commands.get('claim-add-note'))).toMatch(/^HTTP\/1\.1 201/m);
  });

  it('claims the anonymous registration of the agent path, and the type-in poll gives a token that adds a note', async () => {
    const commands = await pageCommands();
    const human = new Human(running.demo.url, EXAMPLE_EMAIL);
    running.shell = new Shell();
    await run(commands.get('agent-register'));
    const { link, agentCode } = linkAndCode(await run(commands.get('claim-anonymous')));
    await human.typeAgentCode(await human.openClaimLink(link), agentCode);
    expect(await run(commands.get('claim-type-in'))).toMatch(/^notes\.read notes\.write$/m);
    expect(await run(commands.get('claim-add-note'))).toMatch(/^HTTP\/1\.1 201/m);
  });
});
