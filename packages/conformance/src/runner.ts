import { CheckFailed, groups, Skipped, type Check, type CheckResult } from './check.ts';
import { catalogue } from './checks/index.ts';
import { CheckContext } from './context.ts';
import { Http, type FetchLike } from './http.ts';
import { AuthmdPagesHuman } from './human/authmd-pages.ts';
import type { HumanDriver } from './human/driver.ts';
import { startTestProvider, type TestProvider } from './provider/test-provider.ts';

export const DEFAULT_PROVIDER_PORT = 8790;
export const DEFAULT_CHECK_TIMEOUT_MS = 60_000;

export interface RunOptions {
  /** The service's base URL. */
  base: string;
  /** A URL of the protected API (answers 401 without a token). Default: the metadata's `resource`. */
  api?: string;
  /** Check ids, id prefixes or group names; default every check. */
  only?: string[];
  /** Who plays the person in ceremonies. Default: the driver of authmd's own pages. */
  human?: HumanDriver;
  /** Where the test provider listens on 127.0.0.1 (0: any free port); `false`: do not start it. Default 8790. */
  providerPort?: number | false;
  /** Where the test provider keeps its signing key from run to run; default: a new key each run. */
  providerKeyFile?: string;
  /** A test provider that is already running (the caller closes it); `providerPort` is then unused. */
  provider?: TestProvider;
  /** Per check; 0 for none (a person is in the loop). Default 60 s. */
  checkTimeoutMs?: number;
  fetch?: FetchLike;
  checks?: readonly Check[];
  /** Before the first check: what will run, and the test provider to trust. */
  onStart?(info: { checks: readonly Check[]; provider: TestProvider | undefined }): void;
  onResult?(result: CheckResult): void;
  /** What the suite is waiting for (a person, a delivery). */
  note?(text: string): void;
}

export interface Report {
  base: string;
  provider: { issuer: string; jwksUri: string } | undefined;
  results: CheckResult[];
  summary: { total: number; passed: number; failed: number; skipped: number; ms: number };
}

/** A mistake in what was asked for (an unknown `--only` name): not a check failure. */
export class RunOptionsError extends Error {
  override readonly name = 'RunOptionsError';
}

/** The checks `only` names, in catalogue order; an entry that names nothing is an error. */
export function selectChecks(checks: readonly Check[], only: readonly string[] | undefined): Check[] {
  if (!only?.length) return [...checks];
  const matches = (check: Check, entry: string) => check.id === entry || check.group === entry || check.id.startsWith(`${entry}.`);
  for (const entry of only) {
    if (!checks.some((check) => matches(check, entry))) {
      throw new RunOptionsError(`--only ${entry} names no check. Groups: ${groups.join(', ')}; or a check id such as ${checks[0]?.id ?? 'discovery.prm'}.`);
    }
  }
  return checks.filter((check) => only.some((entry) => matches(check, entry)));
}

/** Runs the checks one after another against the service and reports each as it ends. */
export async function runConformance(options: RunOptions): Promise<Report> {
  const checks = selectChecks(options.checks ?? catalogue, options.only);
  const ownProvider = options.provider === undefined && options.providerPort !== false;
  const port = options.providerPort === undefined || options.providerPort === false ? DEFAULT_PROVIDER_PORT : options.providerPort;
  const provider = options.provider ?? (ownProvider ? await startTestProvider({ port, keyFile: options.providerKeyFile }) : undefined);
  const human = options.human ?? new AuthmdPagesHuman(options.base, options.fetch);
  const ctx = new CheckContext({ base: options.base, api: options.api, http: new Http(options.fetch), human, provider, note: options.note });
  const timeoutMs = options.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const started = Date.now();
  const results: CheckResult[] = [];
  try {
    options.onStart?.({ checks, provider });
    for (const check of checks) {
      const result = await runOne(check, ctx, timeoutMs);
      results.push(result);
      options.onResult?.(result);
    }
  } finally {
    await human.close?.();
    if (ownProvider) await provider?.close();
  }
  const count = (outcome: CheckResult['outcome']) => results.filter((result) => result.outcome === outcome).length;
  return {
    base: ctx.base,
    provider: provider && { issuer: provider.issuer, jwksUri: provider.jwksUri },
    results,
    summary: { total: results.length, passed: count('pass'), failed: count('fail'), skipped: count('skip'), ms: Date.now() - started },
  };
}

async function runOne(check: Check, ctx: CheckContext, timeoutMs: number): Promise<CheckResult> {
  const started = Date.now();
  const base = { id: check.id, group: check.group, title: check.title, ref: check.ref };
  let timer: NodeJS.Timeout | undefined;
  try {
    const limit = new Promise<never>((_, reject) => {
      if (timeoutMs > 0) timer = setTimeout(() => reject(new CheckFailed(`no outcome within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    await Promise.race([check.run(ctx), limit]);
    return { ...base, outcome: 'pass', ms: Date.now() - started };
  } catch (error) {
    const outcome = error instanceof Skipped ? 'skip' : 'fail';
    const message = error instanceof CheckFailed || error instanceof Skipped ? error.message : `the check itself crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    return { ...base, outcome, message, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}
