import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_EMAIL, READ_BACK_BUTTON } from '../src/claim-walkthrough.ts';
import { startDemo, type RunningDemo } from '../src/start.ts';
import { Human } from './human.ts';
import { pointAt, README_BASE, readmeBlocks, readmeSection } from './readme.ts';
import { missingTools, Shell } from './shell.ts';

/**
 * The README's "npx authmd" part as a reader meets it (issue 5, Done when): a fresh bash with a new
 * home directory and no node_modules/.bin on its PATH, in the checkout, runs the blocks as written
 * (only the port is put in). The person's part, signing in and typing the code authmd shows, goes over
 * HTTP with a cookie jar.
 */

const HEADING = '### Or let the agent client do it: `npx authmd`';
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

let demo: RunningDemo;
let dataDir: string;
let home: string;
let shell: Shell | undefined;

/** What a new terminal has: the system PATH and a home directory, none of npm's variables. */
function freshEnvironment(): NodeJS.ProcessEnv {
  const path = (process.env['PATH'] ?? '')
    .split(delimiter)
    .filter((entry) => !entry.includes('node_modules'))
    .join(delimiter);
  // The update notifier would ask the npm registry about a newer npm: not this test's business.
  return { HOME: home, PATH: path, LANG: 'C.UTF-8', NPM_CONFIG_UPDATE_NOTIFIER: 'false' };
}

beforeAll(async () => {
  expect(missingTools(), 'the printed commands need these tools on this machine').toEqual([]);
  dataDir = mkdtempSync(join(tmpdir(), 'authmd-demo-cli-'));
  home = mkdtempSync(join(tmpdir(), 'authmd-demo-cli-home-'));
  // A poll a second, not five: the README's commands are what is tested, and they name no interval.
  demo = await startDemo({ port: 0, dataDir, pollIntervalSeconds: 1 });
});
afterAll(async () => {
  shell?.close();
  await demo?.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

describe(`README.md, "${HEADING.slice(4)}"`, () => {
  it('runs as written from a fresh shell: read anonymously, then log in by email, write a note, log out', async () => {
    const section = readmeSection(HEADING);
    expect(section, 'the README names the button the claim page has').toContain(`**${READ_BACK_BUTTON}**`);
    const blocks = readmeBlocks(HEADING);
    expect(blocks, 'two bash blocks: anonymous read, then login and write').toHaveLength(2);
    expect(blocks[1], 'the login uses the email the demo human signs in with').toContain(`--email ${EXAMPLE_EMAIL}`);
    const [read, write] = blocks.map((block) => pointAt(block, { [README_BASE]: demo.url })) as [string, string];
    shell = new Shell({ env: freshEnvironment(), cwd: repoRoot });

    const anonymous = await shell.run(read).done;
    expect(anonymous.status, anonymous.output).toBe(0);
    expect(anonymous.output).toContain('{"notes":[]}');
    expect(anonymous.output).toMatch(/anonymous, not linked to a person/);
    const store = join(home, '.authmd', 'credentials.json');
    expect(statSync(store).mode & 0o777, 'the credential file is private').toBe(0o600);
    expect(statSync(join(home, '.authmd')).mode & 0o777).toBe(0o700);

    const human = new Human(demo.url, EXAMPLE_EMAIL);
    const running = shell.run(write);
    const [, link] = await running.waitFor(new RegExp(`Open this link and sign in:\\s+(${demo.url}/claim\\?token=cvt_[\\w-]+)`), 20_000);
    const [, agentCode] = await running.waitFor(/type this code on the page: (\d{6})/);
    await human.typeAgentCode(await human.openClaimLink(link!), agentCode!);

    const written = await running.done;
    expect(written.status, written.output).toBe(0);
    expect(written.output).toMatch(/Approved|claimed/);
    expect(written.output).toMatch(/\{"note":\{"id":"note_[^"]+","text":"hello from authmd"/);
    const afterLogout = existsSync(store) ? JSON.parse(readFileSync(store, 'utf8')) : { issuers: {} };
    expect(Object.keys(afterLogout.issuers), 'logout forgot the registration').toEqual([]);
  }, 90_000);
});
