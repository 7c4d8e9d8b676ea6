/**
 * A small argv parser (no framework): `--name value`, `--name=value`, `-X value`, `-XPOST`, repeatable
 * options, boolean switches, `--` to end the options. Anything it does not know is a usage error.
 */

export interface OptionSpec {
  /** The long name, without dashes: `email` for `--email`. */
  name: string;
  /** One letter, without the dash: `X` for `-X`. */
  short?: string;
  /** Takes a value (else it is a switch). */
  value?: boolean;
  /** May be given more than once; the values are collected in order. */
  repeat?: boolean;
}

export interface ParsedArgs {
  positionals: string[];
  /** Switches that were given. */
  switches: Set<string>;
  /** The last value of each single-valued option. */
  values: Map<string, string>;
  /** Every value of each repeatable option. */
  lists: Map<string, string[]>;
}

/** A mistake in how the command was called: exit code 64. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    /** The command whose usage to point at, if known. */
    readonly command?: string,
  ) {
    super(message);
  }
}

export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[], command?: string): ParsedArgs {
  const parsed: ParsedArgs = { positionals: [], switches: new Set(), values: new Map(), lists: new Map() };
  const byLong = new Map(specs.map((spec) => [spec.name, spec]));
  const byShort = new Map(specs.filter((spec) => spec.short).map((spec) => [spec.short!, spec]));

  const take = (spec: OptionSpec, given: string, inline: string | undefined, index: number): number => {
    if (!spec.value) {
      if (inline !== undefined) throw new UsageError(`${given} does not take a value.`, command);
      parsed.switches.add(spec.name);
      return index;
    }
    let value = inline;
    let next = index;
    if (value === undefined) {
      if (index + 1 >= argv.length) throw new UsageError(`${given} needs a value.`, command);
      next = index + 1;
      value = argv[next]!;
    }
    if (spec.repeat) parsed.lists.set(spec.name, [...(parsed.lists.get(spec.name) ?? []), value]);
    else parsed.values.set(spec.name, value);
    return next;
  };

  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--') {
      parsed.positionals.push(...argv.slice(index + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`Unknown option --${name}.`, command);
      index = take(spec, `--${name}`, eq === -1 ? undefined : arg.slice(eq + 1), index);
    } else if (arg.startsWith('-') && arg.length > 1) {
      const letter = arg[1]!;
      const spec = byShort.get(letter);
      if (!spec) throw new UsageError(`Unknown option -${letter}.`, command);
      const rest = arg.slice(2);
      if (!spec.value && rest) throw new UsageError(`Unknown option ${arg} (options are not combined; write them separately).`, command);
      index = take(spec, `-${letter}`, rest || undefined, index);
    } else {
      parsed.positionals.push(arg);
    }
  }
  return parsed;
}
