import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../../test-support/free-port.ts';
import { agentWithToken, callNotes, OPERATOR, OPERATOR_TOKEN, register, registerAnonymousStatus, startAdminService, type AdminService } from './admin-service.ts';
import { runCli, runInProcess, tempStore, type CliResult } from './support.ts';

/**
 * `authmd admin` (issue 15) against a real service's admin API on 127.0.0.1. Each test starts its own
 * service (memory store) and registers agents over HTTP. The CLI runs in this process (`run`, what
 * bin/authmd.js calls), except where the real process is what is tested: the first listing, the help,
 * and an exit code that must reach the shell.
 */

type Json = Record<string, any>;
const T = { timeout: 60_000 };

const store = tempStore();
afterAll(() => store.remove());

let running: AdminService[] = [];
afterEach(async () => {
  await Promise.all(running.map((svc) => svc.close()));
  running = [];
});

async function service(options: Parameters<typeof startAdminService>[0] = {}): Promise<AdminService> {
  const svc = await startAdminService(options);
  running.push(svc);
  return svc;
}

const operatorEnv = (svc: AdminService, env: Record<string, string>) => ({ AUTHMD_ADMIN_TOKEN: OPERATOR_TOKEN, AUTHMD_ADMIN_URL: svc.base, ...env });

/** `authmd admin <args>` with the operator token in the environment and the service in AUTHMD_ADMIN_URL. */
function admin(svc: AdminService, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runInProcess(['admin', ...args], { store: store.path, env: operatorEnv(svc, env) });
}

/** The same, as the real `authmd` process. */
function adminProcess(svc: AdminService, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(['admin', ...args], { store: store.path, env: operatorEnv(svc, env) });
}

/** Runs it and parses stdout as the one JSON document it must be (exit 0). */
async function adminJson(svc: AdminService, args: string[]): Promise<Json> {
  const result = await admin(svc, [...args, '--json']);
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout.trim().split('\n'), 'one document, one line').toHaveLength(1);
  return JSON.parse(result.stdout);
}

const ids = (answer: Json): string[] => answer.registrations.map((r: Json) => r.id);

/** Three agents, newest last: anonymous, ada by email, anonymous. */
async function threeAgents(svc: AdminService): Promise<{ first: Json; ada: Json; last: Json }> {
  const first = await register(svc.base, { type: 'anonymous' });
  const ada = await register(svc.base, { type: 'service_auth', login_hint: 'ada@example.com' });
  const last = await register(svc.base, { type: 'anonymous' });
  return { first, ada, last };
}

describe('authmd admin list', () => {
  it('prints a table of the registrations, newest first, with aligned columns; --json prints the API answer', T, async () => {
    const svc = await service();
    const { first, ada, last } = await threeAgents(svc);

    const table = await adminProcess(svc, ['list']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stderr).toBe('');
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+TYPE\s+STATE\s+CREATED\s+EMAIL\s+PROVIDER\s+CLIENT IP$/);
    expect(lines.slice(1, 4).map((line) => line.split(/\s+/)[0])).toEqual([last.id, ada.id, first.id]);
    const adaRow = lines.find((line) => line.startsWith(ada.id))!;
    expect(adaRow.split(/\s{2,}/)).toEqual([ada.id, 'service_auth', 'claim_pending', expect.stringMatching(/^20\d\d-\d\d-\d\dT[\d:.]+Z$/), 'ada@example.com', '-', '127.0.0.1']);
    for (const column of ['TYPE', 'STATE', 'CREATED', 'EMAIL']) {
      const at = lines[0]!.indexOf(column);
      for (const line of lines.slice(1, 4)) expect(line[at - 1], `${column} column of ${line}`).toBe(' ');
      for (const line of lines.slice(1, 4)) expect(line[at], `${column} column of ${line}`).not.toBe(' ');
    }
    expect(lines.at(-1)).toBe('3 registrations.');

    const answer = await adminJson(svc, ['list']);
    expect(ids(answer)).toEqual([last.id, ada.id, first.id]);
    expect(answer).not.toHaveProperty('next_cursor');
    expect(answer.registrations[1]).toEqual({
      id: ada.id,
      type: 'service_auth',
      state: 'claim_pending',
      created_at: expect.any(String),
      claimed_at: null,
      revoked_at: null,
      revoked_by: null,
      user_id: null,
      user_email: null,
      login_hint: 'ada@example.com',
      provider: null,
      client_id: null,
      client_ip: '127.0.0.1',
    });
  });

  it('filters by email, type, state and time', T, async () => {
    const svc = await service();
    const { first, ada, last } = await threeAgents(svc);
    const [byEmail, byType, byState, fromFuture, emptyTable] = await Promise.all([
      adminJson(svc, ['list', '--email', 'ADA@example.com']),
      adminJson(svc, ['list', '--type', 'anonymous']),
      adminJson(svc, ['list', '--state', 'claim_pending']),
      adminJson(svc, ['list', '--from', '2999-01-01T00:00:00Z']),
      admin(svc, ['list', '--state', 'claimed']),
    ]);
    expect(ids(byEmail)).toEqual([ada.id]);
    expect(ids(byType)).toEqual([last.id, first.id]);
    expect(ids(byState)).toEqual([ada.id]);
    expect(ids(fromFuture)).toEqual([]);
    expect(emptyTable).toMatchObject({ code: 0, stdout: 'No registrations match.\n' });

    const to = await adminJson(svc, ['list', '--to', byEmail.registrations[0].created_at, '--type', 'anonymous']);
    expect(ids(to)).toEqual([first.id]);
  });

  it('pages with --limit and --cursor, and --all follows the cursor through every page', T, async () => {
    const svc = await service();
    const { first, ada, last } = await threeAgents(svc);

    const page = await admin(svc, ['list', '--limit', '1']);
    expect(page.code, page.stderr).toBe(0);
    const cursor = /More: add --cursor (\S+) \(or --all for every page\)\./.exec(page.stdout)?.[1];
    expect(cursor, page.stdout).toBeDefined();
    expect(page.stdout).toContain(last.id);
    expect(page.stdout).toContain('1 registration on this page.');
    expect(page.stdout).not.toContain(ada.id);

    const second = await adminJson(svc, ['list', '--limit', '1', '--cursor', cursor!]);
    expect(ids(second)).toEqual([ada.id]);
    expect(second.next_cursor).toEqual(expect.any(String));

    const [all, allTable] = await Promise.all([adminJson(svc, ['list', '--all', '--limit', '1']), admin(svc, ['list', '--all', '--limit', '1'])]);
    expect(all).toEqual({ registrations: expect.any(Array) });
    expect(ids(all)).toEqual([last.id, ada.id, first.id]);
    expect(allTable.code).toBe(0);
    expect(allTable.stdout).toMatch(new RegExp(`${last.id}[^\\n]*\\n${ada.id}[^\\n]*\\n${first.id}`));
    expect(allTable.stdout).toContain('\n3 registrations.\n');
    expect(allTable.stdout).not.toContain('--cursor');
  });

  it('checks --limit and times before asking the service (usage, exit 64), and passes the service\'s 400 on', T, async () => {
    const svc = await service();
    const [zero, many, yesterday, robot] = await Promise.all([
      admin(svc, ['list', '--limit', '0']),
      admin(svc, ['list', '--limit', '101']),
      admin(svc, ['list', '--from', 'yesterday']),
      admin(svc, ['list', '--type', 'robot']),
    ]);
    expect(zero.code).toBe(64);
    expect(zero.stderr).toContain('--limit 0: give a number from 1 to 100.');
    expect(many.code).toBe(64);
    expect(yesterday.code).toBe(64);
    expect(yesterday.stderr).toContain('--from yesterday is not an ISO 8601 time with an offset');
    expect(robot.code).toBe(1);
    expect(robot.stderr).toMatch(/^authmd: Listing registrations failed \(400 invalid_request\): type: .*Check the arguments: 'authmd admin --help'\.\n$/);
  });
});

describe('authmd admin show and revoke', () => {
  it('show prints the registration, its live credentials and its timeline; revoke ends it: the agent is refused at once', T, async () => {
    const svc = await service();
    const agent = await agentWithToken(svc.base);
    expect(await callNotes(svc.base, agent.token)).toBe(200);

    const shown = await admin(svc, ['show', agent.id]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`Registration ${agent.id}\n`);
    expect(shown.stdout).toMatch(/\n  type\s+anonymous\n  state\s+unclaimed\n/);
    expect(shown.stdout).toMatch(/\n  access tokens\s+1, expires 20\d\d-/);
    expect(shown.stdout).toMatch(/\nTimeline\n  AT\s+EVENT\s+DATA\n  20\S+\s+registration\.created\s+type=anonymous\n/);
    expect(shown.stdout).toMatch(/token\.issued\s+scope=notes\.read/);

    const revoked = await admin(svc, ['revoke', agent.id]);
    expect(revoked).toMatchObject({ code: 0, stdout: `Revoked ${agent.id}: its tokens are refused from now on (state revoked_by_operator).\n`, stderr: '' });
    expect(await callNotes(svc.base, agent.token)).toBe(401);

    const after = await adminJson(svc, ['show', agent.id]);
    expect(after.registration).toMatchObject({ id: agent.id, state: 'revoked_by_operator', revoked_at: expect.any(String) });
    expect(after.tokens.access).toEqual({ live: 0, next_expiry: null, last_expiry: null });
    expect(after.timeline.at(-1)).toMatchObject({ type: 'registration.revoked', data: { operator: OPERATOR } });
    const text = await admin(svc, ['show', agent.id]);
    expect(text.stdout).toMatch(/\n  state\s+revoked_by_operator\n/);
    expect(text.stdout).toMatch(/\n  access tokens\s+none\n/);

    const again = await adminJson(svc, ['revoke', agent.id]);
    expect(again).toEqual({ id: agent.id, revoked: false, state: 'revoked_by_operator' });
    const againText = await admin(svc, ['revoke', agent.id]);
    expect(againText).toMatchObject({ code: 0, stdout: `${agent.id} was already revoked by an operator; nothing changed (state revoked_by_operator).\n` });
  });

  it('an unknown id: exit 1 with the API\'s description and what to do', T, async () => {
    const svc = await service();
    const [shown, revoked, json] = await Promise.all([admin(svc, ['show', 'reg_nothing']), admin(svc, ['revoke', 'reg_nothing']), admin(svc, ['show', 'reg_nothing', '--json'])]);
    for (const result of [shown, revoked]) {
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/failed \(404 unknown_registration\): No registration reg_nothing\./);
      expect(result.stderr).toContain("Check the id: 'authmd admin list' shows the registrations.");
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'error', error: 'unknown_registration', exit_code: 1 });
  });

  it('a missing <id> or an extra argument is a usage error', T, async () => {
    const svc = await service();
    const [missing, extra] = await Promise.all([admin(svc, ['show']), admin(svc, ['revoke', 'reg_a', 'reg_b'])]);
    expect(missing.code).toBe(64);
    expect(missing.stderr).toContain('Missing <id>: authmd admin show <id>.');
    expect(extra.code).toBe(64);
    expect(extra.stderr).toContain('Unexpected argument "reg_b".');
  });
});

describe('authmd admin revoke-all', () => {
  async function adaTwiceAndBob(svc: AdminService): Promise<{ ada: string[]; bob: string }> {
    const ada = [(await register(svc.base, { type: 'service_auth', login_hint: 'ada@example.com' })).id, (await register(svc.base, { type: 'service_auth', login_hint: 'ada@example.com' })).id];
    const bob = (await register(svc.base, { type: 'service_auth', login_hint: 'bob@example.com' })).id;
    return { ada, bob };
  }

  it('without a terminal and without --yes it refuses, saying how many and to pass --yes; --dry-run counts; --yes revokes', T, async () => {
    const svc = await service();
    const { ada, bob } = await adaTwiceAndBob(svc);

    const refused = await admin(svc, ['revoke-all', '--by', 'email', '--value', 'ada@example.com']);
    expect(refused.code).toBe(64);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('2 live registrations with email ada@example.com would be revoked for good');
    expect(refused.stderr).toContain('there is no terminal to ask on: pass --yes to revoke them.');
    expect((await adminJson(svc, ['list', '--email', 'ada@example.com'])).registrations.map((r: Json) => r.state)).toEqual(['claim_pending', 'claim_pending']);

    const [dry, dryJson] = await Promise.all([
      admin(svc, ['revoke-all', '--by', 'email', '--value', 'ada@example.com', '--dry-run']),
      adminJson(svc, ['revoke-all', '--by', 'email', '--value', 'ada@example.com', '--dry-run']),
    ]);
    expect(dry).toMatchObject({ code: 0, stdout: 'Would revoke 2 registrations with email ada@example.com.\n' });
    expect(dryJson).toEqual({ by: 'email', value: 'ada@example.com', would_revoke: 2 });

    const done = await admin(svc, ['revoke-all', '--by', 'email', '--value', 'ada@example.com', '--yes']);
    expect(done).toMatchObject({ code: 0, stdout: 'Revoked 2 registrations with email ada@example.com.\n' });
    const after = await adminJson(svc, ['list']);
    const states = Object.fromEntries(after.registrations.map((r: Json) => [r.id, r.state]));
    expect(states).toEqual({ [ada[0]!]: 'revoked_by_operator', [ada[1]!]: 'revoked_by_operator', [bob]: 'claim_pending' });

    const json = await adminJson(svc, ['revoke-all', '--by', 'email', '--value', 'bob@example.com', '-y']);
    expect(json).toEqual({ by: 'email', value: 'bob@example.com', revoked: 1, finalized: 0 });
  });

  it('checks --by and --value (usage, exit 64)', T, async () => {
    const svc = await service();
    const [noBy, planet, both] = await Promise.all([
      admin(svc, ['revoke-all', '--value', 'x']),
      admin(svc, ['revoke-all', '--by', 'planet', '--value', 'x']),
      admin(svc, ['revoke-all', '--by', 'email', '--value', 'x', '--yes', '--dry-run']),
    ]);
    expect(noBy.code).toBe(64);
    expect(noBy.stderr).toContain('revoke-all needs --by email|provider|client_id and --value <value>.');
    expect(planet.code).toBe(64);
    expect(planet.stderr).toContain('--by planet: use email, provider or client_id.');
    expect(both.code).toBe(64);
  });

  /** `authmd admin …` with stdin a terminal on which `typed` is typed. */
  const onTerminal = (svc: AdminService, args: string[], typed: string) =>
    runInProcess(['admin', ...args], { store: store.path, env: operatorEnv(svc, {}), typed });

  it('on a terminal it shows the count and asks: no keeps everything (exit 1), yes revokes', T, async () => {
    const svc = await service();
    const { ada } = await adaTwiceAndBob(svc);
    const args = ['revoke-all', '--by', 'email', '--value', 'ada@example.com'];

    const declined = await onTerminal(svc, args, 'n\n');
    expect(declined.code).toBe(1);
    expect(declined.stderr).toBe(
      '2 live registrations with email ada@example.com would be revoked for good: their tokens are refused at once, and nothing brings them back.\nRevoke them? [y/N] Nothing revoked.\n',
    );
    expect(declined.stdout).toBe('');
    expect((await adminJson(svc, ['show', ada[0]!])).registration.state).toBe('claim_pending');

    const confirmed = await onTerminal(svc, args, 'yes\n');
    expect(confirmed.code, confirmed.stderr).toBe(0);
    expect(confirmed.stderr).toContain('Revoke them? [y/N] ');
    expect(confirmed.stdout).toBe('Revoked 2 registrations with email ada@example.com.\n');
    expect((await adminJson(svc, ['show', ada[1]!])).registration.state).toBe('revoked_by_operator');
  });
});

describe('authmd admin keys, providers and rate limits', () => {
  it('keys lists the signing keys; rotate-key makes a new one that signs, the old one retired but published', T, async () => {
    const svc = await service();
    const before = await admin(svc, ['keys']);
    expect(before.code, before.stderr).toBe(0);
    const [header, row, ...rest] = before.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^KID\s+ALG\s+CREATED\s+RETIRED\s+SIGNING\s+PUBLISHED$/);
    expect(rest).toEqual([]);
    const [oldKid, alg, , retired, signing, published] = row!.split(/\s+/);
    expect([alg, retired, signing, published]).toEqual(['ES256', '-', 'yes', 'yes']);

    const rotated = await admin(svc, ['rotate-key']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const newKid = /^New signing key (\S+) \(ES256\), created 20\S+: it signs from now on\.\n/.exec(rotated.stdout)?.[1];
    expect(newKid, rotated.stdout).toBeDefined();
    expect(newKid).not.toBe(oldKid);

    const keys = await adminJson(svc, ['keys']);
    expect(keys.keys).toEqual([
      expect.objectContaining({ kid: newKid, signing: true, published: true, retired_at: null }),
      expect.objectContaining({ kid: oldKid, signing: false, published: true, retired_at: expect.any(String) }),
    ]);
    const table = await admin(svc, ['keys']);
    expect(table.stdout).toMatch(new RegExp(`\\n${newKid}\\s+ES256\\s+\\S+\\s+-\\s+yes\\s+yes\\n${oldKid}\\s+ES256\\s+\\S+\\s+20\\S+\\s+no\\s+yes\\n$`));

    const json = await adminJson(svc, ['rotate-key']);
    expect(json.key).toMatchObject({ alg: 'ES256', signing: true, published: true });
    expect([newKid, oldKid]).not.toContain(json.key.kid);
  });

  it('providers lists the trusted provider with its keys and events', T, async () => {
    const svc = await service();
    const text = await admin(svc, ['providers']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`${svc.provider.issuer} (Acme Agents)\n`);
    expect(text.stdout).toMatch(/\n  client ids\s+any\n/);
    expect(text.stdout).toMatch(new RegExp(`\\n  keys\\s+${svc.provider.kid}, fresh until 20`));
    expect(text.stdout).toMatch(/\n  accepted\s+0 events\n  refused\s+0 events\n$/);

    const json = await adminJson(svc, ['providers']);
    expect(json.providers).toEqual([
      expect.objectContaining({
        issuer: svc.provider.issuer,
        display_name: 'Acme Agents',
        keys: expect.objectContaining({ jwks_uri: `${svc.provider.issuer}/jwks.json`, kids: [svc.provider.kid], error: null }),
        events: expect.objectContaining({ accepted: 0, refused: 0 }),
      }),
    ]);
  });

  it('providers with none trusted says so', T, async () => {
    const svc = await service({ trust: { issuers: [] } });
    const text = await admin(svc, ['providers']);
    expect(text).toMatchObject({ code: 0, stdout: 'No trusted agent providers (the service trusts none: trust.providers).\n' });
    expect(await adminJson(svc, ['providers'])).toEqual({ providers: [] });
  });

  it('rate-limits shows the counters of an address; clear-rate-limits resets them and the address may register again', T, async () => {
    const svc = await service({ rateLimits: { anonymous: { perIp: 2, perService: 1_000 } } });
    expect(await registerAnonymousStatus(svc.base)).toBe(200);
    expect(await registerAnonymousStatus(svc.base)).toBe(200);
    expect(await registerAnonymousStatus(svc.base)).toBe(429);

    const json = await adminJson(svc, ['rate-limits', '127.0.0.1']);
    expect(json).toMatchObject({ address: '127.0.0.1', network: '127.0.0.1' });
    const anonymous = json.limits.find((l: Json) => l.option === 'rateLimits.anonymous.perIp');
    expect(anonymous).toEqual({ option: 'rateLimits.anonymous.perIp', limit: 2, count: expect.any(Number), resets_at: expect.any(String) });
    expect(anonymous.count).toBeGreaterThanOrEqual(2);

    const shown = await admin(svc, ['rate-limits', '127.0.0.1']);
    expect(shown.code, shown.stderr).toBe(0);
    const lines = shown.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Rate limits counting for 127.0.0.1:');
    expect(lines[1]).toMatch(/^OPTION\s+COUNT\s+LIMIT\s+RESETS AT$/);
    expect(lines.slice(2).map((line) => line.split(/\s+/))).toContainEqual(['rateLimits.anonymous.perIp', String(anonymous.count), '2', anonymous.resets_at]);

    const cleared = await admin(svc, ['clear-rate-limits', '127.0.0.1']);
    expect(cleared).toMatchObject({ code: 0, stdout: `Cleared ${json.limits.length} rate-limit counter${json.limits.length === 1 ? '' : 's'} for 127.0.0.1.\n` });
    expect(await admin(svc, ['rate-limits', '127.0.0.1'])).toMatchObject({ code: 0, stdout: 'No limit is counting for 127.0.0.1.\n' });
    expect(await registerAnonymousStatus(svc.base)).toBe(200);

    expect(await adminJson(svc, ['clear-rate-limits', '::1'])).toEqual({ address: '::1', cleared: 0 });
    const bad = await admin(svc, ['rate-limits', 'not-an-ip']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Reading the rate limits of not-an-ip failed \(400 invalid_request\): address: not-an-ip is not an IP address \(IPv4 or IPv6\)\./);
  });
});

describe('authmd admin: the token, the service and usage', () => {
  it('a wrong token or none: exit 1, saying to set AUTHMD_ADMIN_TOKEN to an operator token', T, async () => {
    const svc = await service();
    const [wrong, wrongJson, missing] = await Promise.all([
      admin(svc, ['list'], { AUTHMD_ADMIN_TOKEN: 'x'.repeat(48) }),
      admin(svc, ['keys', '--json'], { AUTHMD_ADMIN_TOKEN: 'x'.repeat(48) }),
      admin(svc, ['list'], { AUTHMD_ADMIN_TOKEN: '' }),
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toMatch(/^authmd: Listing registrations failed \(401 operator_unauthorized\): This token is not an operator's\./);
    expect(wrong.stderr).toMatch(/ Set AUTHMD_ADMIN_TOKEN \(or --token-file\) to an operator token of this service \(one of its admin\.apiTokens\)\.\n$/);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrongJson.code).toBe(1);
    expect(JSON.parse(wrongJson.stdout)).toMatchObject({ status: 'error', error: 'operator_unauthorized', exit_code: 1 });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      'authmd: No operator token: set AUTHMD_ADMIN_TOKEN to an operator token of this service (one of its admin.apiTokens), or pass --token-file <file>.\n',
    );
  });

  it('--token-file reads the token from a file', T, async () => {
    const svc = await service();
    await register(svc.base, { type: 'anonymous' });
    const dir = mkdtempSync(join(tmpdir(), 'authmd-admin-token-'));
    try {
      const file = join(dir, 'token');
      writeFileSync(file, `${OPERATOR_TOKEN}\n`);
      chmodSync(file, 0o600);
      const listed = await admin(svc, ['list', '--token-file', file], { AUTHMD_ADMIN_TOKEN: '' });
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain('1 registration.');
      expect(listed.stderr).toBe('');

      chmodSync(file, 0o644);
      const open = await admin(svc, ['keys', '--token-file', file], { AUTHMD_ADMIN_TOKEN: '' });
      expect(open.code).toBe(0);
      expect(open.stderr).toBe(`authmd: warning: ${file} can be read by other users (mode 644); chmod 600 it.\n`);

      const absent = await admin(svc, ['keys', '--token-file', join(dir, 'nothing')]);
      expect(absent.code).toBe(64);
      expect(absent.stderr).toContain(`Cannot read the operator token from ${join(dir, 'nothing')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses --token (in any spelling) without echoing it, saying why and what to use', T, async () => {
    const svc = await service();
    const secret = 'do-not-print-this-token-0123456789abcdef';
    for (const args of [['list', '--token', secret], ['list', `--token=${secret}`], ['--token', secret, 'keys'], ['list', '--token']]) {
      const result = await admin(svc, args);
      expect(result.code, args.join(' ')).toBe(64);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('does not take the token on the command line (--token): it would be visible to every user in `ps` and kept in your shell history.');
      expect(result.stderr).toContain('Set AUTHMD_ADMIN_TOKEN, or pass --token-file <file>');
      expect(result.stderr).not.toContain(secret);
    }
  });

  it('usage errors exit 64: unknown subcommand, an option of another subcommand, no subcommand, no service, plain http off this machine', T, async () => {
    const svc = await service();
    const [unknown, foreign, none, noService, remote, badPath] = await Promise.all([
      admin(svc, ['frobnicate']),
      admin(svc, ['keys', '--email', 'ada@example.com']),
      admin(svc, []),
      admin(svc, ['list'], { AUTHMD_ADMIN_URL: '' }),
      admin(svc, ['list', '--service', 'http://auth.example.com']),
      admin(svc, ['list', '--admin-path', 'admin/']),
    ]);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toBe(
      'authmd: Unknown subcommand "frobnicate" (one of: list, show, revoke, revoke-all, providers, keys, rotate-key, rate-limits, clear-rate-limits). See \'authmd admin --help\'.\n',
    );
    expect(foreign.code).toBe(64);
    expect(foreign.stderr).toContain("--email does not apply to 'authmd admin keys'.");
    expect(none.code).toBe(64);
    expect(none.stderr).toMatch(/^Usage: authmd admin <subcommand>/);
    expect(noService.code).toBe(64);
    expect(noService.stderr).toContain('Which service? Pass --service <issuer URL>');
    expect(remote.code).toBe(64);
    expect(remote.stderr).toContain('--service http://auth.example.com is plain http: the operator token would cross the network in clear. Use https');
    expect(badPath.code).toBe(64);
    expect(badPath.stderr).toContain('--admin-path "admin/" is not a path such as /admin.');
  });

  it('--service wins over AUTHMD_ADMIN_URL; a wrong --admin-path says where it looked', T, async () => {
    const svc = await service();
    const other = `http://127.0.0.1:${await freePort()}`;
    const viaFlag = await admin(svc, ['keys', '--service', `${svc.base}/`], { AUTHMD_ADMIN_URL: other });
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    expect(viaFlag.stdout).toMatch(/^KID\s+ALG/);

    const wrongPath = await admin(svc, ['keys', '--admin-path', '/ops']);
    expect(wrongPath.code).toBe(1);
    expect(wrongPath.stderr).toContain(`No admin API at ${svc.base}/ops/api/signing-keys: check --service (the service's issuer) and --admin-path`);
  });

  it('an unreachable service: exit 69, one line', T, async () => {
    const svc = await service();
    const result = await adminProcess(svc, ['keys'], { AUTHMD_ADMIN_URL: `http://127.0.0.1:${await freePort()}` });
    expect(result.code).toBe(69);
    expect(result.stderr).toMatch(/^authmd: Reading the signing keys failed: could not reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)\./);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('--help: authmd admin --help shows its usage; authmd --help lists admin', T, async () => {
    const svc = await service();
    const [own, global, viaHelp] = await Promise.all([adminProcess(svc, ['--help']), runCli(['--help'], { store: store.path }), runCli(['help', 'admin'], { store: store.path })]);
    expect(own.code).toBe(0);
    expect(own.stdout).toMatch(/^Usage: authmd admin <subcommand>/);
    for (const text of ['list [filters] [--all]', 'show <id>', 'revoke <id>', 'revoke-all --by email|provider|client_id --value <value>', 'providers', 'keys', 'rotate-key', 'rate-limits <address>', 'clear-rate-limits <address>', '--token-file <file>', 'AUTHMD_ADMIN_TOKEN', '--token is refused']) {
      expect(own.stdout).toContain(text);
    }
    expect(viaHelp.stdout).toBe(own.stdout);
    expect(global.code).toBe(0);
    expect(global.stdout).toContain('authmd admin list|show|revoke|revoke-all|providers|keys|rotate-key|rate-limits|clear-rate-limits');
    expect(global.stdout).toMatch(/\n  admin\s+Operate a service through its admin API/);
    expect(global.stdout).toContain('AUTHMD_ADMIN_TOKEN');
  });
});
