import { AuthmdClientError } from '../errors.ts';
import { parseArgs, UsageError, type ParsedArgs } from './args.ts';
import type { Command } from './command.ts';
import { admin } from './commands/admin.ts';
import { check } from './commands/check.ts';
import { fetchCommand } from './commands/fetch.ts';
import { login } from './commands/login.ts';
import { logout } from './commands/logout.ts';
import { status } from './commands/status.ts';
import { ExitCode, exitCodeFor } from './exit-codes.ts';
import { debugging, write, type Io } from './io.ts';
import { globalUsage } from './usage.ts';
import { version } from './version.ts';

export const commands: readonly Command[] = [login, fetchCommand, status, logout, check, admin];

/** Runs `authmd <argv…>` and resolves to the exit code; never throws. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.stderr.write(`${globalUsage(commands)}\n`);
    return ExitCode.usage;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    const named = rest[0] === undefined ? undefined : commands.find((command) => command.name === rest[0]);
    if (rest[0] !== undefined && !named) return report(new UsageError(`Unknown command "${rest[0]}".`), io, false);
    await write(io.stdout, `${named ? named.usage : globalUsage(commands)}\n`);
    return ExitCode.ok;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    await write(io.stdout, `authmd ${version()}\n`);
    return ExitCode.ok;
  }
  const command = commands.find((candidate) => candidate.name === first);
  if (!command) {
    return report(new UsageError(first.startsWith('-') ? `Unknown option ${first}.` : `Unknown command "${first}".`), io, false);
  }

  let args: ParsedArgs | undefined;
  try {
    command.screen?.(rest);
    args = parseArgs(rest, [...command.options, { name: 'help', short: 'h' }], command.name);
    if (args.switches.has('help')) {
      await write(io.stdout, `${command.usage}\n`);
      return ExitCode.ok;
    }
    return await command.run(io, args);
  } catch (error) {
    return report(error, io, args?.switches.has('json') === true);
  }
}

/** One line on stderr (a stack trace only with AUTHMD_DEBUG=1); with --json, also an error object on stdout. */
async function report(error: unknown, io: Io, json: boolean): Promise<number> {
  const code = exitCodeFor(error);
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ');
  const usage = error instanceof UsageError ? ` See 'authmd ${error.command ? `${error.command} ` : ''}--help'.` : '';
  io.stderr.write(`${io.stderr.isTTY ? '\r\x1b[2K' : ''}authmd: ${message}${usage}\n`);
  if (debugging(io.env) && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
  if (json) {
    const name = error instanceof AuthmdClientError ? error.code : error instanceof UsageError ? 'usage' : 'error';
    await write(io.stdout, `${JSON.stringify({ status: 'error', error: name, message, exit_code: code })}\n`);
  }
  return code;
}
