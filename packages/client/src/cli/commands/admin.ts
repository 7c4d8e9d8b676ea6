import { createInterface } from 'node:readline';
import { AdminApi, adminPathFrom, issuerFrom, screenArgv, tokenFrom, type Json } from '../admin/api.ts';
import {
  bulkText,
  clearedText,
  keysText,
  listText,
  providersText,
  rateLimitsText,
  registrationText,
  revokeText,
  rotatedText,
  selectorText,
} from '../admin/render.ts';
import { UsageError, type OptionSpec, type ParsedArgs } from '../args.ts';
import { jsonOption, type Command } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { write, type Io } from '../io.ts';

const usage = `Usage: authmd admin <subcommand> [<argument>] [options] [--service <issuer>] [--json]

The operator's side of an auth.md service, over its admin API (<issuer><admin path>/api, served when
the service sets admin.apiTokens). Each call sends the operator token as a bearer token; the service
audits every action with the operator's name.

Subcommands:
  list [filters] [--all]        registrations, newest first, a page at a time (filters below)
  show <id>                     one registration: its state, account, live credentials and timeline
  revoke <id>                   revoke one registration for good: its tokens are refused at once
  revoke-all --by email|provider|client_id --value <value> [--yes | --dry-run]
                                revoke every registration that matches. Shows how many first and asks
                                to confirm; --yes (-y) does not ask (needed without a terminal);
                                --dry-run only counts
  providers                     the trusted agent providers: their keys and the events they sent
  keys                          the service's signing keys
  rotate-key                    a new signing key now (the previous one stays published until what
                                it signed has expired)
  rate-limits <address>         the per-IP limits counting for an address (an IPv6 one by its /64)
  clear-rate-limits <address>   reset those counters

Filters of list:
  --email <email>       the account's email, or the one a service_auth registration named
  --provider <issuer>   the agent provider's issuer
  --client-id <id>      the ID-JAG's client id (the agent platform)
  --type <type>         anonymous, service_auth or identity_assertion
  --state <state>       unclaimed, claim_pending, link_pending, claimed, expired, revoked_by_operator
                        or revoked_by_provider
  --from <time>         created at or after this time (ISO 8601 with an offset: 2026-11-28T12:00:00Z)
  --to <time>           created before this time
  --limit <n>           registrations per page, 1 to 100 (default 50)
  --cursor <cursor>     the page after the one that printed this cursor
  --all                 every page, following the cursor to the end

Options:
  --service <issuer>    the service's issuer URL (default: $AUTHMD_ADMIN_URL). https, or plain http
                        to 127.0.0.1, ::1 or localhost only
  --admin-path <path>   the service's admin.path (default /admin)
  --token-file <file>   read the operator token from this file (default: $AUTHMD_ADMIN_TOKEN)
  --json                print the API's JSON answer as it is, one document (list --all: every
                        page's registrations in one {"registrations": [...]})
  -h, --help            this help

The operator token is never taken on the command line (--token is refused): it would show in \`ps\`
and stay in your shell history. Set AUTHMD_ADMIN_TOKEN, or keep it in a file only you can read.

Exit codes: 0 ok, 1 the service refused (its reason and what to do are printed) or revoke-all was
not confirmed, 64 usage (revoke-all without --yes and without a terminal, too), 69 the service is
unreachable or failed (5xx).`;

const COMMON = ['service', 'admin-path', 'token-file', 'json'];
const LIST_FILTERS = ['email', 'provider', 'client-id', 'type', 'state', 'from', 'to', 'limit', 'cursor'];

interface Subcommand {
  /** The one positional argument it takes, if any. */
  argument?: string;
  /** Options beyond the common ones. */
  options: string[];
  run(context: Context): Promise<number>;
}

interface Context {
  io: Io;
  args: ParsedArgs;
  api: AdminApi;
  json: boolean;
  /** The positional argument. */
  argument: string;
  print(text: string): Promise<void>;
  printJson(value: unknown): Promise<void>;
}

const subcommands: Record<string, Subcommand> = {
  list: { options: [...LIST_FILTERS, 'all'], run: list },
  show: {
    argument: 'id',
    options: [],
    async run({ api, argument, json, print, printJson }) {
      const answer = await api.get('/registration', { id: argument }, `Reading registration ${argument}`);
      await (json ? printJson(answer) : print(registrationText(answer)));
      return ExitCode.ok;
    },
  },
  revoke: {
    argument: 'id',
    options: [],
    async run({ api, argument, json, print, printJson }) {
      const answer = await api.post('/registration/revoke', { id: argument }, `Revoking registration ${argument}`);
      await (json ? printJson(answer) : print(revokeText(answer)));
      return ExitCode.ok;
    },
  },
  'revoke-all': { options: ['by', 'value', 'yes', 'dry-run'], run: revokeAll },
  providers: {
    options: [],
    async run({ api, json, print, printJson }) {
      const answer = await api.get('/providers', {}, 'Reading the trusted providers');
      await (json ? printJson(answer) : print(providersText(arrayOf(answer.providers))));
      return ExitCode.ok;
    },
  },
  keys: {
    options: [],
    async run({ api, json, print, printJson }) {
      const answer = await api.get('/signing-keys', {}, 'Reading the signing keys');
      await (json ? printJson(answer) : print(keysText(arrayOf(answer.keys))));
      return ExitCode.ok;
    },
  },
  'rotate-key': {
    options: [],
    async run({ api, json, print, printJson }) {
      const answer = await api.post('/signing-keys/rotate', {}, 'Rotating the signing key');
      await (json ? printJson(answer) : print(rotatedText(answer.key ?? {})));
      return ExitCode.ok;
    },
  },
  'rate-limits': {
    argument: 'address',
    options: [],
    async run({ api, argument, json, print, printJson }) {
      const answer = await api.get('/rate-limits', { address: argument }, `Reading the rate limits of ${argument}`);
      await (json ? printJson(answer) : print(rateLimitsText(answer)));
      return ExitCode.ok;
    },
  },
  'clear-rate-limits': {
    argument: 'address',
    options: [],
    async run({ api, argument, json, print, printJson }) {
      const answer = await api.post('/rate-limits/clear', { address: argument }, `Clearing the rate limits of ${argument}`);
      await (json ? printJson(answer) : print(clearedText(answer)));
      return ExitCode.ok;
    },
  },
};

const valued = (name: string): OptionSpec => ({ name, value: true });

export const admin: Command = {
  name: 'admin',
  summary: "Operate a service through its admin API: find and revoke registrations, keys, rate limits.",
  usage,
  options: [
    valued('service'),
    valued('admin-path'),
    valued('token-file'),
    ...LIST_FILTERS.map(valued),
    { name: 'all' },
    valued('by'),
    valued('value'),
    { name: 'yes', short: 'y' },
    { name: 'dry-run' },
    jsonOption,
  ],
  screen: screenArgv,

  async run(io, args) {
    const [name, ...rest] = args.positionals;
    if (name === undefined) {
      await write(io.stderr, `${usage}\n`);
      return ExitCode.usage;
    }
    const subcommand = Object.hasOwn(subcommands, name) ? subcommands[name]! : undefined;
    if (!subcommand) throw new UsageError(`Unknown subcommand "${name}" (one of: ${Object.keys(subcommands).join(', ')}).`, 'admin');

    const allowed = new Set([...COMMON, ...subcommand.options]);
    for (const given of [...args.switches, ...args.values.keys()]) {
      if (!allowed.has(given)) throw new UsageError(`--${given} does not apply to 'authmd admin ${name}'.`, 'admin');
    }
    const [argument, ...extra] = rest;
    if (subcommand.argument && argument === undefined) throw new UsageError(`Missing <${subcommand.argument}>: authmd admin ${name} <${subcommand.argument}>.`, 'admin');
    const unexpected = subcommand.argument ? extra[0] : argument;
    if (unexpected !== undefined) throw new UsageError(`Unexpected argument "${unexpected}".`, 'admin');

    const target = { issuer: issuerFrom(args.values.get('service'), io.env), adminPath: adminPathFrom(args.values.get('admin-path')) };
    const token = tokenFrom(args.values.get('token-file'), io.env, (warning) => io.stderr.write(`${warning}\n`));
    const json = args.switches.has('json');
    return subcommand.run({
      io,
      args,
      api: new AdminApi(target, token),
      json,
      argument: argument ?? '',
      print: (text) => write(io.stdout, `${text}\n`),
      printJson: (value) => write(io.stdout, `${JSON.stringify(value)}\n`),
    });
  },
};

async function list({ args, api, json, print, printJson }: Context): Promise<number> {
  const limit = args.values.get('limit');
  if (limit !== undefined && !(/^\d{1,3}$/.test(limit) && Number(limit) >= 1 && Number(limit) <= 100)) {
    throw new UsageError(`--limit ${limit}: give a number from 1 to 100.`, 'admin');
  }
  for (const name of ['from', 'to']) {
    const value = args.values.get(name);
    if (value !== undefined && !(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}.*(Z|[+-]\d{2}:?\d{2})$/i.test(value) && !Number.isNaN(Date.parse(value)))) {
      throw new UsageError(`--${name} ${value} is not an ISO 8601 time with an offset (e.g. 2026-11-28T12:00:00Z).`, 'admin');
    }
  }
  const query: Record<string, string | undefined> = { limit };
  for (const name of LIST_FILTERS) if (name !== 'limit' && name !== 'cursor') query[name.replace('-', '_')] = args.values.get(name);

  const all = args.switches.has('all');
  let cursor = args.values.get('cursor');
  if (!all) {
    const page = await api.get('/registrations', { ...query, cursor }, 'Listing registrations');
    await (json ? printJson(page) : print(listText(arrayOf(page.registrations), cursorOf(page))));
    return ExitCode.ok;
  }
  const registrations: Json[] = [];
  const seen = new Set<string>();
  for (let pageNumber = 1; ; pageNumber++) {
    const page = await api.get('/registrations', { ...query, cursor }, `Listing registrations (page ${pageNumber})`);
    registrations.push(...arrayOf(page.registrations));
    cursor = cursorOf(page);
    if (cursor === undefined) break;
    if (seen.has(cursor)) throw new Error(`The service gave the cursor ${cursor} twice: stopped after ${registrations.length} registrations.`);
    seen.add(cursor);
  }
  await (json ? printJson({ registrations }) : print(listText(registrations, undefined)));
  return ExitCode.ok;
}

async function revokeAll({ io, args, api, json, print, printJson }: Context): Promise<number> {
  const by = args.values.get('by');
  const value = args.values.get('value');
  if (by === undefined || value === undefined) throw new UsageError('revoke-all needs --by email|provider|client_id and --value <value>.', 'admin');
  if (!['email', 'provider', 'client_id'].includes(by)) throw new UsageError(`--by ${by}: use email, provider or client_id.`, 'admin');
  if (!value.trim()) throw new UsageError('--value is empty.', 'admin');
  const dryRun = args.switches.has('dry-run');
  const yes = args.switches.has('yes');
  if (dryRun && yes) throw new UsageError('--dry-run and --yes exclude each other.', 'admin');

  const what = selectorText(by, value);
  const preview = await api.post('/revocations', { by, value, dry_run: true }, `Counting the registrations with ${what}`);
  const count = typeof preview.would_revoke === 'number' ? preview.would_revoke : 0;
  if (dryRun) {
    await (json ? printJson(preview) : print(`Would revoke ${count} registration${count === 1 ? '' : 's'} with ${what}.`));
    return ExitCode.ok;
  }
  const summary = `${count} live registration${count === 1 ? '' : 's'} with ${what} would be revoked for good: their tokens are refused at once, and nothing brings them back.`;
  if (!yes) {
    if (!io.stdin.isTTY) {
      throw new UsageError(`${summary} Not revoking without a confirmation, and there is no terminal to ask on: pass --yes to revoke them.`, 'admin');
    }
    io.stderr.write(`${summary}\n`);
    if (!(await confirm(io, 'Revoke them? [y/N] '))) {
      io.stderr.write('Nothing revoked.\n');
      return ExitCode.error;
    }
  }
  const answer = await api.post('/revocations', { by, value }, `Revoking the registrations with ${what}`, { long: true });
  await (json ? printJson(answer) : print(bulkText(answer)));
  return ExitCode.ok;
}

/** Asks on the terminal; yes only for y or yes. Ctrl+C or the end of input is a no. */
function confirm(io: Io, question: string): Promise<boolean> {
  const lines = createInterface({ input: io.stdin, output: io.stderr, terminal: typeof io.stdin.setRawMode === 'function' });
  return new Promise((resolve) => {
    let answered = false;
    const finish = (yes: boolean) => {
      if (answered) return;
      answered = true;
      lines.close();
      resolve(yes);
    };
    lines.on('SIGINT', () => {
      io.stderr.write('\n');
      finish(false);
    });
    lines.on('close', () => finish(false));
    lines.question(question, (answer) => finish(/^y(es)?$/i.test(answer.trim())));
  });
}

function arrayOf(value: unknown): Json[] {
  return Array.isArray(value) ? (value as Json[]) : [];
}

function cursorOf(page: Json): string | undefined {
  return typeof page.next_cursor === 'string' && page.next_cursor ? page.next_cursor : undefined;
}
