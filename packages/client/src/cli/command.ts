import { UsageError, type OptionSpec, type ParsedArgs } from './args.ts';
import type { Io } from './io.ts';

export interface Command {
  name: string;
  summary: string;
  /** The full `authmd <command> --help` text. */
  usage: string;
  options: OptionSpec[];
  /**
   * Looks at the raw arguments before they are parsed, to refuse one with its own reason (a usage
   * error) rather than the parser's "unknown option" or "needs a value".
   */
  screen?(argv: readonly string[]): void;
  /** Resolves to the exit code. */
  run(io: Io, args: ParsedArgs): Promise<number>;
}

/** The one `<url>` argument of a command: absolute http(s). */
export function targetUrl(args: ParsedArgs, command: string): string {
  const [url, ...extra] = args.positionals;
  if (!url) throw new UsageError(`Missing <url>: authmd ${command} <url>.`, command);
  if (extra.length) throw new UsageError(`Unexpected argument "${extra[0]}" (one <url> only).`, command);
  if (!URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol)) {
    throw new UsageError(`"${url}" is not an http(s) URL (for example https://api.example.com).`, command);
  }
  return url;
}

export function noArguments(args: ParsedArgs, command: string): void {
  if (args.positionals.length) throw new UsageError(`Unexpected argument "${args.positionals[0]}".`, command);
}

export const jsonOption: OptionSpec = { name: 'json' };
export const emailOption: OptionSpec = { name: 'email', value: true };
export const noWaitOption: OptionSpec = { name: 'no-wait' };
