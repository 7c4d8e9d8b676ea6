import { jsonOption, noArguments, type Command } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { write } from '../io.ts';
import { recordJson, recordText } from '../render.ts';
import { Session } from '../session.ts';

export const status: Command = {
  name: 'status',
  summary: 'List the stored registrations (no secrets).',
  usage: `Usage: authmd status [--json]

Lists the registrations in the credential store ($AUTHMD_STORE_PATH, default ~/.authmd/credentials.json):
per service, the registration and its type, whether a person claimed it, the dialect it was made in
and the kind of credential it holds, and when the identity assertion, the refresh token and the access
token (or the v0.1 API key or access token) expire. Never prints a secret.

Options:
  --json      print {"store": path, "registrations": [...]} as one JSON object
  -h, --help  this help`,
  options: [jsonOption],

  async run(io, args) {
    noArguments(args, 'status');
    const session = new Session(io, { email: undefined, waiting: false, rerun: '' });
    const records = await session.client.status();
    const issuers = Object.keys(records).sort();
    if (args.switches.has('json')) {
      const registrations = issuers.map((issuer) => recordJson(issuer, records[issuer]!));
      await write(io.stdout, `${JSON.stringify({ store: session.store.path, registrations })}\n`);
      return ExitCode.ok;
    }
    if (!issuers.length) {
      await write(io.stdout, `No registrations stored (${session.store.path}).\n`);
      return ExitCode.ok;
    }
    const now = Date.now();
    await write(io.stdout, `Stored in ${session.store.path}:\n\n${issuers.map((issuer) => recordText(issuer, records[issuer]!, now)).join('\n\n')}\n`);
    return ExitCode.ok;
  },
};
