import { afterTest } from '../../../../test-support/after-test.ts';
import { startService, type HarnessOptions, type RunningService } from '../../../service/test/support/harness.ts';

/**
 * The client against the real service speaking v0.1 (issue 12): the service test harness on
 * 127.0.0.1 (API `GET /api/notes` needs notes.read, `POST` notes.write; claim emails at
 * `/dev/mailbox.json`), closed after the test.
 */

export const V01_ONLY = { current: false, 'v0.7': false, 'v0.1': true } as const;

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

/** A service closed after the current test. Its clock is the harness's hand-moved one unless `clock` is given. */
export async function startClosedAfterTest(options: HarnessOptions = {}): Promise<RunningService> {
  const running = await startService(options);
  afterTest(() => running.close());
  return running;
}

/** A service that speaks only v0.1. */
export function startV01Service(options: HarnessOptions = {}): Promise<RunningService> {
  return startClosedAfterTest({ dialects: V01_ONLY, ...options });
}

export { wrongCode } from '../../../service/test/v01/v01.ts';

interface Message {
  to: string;
  subject: string;
  text: string;
}

/**
 * The newest claim email to `to` in the service's development outbox (which lists newest first),
 * with its code and how many claim emails that address got.
 */
export async function claimEmail(base: string, to: string): Promise<{ code: string; count: number }> {
  const { messages } = (await (await fetch(`${base}/dev/mailbox.json`)).json()) as { messages: Message[] };
  const claims = messages.filter((m) => m.to === to && m.subject.includes('let an agent'));
  const code = /read this code to your agent: (\d{6})/.exec(claims[0]?.text ?? '')?.[1];
  if (!code) throw new Error(`no claim email with a code to ${to} in ${JSON.stringify(messages.map((m) => m.to))}`);
  return { code, count: claims.length };
}
