import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { API, SignatureKind, type Checker, type Project, type Type } from 'typescript/unstable/sync';
import { SyntaxKind, type InterfaceDeclaration, type TypeAliasDeclaration } from 'typescript/unstable/ast';
import { KEY_ENCRYPTION_KEY_ENV } from '@authmd/service/keys';
import { resolveConfig, type ServiceConfig } from '../../../packages/service/src/config.ts';
import { resolveOutboxOptions } from '../../../packages/provider/src/outbox.ts';
import { startDemo } from '../src/start.ts';

/**
 * docs/configuration.md must not fall behind the code (issue 14, "Documented defaults"):
 * 1. every option of `createService` (ServiceOptions and the option objects nested in it) and of
 *    `createProvider` (ProviderOptions) has a row in its section, and every row names a real option;
 * 2. every environment variable `npm start` reads (examples/demo/src, and the service and provider it
 *    runs) has a row in the demo section, and every row names a variable that is read;
 * 3. every numeric default the doc states for a service option, and the default and demo columns of
 *    the limit tables, equal what `resolveConfig` (and the running demo) resolve.
 * Each check is also run once on a deliberately outdated input, to show it fails.
 *
 * The option names come from the TypeScript checker, not from reading config.ts as text: the
 * repository's TypeScript 7 (the native port) has no in-process compiler API (`import ts from
 * 'typescript'` is only `{ version }`), but its `typescript/unstable/sync` client runs the bundled
 * tsgo and answers checker queries over a pipe (~1.5 s here). That resolves what a text extractor
 * would have to imitate: `Partial<Record<RateLimitedMethod, …>>`, the MailOptions union, imported
 * interfaces such as KeyEncryptionOptions, arrays of option objects. It is an *unstable* API: if an
 * upgrade changes it, this file fails loudly (the sanity checks below), never silently.
 */

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const DOC_PATH = join(ROOT, 'docs/configuration.md');
const SERVICE_CONFIG = join(ROOT, 'packages/service/src/config.ts');
const PROVIDER_OPTIONS = join(ROOT, 'packages/provider/src/provider.ts');
const TSCONFIG = join(ROOT, 'tsconfig.json');

const SECOND = 1000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Option paths from the type checker

/**
 * Types an operator passes as a whole (an implementation, a function, a handle, prom-client's
 * `Registry`, which the options name `MetricsRegistry`), whose own members are not configuration: the walk stops at them. Functions and
 * index-signature records (`mail.smtp`, nodemailer's options) stop it too, without being listed.
 */
const NOT_OPTION_BAGS = new Set(['Store', 'Logger', 'PinoLikeLogger', 'AuditSink', 'Mailer', 'RandomSource', 'KeyEncryptionKey', 'Fetcher', 'Registry', 'MetricsRegistry']);

/**
 * Every property path of the named interface, recursively: `limits.signInCodesPerHour`,
 * `rateLimits.anonymous.perIp`, `trust.issuers[].displayName` (`[]`: each entry of a list). Members
 * of a union (MailOptions) are merged at the same path; `undefined` is dropped.
 */
function optionPaths(project: Project, file: string, interfaceName: string): string[] {
  const { checker, program } = project;
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`the TypeScript project does not contain ${file}`);
  const declaration = source.statements.find(
    (statement): statement is InterfaceDeclaration | TypeAliasDeclaration =>
      (statement.kind === SyntaxKind.InterfaceDeclaration || statement.kind === SyntaxKind.TypeAliasDeclaration) &&
      (statement as InterfaceDeclaration).name.text === interfaceName,
  );
  if (!declaration) throw new Error(`${relative(ROOT, file)} declares no ${interfaceName}`);
  const symbol = checker.getSymbolAtLocation(declaration.name);
  if (!symbol) throw new Error(`no symbol for ${interfaceName}`);
  const paths = new Set<string>();
  walk(checker, checker.getDeclaredTypeOfSymbol(symbol), '', paths, 0);
  return [...paths];
}

function walk(checker: Checker, given: Type, prefix: string, paths: Set<string>, depth: number): void {
  if (depth > 8) throw new Error(`option types nest deeper than expected at ${prefix}: a recursive type?`);
  const type = checker.getNonNullableType(given) ?? given;
  if (type.isUnionType()) {
    for (const member of type.getTypes()) walk(checker, member, prefix, paths, depth + 1);
    return;
  }
  if (!type.isObjectType()) return;
  if (checker.isArrayType(type) && type.isTypeReference()) {
    const [element] = checker.getTypeArguments(type);
    if (element) walk(checker, element, `${prefix}[]`, paths, depth + 1);
    return;
  }
  const name = (type.getAliasSymbol() ?? type.getSymbol())?.name;
  if (name !== undefined && NOT_OPTION_BAGS.has(name)) return;
  if (checker.getSignaturesOfType(type, SignatureKind.Call).length > 0) return;
  for (const property of checker.getPropertiesOfType(type)) {
    const path = prefix ? `${prefix}.${property.name}` : property.name;
    paths.add(path);
    const propertyType = checker.getTypeOfSymbol(property);
    if (propertyType) walk(checker, propertyType, path, paths, depth + 1);
  }
}

interface Extracted {
  service: string[];
  provider: string[];
}

/** Runs tsgo on the repository's tsconfig; `readFile` may replace a file's text (the self-test). */
function extractOptions(readFile?: (fileName: string) => string | undefined): Extracted {
  const api = new API({ cwd: ROOT, ...(readFile ? { fs: { readFile } } : {}) });
  try {
    const snapshot = api.updateSnapshot({ openProjects: [TSCONFIG] });
    const project = snapshot.getProject(TSCONFIG) ?? snapshot.getProjects()[0];
    if (!project) throw new Error(`tsgo opened no project for ${TSCONFIG}`);
    return {
      service: optionPaths(project, SERVICE_CONFIG, 'ServiceOptions'),
      provider: optionPaths(project, PROVIDER_OPTIONS, 'ProviderOptions'),
    };
  } finally {
    api.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The doc: sections and tables

/** The text under each `## ` heading, up to the next one, by heading. */
function sections(markdown: string): Map<string, string> {
  const result = new Map<string, string>();
  let heading = '';
  let lines: string[] = [];
  for (const line of markdown.split('\n')) {
    if (line.startsWith('## ')) {
      result.set(heading, lines.join('\n'));
      heading = line.slice(3).trim();
      lines = [];
    } else lines.push(line);
  }
  result.set(heading, lines.join('\n'));
  return result;
}

function section(markdown: string, startsWith: string): string {
  const found = [...sections(markdown)].find(([heading]) => heading.startsWith(startsWith));
  if (!found) throw new Error(`docs/configuration.md has no section "## ${startsWith}…"`);
  return found[1];
}

interface Table {
  header: string[];
  rows: string[][];
}

/** The cells of a table row: split at `|` that is not escaped as `\|`. */
function cells(line: string): string[] {
  const parts = line.trim().replace(/^\|/, '').replace(/\|$/, '').split(/(?<!\\)\|/);
  return parts.map((part) => part.trim().replaceAll('\\|', '|'));
}

/** The Markdown tables of a text: a header row, a `|---|` row, then rows. */
function tables(text: string): Table[] {
  const result: Table[] = [];
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.trim().startsWith('|') || !/^\|?\s*:?-{3,}/.test(lines[i + 1]!.trim())) continue;
    const table: Table = { header: cells(lines[i]!), rows: [] };
    for (i += 2; i < lines.length && lines[i]!.trim().startsWith('|'); i++) table.rows.push(cells(lines[i]!));
    result.push(table);
  }
  return result;
}

/** A cell that is exactly one code span (`` `limits.signInCodesPerHour` ``): its content. */
function codeName(cell: string | undefined): string | undefined {
  return /^`([^`]+)`$/.exec(cell ?? '')?.[1];
}

/** The names in the first column of every table of `text`. */
function rowNames(text: string): string[] {
  return tables(text).flatMap((table) => table.rows.map((row) => codeName(row[0])).filter((name) => name !== undefined));
}

/** The number a cell starts with (`` `3600` (1 h) ``, `5`), or undefined when it starts otherwise. */
function leadingNumber(cell: string | undefined): number | undefined {
  const match = /^`?(\d+)\b/.exec(cell ?? '');
  return match ? Number(match[1]) : undefined;
}

/** Per table with the columns `Option` and `column`: option → the number the column starts with. */
function numbersIn(text: string, column: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const table of tables(text)) {
    const optionAt = table.header.indexOf('Option');
    const valueAt = table.header.indexOf(column);
    if (optionAt < 0 || valueAt < 0) continue;
    for (const row of table.rows) {
      const option = codeName(row[optionAt]);
      const value = leadingNumber(row[valueAt]);
      if (option !== undefined && value !== undefined) result.set(option, value);
    }
  }
  return result;
}

/** The options the code has and the doc's rows lack, and the rows that name no option of the code. */
function compareOptions(fromCode: readonly string[], rows: readonly string[]): { undocumented: string[]; unknown: string[] } {
  const documented = new Set(rows);
  const known = new Set(fromCode);
  return { undocumented: fromCode.filter((path) => !documented.has(path)), unknown: rows.filter((row) => !known.has(row)) };
}

// ---------------------------------------------------------------------------------------------
// Environment variables read by the code

const ENV_READ = /\benv(?:\.([A-Z_][A-Z0-9_]*)\b|\[\s*(['"`])([^'"`]+)\2\s*\]|\[\s*([A-Za-z_$][\w$]*)\s*\])/g;
const ENV_DESTRUCTURED = /\}\s*=\s*(?:process\.)?env\b/;

/**
 * The variables a source text reads as `env.X`, `env['X']`, `process.env.X`, or `env[CONSTANT]`
 * where `constants` knows CONSTANT. A read the scan cannot name (another index expression, a
 * destructuring of `env`) is returned as a problem, so that it is never silently missed.
 */
function envReads(file: string, text: string, constants: ReadonlyMap<string, string>): { names: string[]; problems: string[] } {
  const names: string[] = [];
  const problems: string[] = [];
  for (const match of text.matchAll(ENV_READ)) {
    const name = match[1] ?? match[3] ?? constants.get(match[4]!);
    if (name !== undefined) names.push(name);
    else problems.push(`${file}: ${match[0]} (name the variable literally, env.NAME, or as an exported constant)`);
  }
  if (ENV_DESTRUCTURED.test(text)) problems.push(`${file}: destructures env (read each variable as env.NAME)`);
  return { names, problems };
}

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(directory, name));
}

/** Every variable `npm start` reads: the demo's sources, and the service and provider it runs. */
function variablesReadByNpmStart(): { names: Set<string>; problems: string[] } {
  const files = ['examples/demo/src', 'packages/service/src', 'packages/provider/src'].flatMap((dir) => sourceFiles(join(ROOT, dir)));
  const constants = new Map<string, string>([['KEY_ENCRYPTION_KEY_ENV', KEY_ENCRYPTION_KEY_ENV]]);
  const names = new Set<string>();
  const problems: string[] = [];
  for (const file of files) {
    const read = envReads(relative(ROOT, file), readFileSync(file, 'utf8'), constants);
    read.names.forEach((name) => names.add(name));
    problems.push(...read.problems);
  }
  return { names, problems };
}

// ---------------------------------------------------------------------------------------------
// Defaults from the code

/** Every numeric default of ServiceOptions, resolved by `resolveConfig`, in the doc's units (the option's name says which). */
function numericDefaults(config: ServiceConfig): Map<string, number> {
  return new Map<string, number>([
    ...Object.entries(config.rateLimits).flatMap(([method, limit]): [string, number][] => [
      [`rateLimits.${method}.perIp`, limit.perIp],
      [`rateLimits.${method}.perService`, limit.perService],
    ]),
    ...Object.entries(config.limits).map(([name, value]): [string, number] => [`limits.${name}`, value]),
    ['limits.maxBodyBytes', config.maxBodyBytes],
    ['lifetimes.accessTokenSeconds', config.lifetimes.accessTokenMs / SECOND],
    ['lifetimes.assertionSeconds', config.lifetimes.assertionMs / SECOND],
    ['lifetimes.claimWindowSeconds', config.lifetimes.claimWindowMs / SECOND],
    ['lifetimes.attemptSeconds', config.lifetimes.attemptMs / SECOND],
    ['lifetimes.refreshTokenDays', config.lifetimes.refreshTokenMs / DAY],
    ['lifetimes.sessionHours', config.lifetimes.sessionMs / HOUR],
    ['lifetimes.signInCodeSeconds', config.lifetimes.signInCodeMs / SECOND],
    ['trust.maxAuthAgeSeconds', config.trust.maxAuthAgeMs / SECOND],
    ['clockSkewSeconds', config.clockSkewMs / SECOND],
    ['signing.rotateAfterDays', config.signing.rotateAfterMs / DAY],
    ['maintenanceIntervalSeconds', config.maintenanceIntervalMs / SECOND],
    ['tokenCacheSeconds', config.tokenCacheMs / SECOND],
    ['auditRetentionDays', config.auditRetentionMs / DAY],
  ]);
}

/** The options whose values are limits: what the limit tables list, with their values in `config`. */
function limitValues(config: ServiceConfig): Map<string, number> {
  const all = numericDefaults(config);
  return new Map([...all].filter(([option]) => option.startsWith('rateLimits.') || (option.startsWith('limits.') && option !== 'limits.maxBodyBytes')));
}

/** Where the doc's numbers differ from the code's: option, doc, code. */
function mismatches(doc: ReadonlyMap<string, number>, code: ReadonlyMap<string, number>): string[] {
  return [...doc].filter(([option, value]) => code.has(option) && code.get(option) !== value).map(([option, value]) => `${option}: the doc says ${value}, the code ${code.get(option)}`);
}

const MINIMAL = { issuer: 'https://service.example', scopes: { preClaim: [], postClaim: ['notes.read'] } };

// ---------------------------------------------------------------------------------------------

const doc = readFileSync(DOC_PATH, 'utf8');
const serviceSection = section(doc, 'Service options');
const limitsSection = section(doc, 'Rate limits and attempt limits');
const providerSection = section(doc, 'Provider options');
const demoSection = section(doc, 'Demo environment variables');
const DEMO_USES = '### What the demo uses';
if (!demoSection.includes(DEMO_USES)) throw new Error(`docs/configuration.md: the demo section has no "${DEMO_USES}"`);
const demoVariables = demoSection.slice(0, demoSection.indexOf(DEMO_USES));
const demoUses = demoSection.slice(demoSection.indexOf(DEMO_USES));

let extracted: Extracted;
let demoConfig: ServiceConfig;

beforeAll(async () => {
  extracted = extractOptions();
  // The demo as `npm start` configures it, on a memory store (a key given, so it keeps no files).
  const dataDir = mkdtempSync(join(tmpdir(), 'authmd-config-docs-'));
  try {
    const demo = await startDemo({ port: 0, dataDir, store: 'memory', keyEncryptionKey: randomBytes(32).toString('base64url') });
    demoConfig = demo.service.config;
    await demo.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);

describe('docs/configuration.md names every option', () => {
  it('the checker sees the options (a sanity check of the extraction)', () => {
    expect(extracted.service).toEqual(expect.arrayContaining(['issuer', 'scopes.postClaim', 'rateLimits.anonymous.perIp', 'limits.signInCodesPerIpPerHour', 'mail.smtp', 'trust.issuers[].displayName', 'keyEncryption.allowPlaintext']));
    expect(extracted.provider).toEqual(expect.arrayContaining(['issuer', 'store', 'outbox.leaseMs', 'keys.rotateAfterMs']));
    expect(extracted.service).not.toContain('store.migrate'); // an implementation, not options
  });

  it('every ServiceOptions property, nested ones included, has a row under "Service options", and every row is an option', () => {
    expect(compareOptions(extracted.service, rowNames(serviceSection))).toEqual({ undocumented: [], unknown: [] });
  });

  it('every ProviderOptions property has a row under "Provider options", and every row is an option', () => {
    expect(compareOptions(extracted.provider, rowNames(providerSection))).toEqual({ undocumented: [], unknown: [] });
  });

  it('fails when an option is added without documentation (a copy of config.ts with one more, given to the checker)', () => {
    const real = readFileSync(SERVICE_CONFIG, 'utf8');
    const marker = 'export interface ServiceOptions {';
    expect(real).toContain(marker);
    const withNewOption = real.replace(marker, `${marker}\n  undocumentedKnob?: { depth?: number };`);
    const outdated = extractOptions((fileName) => (resolve(fileName) === SERVICE_CONFIG ? withNewOption : undefined));
    const before = new Set(compareOptions(extracted.service, rowNames(serviceSection)).undocumented);
    const after = compareOptions(outdated.service, rowNames(serviceSection)).undocumented;
    expect(after.filter((path) => !before.has(path))).toEqual(['undocumentedKnob', 'undocumentedKnob.depth']);
  }, 60_000);
});

describe('docs/configuration.md names every environment variable npm start reads', () => {
  it('every variable read under examples/demo/src (and by the service and provider it runs) has a row, and every row is read', () => {
    const { names, problems } = variablesReadByNpmStart();
    expect(problems).toEqual([]);
    expect([...names]).toEqual(expect.arrayContaining(['PORT', 'HOST', 'PROVIDER_PORT', 'AUTHMD_DATA_DIR', 'AUTHMD_KEY_ENCRYPTION_KEY', 'NODE_ENV']));
    const rows = rowNames(demoVariables);
    expect({ undocumented: [...names].filter((name) => !rows.includes(name)), unknown: rows.filter((row) => !names.has(row)) }).toEqual({ undocumented: [], unknown: [] });
  });

  it('the scan finds every form of read, and refuses one it cannot name', () => {
    const constants = new Map([['THE_KEY', 'AUTHMD_FROM_CONSTANT']]);
    const text = "env.AUTHMD_A; process.env.PORT; env['AUTHMD_B']; env[\"HOST\"]; env[THE_KEY]; env[name]; const { X } = process.env; env.lowercase;";
    const read = envReads('sample.ts', text, constants);
    expect(read.names).toEqual(['AUTHMD_A', 'PORT', 'AUTHMD_B', 'HOST', 'AUTHMD_FROM_CONSTANT']);
    expect(read.problems).toHaveLength(2);
  });
});

describe('the defaults docs/configuration.md states are the code\'s', () => {
  const defaults = numericDefaults(resolveConfig(MINIMAL));

  it('every numeric default of a service option (rate limits, sign-in code limits, attempt limits, lifetimes, …) equals resolveConfig\'s', () => {
    const documented = numbersIn(serviceSection, 'Default');
    // Both ways: no numeric default the code has is missing, and none the doc states goes unchecked.
    expect([...defaults.keys()].filter((option) => !documented.has(option))).toEqual([]);
    expect([...documented.keys()].filter((option) => !defaults.has(option))).toEqual([]);
    expect(mismatches(documented, defaults)).toEqual([]);
  });

  it('the limit tables list every rate limit and attempt limit, with the defaults and what the demo runs with', () => {
    const limits = limitValues(resolveConfig(MINIMAL));
    const demo = limitValues(demoConfig);
    for (const [text, what] of [
      [limitsSection, 'Rate limits and attempt limits'],
      [demoUses, 'What the demo uses'],
    ] as const) {
      const documentedDefaults = numbersIn(text, 'Default');
      const documentedDemo = numbersIn(text, 'Demo');
      const expected = what === 'What the demo uses' ? [...limits.keys()] : [...limits.keys()].filter((option) => option !== 'limits.pollIntervalSeconds');
      expect({ what, missing: expected.filter((option) => !documentedDefaults.has(option) || !documentedDemo.has(option)) }).toEqual({ what, missing: [] });
      expect({ what, defaults: mismatches(documentedDefaults, limits), demo: mismatches(documentedDemo, demo) }).toEqual({ what, defaults: [], demo: [] });
    }
  });

  it('the rate-limit section says what a refused client gets', () => {
    for (const words of ['429', 'rate_limit_exceeded', 'rate_limited', 'too_many_attempts', 'Retry-After', 'retry_after']) expect(limitsSection).toContain(words);
  });

  it('the provider\'s outbox defaults equal resolveOutboxOptions\'s', () => {
    const outbox = resolveOutboxOptions();
    const code = new Map(Object.entries(outbox).filter((entry): entry is [string, number] => typeof entry[1] === 'number').map(([name, value]) => [`outbox.${name}`, value]));
    const documented = numbersIn(providerSection, 'Default');
    expect([...code.keys()].filter((option) => !documented.has(option))).toEqual([]);
    expect(mismatches(documented, code)).toEqual([]);
  });

  it('a number changed in the doc is caught', () => {
    const outdated = serviceSection.replace('| `limits.signInCodesPerIpPerHour` | number | `20` |', '| `limits.signInCodesPerIpPerHour` | number | `25` |');
    expect(outdated).not.toBe(serviceSection);
    expect(mismatches(numbersIn(outdated, 'Default'), defaults)).toEqual(['limits.signInCodesPerIpPerHour: the doc says 25, the code 20']);
  });
});
