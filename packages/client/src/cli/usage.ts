import type { Command } from './command.ts';

export function globalUsage(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  return `authmd: let an AI agent register for a service that speaks auth.md, and call its API.

Usage:
  authmd login <url> [--email <email>] [--force] [--no-wait] [--json [--show-token]]
  authmd fetch <url> [-X <method>] [-d <body>] [-H 'Name: value']... [-i] [--email <email>] [--no-wait] [--json]
  authmd status [--json]
  authmd logout <url> [--local] [--json]
  authmd check <base-url> [--api <url>] [--only <group|check>]... [--human authmd|manual] [--json]
  authmd admin list|show|revoke|revoke-all|providers|keys|rotate-key|rate-limits|clear-rate-limits
               [<argument>] [options] [--service <issuer>] [--json]   (the operator's admin API)
  authmd <command> --help
  authmd --version

Commands:
${commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join('\n')}

When a person must approve the agent, authmd prints a link (and a QR code of it) on stderr and waits:
they open it, sign in, and either type the code authmd shows on the page, or type the code the page
shows into authmd. stdout carries only the result (a summary, the response body, JSON).

Environment:
  AUTHMD_STORE_PATH   the credential file (default ~/.authmd/credentials.json)
  AUTHMD_EMAIL        the default for --email
  AUTHMD_ADMIN_URL    the default for admin --service (the service's issuer)
  AUTHMD_ADMIN_TOKEN  the operator token admin sends (or admin --token-file; never on the command line)
  AUTHMD_DEBUG=1      print stack traces with errors
  NO_COLOR            no bold text

Exit codes:
  0    ok
  1    error (for fetch, also an answer that is not 2xx; for check, a failed check; for admin, a refusal)
  2    a person must act: approve the agent (--no-wait), the link expired, or log in again with --email
  3    the person denied the agent
  64   usage error
  69   the service is unreachable or unavailable (network error, 5xx)
  130  stopped with Ctrl+C while waiting`;
}
