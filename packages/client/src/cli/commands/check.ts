import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  AuthmdPagesHuman,
  catalogue,
  DEFAULT_PROVIDER_PORT,
  formatResult,
  formatSummary,
  Http,
  ManualHuman,
  reportJson,
  runConformance,
  RunOptionsError,
  selectChecks,
  type HumanDriver,
} from '@authmd/conformance';
import { AuthmdClientError } from '../../errors.ts';
import { UsageError, type ParsedArgs } from '../args.ts';
import { jsonOption, targetUrl, type Command } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { write, type Io } from '../io.ts';

export const check: Command = {
  name: 'check',
  summary: 'Check a service against auth.md over HTTP (the conformance suite), one line per check.',
  usage: `Usage: authmd check <base-url> [--api <url>] [--only <group|check>]... [--human authmd|manual]
                    [--provider-port <port> | --no-provider] [--provider-key <file>] [--json] [--list]

Drives the auth.md service at <base-url> through the protocol over HTTP only (discovery, every
registration type, the token endpoint, revocation, refresh, both ceremony directions, provider events,
bad input, attacks) and prints one line per check: PASS, FAIL (with what was wrong) or SKIP (with why),
the rule it tests, and a summary. Features the service does not advertise are skipped, never failed.

A ceremony needs a person. By default authmd plays them on authmd's own pages (sign-in codes, and
v0.1's emailed claim codes, from the service's development mailbox, /dev/mailbox). For any other
service use --human manual: authmd prints what to do in the browser (or which email to read the code
from) and waits for you.

The ID-JAG and SET checks use a test provider that authmd starts on 127.0.0.1 (its issuer and JWKS are
printed at the start). They run when the service trusts that provider, and are skipped otherwise.

Options:
  --api <url>             a URL of the protected API (it answers 401 without a token); default: the
                          resource named by the service's protected resource metadata
  --only <name>           run only this group or check (repeatable, or comma-separated). Groups:
                          discovery, registration, token, revocation, refresh, ceremony, events, bad-input, security
  --human <driver>        who plays the person: authmd (default) or manual
  --provider-port <port>  the test provider's port on 127.0.0.1 (default ${DEFAULT_PROVIDER_PORT}; 0 picks a free one)
  --no-provider           do not start the test provider (its checks are skipped)
  --provider-key <file>   where the test provider keeps its signing key from run to run, so that a
                          service that cached it accepts the next run (default ~/.authmd/check-provider-key.json)
  --json                  print the whole report as one JSON object on stdout
  --list                  list the checks (id, rule, title) and exit
  -h, --help              this help

Exit codes: 0 no check failed, 1 a check failed, 64 usage, 69 the service is unreachable.`,
  options: [
    { name: 'api', value: true },
    { name: 'only', value: true, repeat: true },
    { name: 'human', value: true },
    { name: 'provider-port', value: true },
    { name: 'no-provider' },
    { name: 'provider-key', value: true },
    { name: 'list' },
    jsonOption,
  ],

  async run(io, args) {
    const only = (args.lists.get('only') ?? []).flatMap((entry) => entry.split(',')).map((entry) => entry.trim()).filter(Boolean);
    const checks = selection(only);
    if (args.switches.has('list')) {
      await write(io.stdout, `${checks.map((c) => `${c.id}  ${c.ref}  ${c.title}`).join('\n')}\n`);
      return ExitCode.ok;
    }
    const base = targetUrl(args, 'check');
    const api = args.values.get('api');
    if (api !== undefined && (!URL.canParse(api) || !/^https?:$/.test(new URL(api).protocol))) throw new UsageError(`--api ${api} is not an http(s) URL.`, 'check');
    const providerPort = providerPortFrom(args);
    const json = args.switches.has('json');
    const manual = humanFrom(args) === 'manual';
    await ensureReachable(base);

    const human: HumanDriver = manual ? new ManualHuman({ input: io.stdin, output: io.stderr }) : new AuthmdPagesHuman(base);
    const report = await runConformance({
      base,
      api,
      only,
      human,
      providerPort,
      providerKeyFile: resolve(args.values.get('provider-key') ?? join(homedir(), '.authmd', 'check-provider-key.json')),
      checkTimeoutMs: manual ? 0 : undefined,
      onStart: ({ checks: selected, provider }) => {
        io.stderr.write(`Checking ${base} (${selected.length} checks; the person: ${human.name}).\n`);
        if (provider) {
          io.stderr.write(
            `Test provider: ${provider.issuer} (JWKS ${provider.jwksUri}). For its ID-JAG and SET checks, the service must trust it:\n` +
              `  ${JSON.stringify(provider.trustEntry)}\n`,
          );
        }
      },
      onResult: (result) => {
        if (!json) io.stdout.write(`${formatResult(result)}\n`);
      },
      note: (text) => io.stderr.write(`  … ${text}\n`),
    });
    await write(io.stdout, json ? `${reportJson(report)}\n` : `\n${formatSummary(report)}\n`);
    return report.summary.failed > 0 ? ExitCode.error : ExitCode.ok;
  },
};

function selection(only: string[]) {
  try {
    return selectChecks(catalogue, only);
  } catch (error) {
    if (error instanceof RunOptionsError) throw new UsageError(error.message, 'check');
    throw error;
  }
}

function providerPortFrom(args: ParsedArgs): number | false {
  if (args.switches.has('no-provider')) {
    if (args.values.has('provider-port')) throw new UsageError('--provider-port and --no-provider exclude each other.', 'check');
    return false;
  }
  const raw = args.values.get('provider-port');
  if (raw === undefined) return DEFAULT_PROVIDER_PORT;
  const port = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(port >= 0 && port <= 65_535)) throw new UsageError(`--provider-port ${raw} is not a port (0 to 65535).`, 'check');
  return port;
}

function humanFrom(args: ParsedArgs): 'authmd' | 'manual' {
  const human = args.values.get('human') ?? 'authmd';
  if (human !== 'authmd' && human !== 'manual') throw new UsageError(`--human ${human}: use authmd or manual.`, 'check');
  return human;
}

/** An unreachable service is exit 69 with one line, not a report of 60 failed checks. */
async function ensureReachable(base: string): Promise<void> {
  try {
    await new Http().get(base);
  } catch (error) {
    throw new AuthmdClientError('network_error', (error as Error).message);
  }
}
