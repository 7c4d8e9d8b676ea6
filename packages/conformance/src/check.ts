/**
 * A conformance check: one rule of auth.md (or of the RFC under it) driven over HTTP. A check passes
 * by returning, fails by throwing `CheckFailed` (or any error), and is skipped by throwing `Skipped`
 * with the reason: a service that does not offer a feature skips its checks, never fails them.
 */
import type { CheckContext } from './context.ts';

export type Outcome = 'pass' | 'fail' | 'skip';

export const groups = ['discovery', 'registration', 'token', 'revocation', 'refresh', 'ceremony', 'events', 'bad-input', 'security'] as const;
export type Group = (typeof groups)[number];

export interface Check {
  /** Stable and unique: `<group>.<name>`, what `--only` matches. */
  id: string;
  group: Group;
  /** What is checked, as a sentence a service operator understands. */
  title: string;
  /** The rule it tests: `RFC 9728 §3.3`, `auth.md §2.4`, `profile §1`… */
  ref: string;
  run(ctx: CheckContext): Promise<void>;
}

export interface CheckResult {
  id: string;
  group: Group;
  title: string;
  ref: string;
  outcome: Outcome;
  /** Why it failed or was skipped; what was seen against what was expected. */
  message?: string;
  ms: number;
}

/** The service broke the rule: the message says what was expected and what came instead. */
export class CheckFailed extends Error {
  override readonly name = 'CheckFailed';
}

/** The check does not apply to this service (a feature it does not advertise, a missing prerequisite). */
export class Skipped extends Error {
  override readonly name = 'Skipped';
}

/** Fails the check with `message` unless `condition` holds. */
export function expectThat(condition: unknown, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message);
}

/** Fails unless `actual` equals `expected` (compared as JSON). */
export function expectEqual(actual: unknown, expected: unknown, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new CheckFailed(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** Skips the check with `reason` unless `condition` holds. */
export function requireThat(condition: unknown, reason: string): asserts condition {
  if (!condition) throw new Skipped(reason);
}
