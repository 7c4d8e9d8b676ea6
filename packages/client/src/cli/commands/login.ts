import type { AuthResult, ReadyResult } from '../../types.ts';
import { emailOption, jsonOption, noWaitOption, targetUrl, type Command } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { write, type Io } from '../io.ts';
import { claimJson, readyJson, readySummary } from '../render.ts';
import { emailFrom, Session } from '../session.ts';
import { waitForHuman } from '../wait-for-human.ts';

export const login: Command = {
  name: 'login',
  summary: 'Get credentials for a service; when a person must approve, show the link and wait.',
  usage: `Usage: authmd login <url> [--email <email>] [--force] [--no-wait] [--json [--show-token]]

Gets credentials for the service at <url> (its base URL, issuer, or any URL of its API) and stores them.
Registers with the lightest method available: anonymously without an email; with --email, by email, so
that the person can link the agent to their account. A person's approval is needed then: authmd prints
the link (and a QR code of it) and waits, whichever way the service offers:
  - the page asks for a code: type the code authmd shows on the page; authmd notices by itself;
  - the page shows a code after Authorize: type that code into authmd and press Enter;
  - a service that speaks only auth.md v0.1 emails the person a code: type that code into authmd.

Options:
  --email <email>  the person's email (default: $AUTHMD_EMAIL). With a stored anonymous registration
                   this registers anew by email (its claim token was only held by the process that made it)
  --force          register anew even when credentials are stored
  --no-wait        do not wait for the person: print the hand-off and exit 2
  --json           print one JSON object on stdout (no secrets)
  --show-token     include the access token (with --json; otherwise print it on its own line)
  -h, --help       this help

Exit codes: 0 ready, 1 error, 2 a person must act, 3 denied, 64 usage, 69 unreachable, 130 Ctrl+C.`,
  options: [emailOption, { name: 'force' }, noWaitOption, jsonOption, { name: 'show-token' }],

  async run(io, args) {
    const url = targetUrl(args, 'login');
    const email = emailFrom(args.values.get('email'), io.env);
    const wait = !args.switches.has('no-wait');
    const json = args.switches.has('json');
    const showToken = args.switches.has('show-token');
    const session = new Session(io, { email, waiting: wait, rerun: `authmd login ${url}${email ? ` --email ${email}` : ''}` });
    const { client } = session;

    const service = await client.discover(url);
    const issuer = service.issuer;
    const byEmail = email !== undefined && (service.identityTypes.length === 0 || service.identityTypes.includes('service_auth'));
    if (email && !byEmail) io.stderr.write(`${issuer} does not register by email (it offers ${service.identityTypes.join(', ')}); --email is not used.\n`);

    // A stored anonymous registration cannot be claimed by a new process (its claim token was only in
    // memory): with an email, the client registers anew by email. Not when nobody waits to finish it.
    const stored = await session.store.get(issuer);
    const anonymous = stored?.registration_type === 'anonymous' && !stored.claimed && (stored.identity !== undefined || stored.credential !== undefined);
    if (byEmail && anonymous && !args.switches.has('force')) {
      if (!wait) {
        const kept = await client.authenticate({ url });
        if (kept.status === 'ready' && kept.registration_type === 'anonymous') {
          io.stderr.write(`The stored registration at ${issuer} is anonymous; linking the agent to ${email} needs a person's approval: run without --no-wait.\n`);
          await printReady(io, issuer, kept, { json, showToken });
          return ExitCode.needsHuman;
        }
      } else {
        io.stderr.write(`The stored anonymous registration at ${issuer} cannot be claimed from a new process; registering anew for ${email}.\n`);
      }
    }
    let result: AuthResult = await client.authenticate({ url, email: byEmail ? email : undefined, forceReregister: args.switches.has('force') });

    if (result.status === 'claim_required') {
      if (!wait) {
        if (json) await write(io.stdout, `${JSON.stringify(claimJson(result))}\n`);
        return ExitCode.needsHuman;
      }
      result = await waitForHuman(session, url, result);
      io.stderr.write('Approved.\n');
    }
    await printReady(io, issuer, result, { json, showToken });
    if (!result.claimed && !email && !json) {
      io.stderr.write(`To link this agent to your account: authmd login ${url} --email you@example.com\n`);
    }
    return ExitCode.ok;
  },
};

async function printReady(io: Io, issuer: string, ready: ReadyResult, flags: { json: boolean; showToken: boolean }): Promise<void> {
  if (flags.json) return write(io.stdout, `${JSON.stringify(readyJson(issuer, ready, flags.showToken))}\n`);
  await write(io.stdout, `${readySummary(issuer, ready)}\n${flags.showToken ? `${ready.access_token}\n` : ''}`);
}
