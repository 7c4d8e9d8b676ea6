import type { CheckResult } from './check.ts';
import type { Report } from './runner.ts';

const LABEL = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' } as const;

/** `PASS  discovery.prm-resource  The metadata names … (RFC 9728 §3.3)`, and the reason on the next line. */
export function formatResult(result: CheckResult): string {
  const line = `${LABEL[result.outcome]}  ${result.id}  ${result.title} (${result.ref})`;
  return result.message ? `${line}\n      ${result.message.replace(/\n/g, '\n      ')}` : line;
}

export function formatSummary(report: Report): string {
  const { total, passed, failed, skipped, ms } = report.summary;
  return `${total} check${total === 1 ? '' : 's'} against ${report.base}: ${passed} passed, ${failed} failed, ${skipped} skipped (${(ms / 1000).toFixed(1)} s)`;
}

/** What `--json` prints: the whole report, one object. */
export function reportJson(report: Report): string {
  return JSON.stringify(report);
}
