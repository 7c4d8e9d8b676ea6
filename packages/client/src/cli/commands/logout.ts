import { withoutTrailingSlash } from '@authmd/protocol';
import { AuthmdClientError } from '../../errors.ts';
import { UsageError } from '../args.ts';
import { jsonOption, targetUrl, type Command } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { write } from '../io.ts';
import { Session } from '../session.ts';

export const logout: Command = {
  name: 'logout',
  summary: "Revoke a service's tokens and forget the registration.",
  usage: `Usage: authmd logout <url> [--local] [--json]

Revokes the access and refresh tokens stored for the service at <url> (RFC 7009) and removes its
registration from the credential store.

Options:
  --local     do not contact the service: only forget the stored registration (its tokens stay valid
              at the service until they expire). For a service that is gone or unreachable
  --json      print {"status": "logged_out" | "not_stored", "issuer": ...} as one JSON object
  -h, --help  this help`,
  options: [{ name: 'local' }, jsonOption],

  async run(io, args) {
    const url = targetUrl(args, 'logout');
    const session = new Session(io, { email: undefined, waiting: false, rerun: '' });
    const local = args.switches.has('local');
    let issuer: string | undefined;
    if (local) {
      issuer = await storedIssuerFor(session, url);
    } else {
      try {
        issuer = (await session.client.discover(url)).issuer;
      } catch (error) {
        if (error instanceof AuthmdClientError && error.code === 'network_error') {
          throw new AuthmdClientError(error.code, `${error.message} To forget the stored credentials without revoking them: authmd logout ${url} --local`);
        }
        throw error;
      }
    }
    const stored = issuer !== undefined && (await session.store.get(issuer)) !== undefined;
    if (stored && local) await session.store.update(issuer!, () => undefined);
    else if (stored) await session.client.logout(url);

    const json = args.switches.has('json');
    const name = issuer ?? withoutTrailingSlash(url);
    if (json) await write(io.stdout, `${JSON.stringify({ status: stored ? 'logged_out' : 'not_stored', issuer: name, revoked: stored && !local })}\n`);
    else if (!stored) await write(io.stdout, `Nothing stored for ${name}.\n`);
    else await write(io.stdout, local ? `Forgot the registration at ${name} (its tokens were not revoked).\n` : `Logged out of ${name}: tokens revoked and forgotten.\n`);
    return ExitCode.ok;
  },
};

/** The stored issuer that `url` names, without asking the service: the issuer itself, or one on its origin. */
async function storedIssuerFor(session: Session, url: string): Promise<string | undefined> {
  const issuers = Object.keys(await session.store.list());
  const wanted = withoutTrailingSlash(url);
  if (issuers.includes(wanted)) return wanted;
  const origin = new URL(url).origin;
  const candidates = issuers.filter((issuer) => URL.canParse(issuer) && new URL(issuer).origin === origin && (wanted === issuer || wanted.startsWith(`${issuer}/`) || issuer === origin));
  const matches = candidates.length ? candidates : issuers.filter((issuer) => URL.canParse(issuer) && new URL(issuer).origin === origin);
  if (matches.length > 1) throw new UsageError(`Several stored registrations are on ${origin} (${matches.join(', ')}); give the issuer exactly.`, 'logout');
  return matches[0];
}
