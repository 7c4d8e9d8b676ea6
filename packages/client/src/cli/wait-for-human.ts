import { AuthmdClientError } from '../errors.ts';
import type { ClaimRequiredResult, ReadyResult } from '../types.ts';
import { readCodes, type CodeInput } from './code-input.ts';
import { Progress } from './progress.ts';
import type { Session } from './session.ts';

export interface WaitOptions {
  /** stdin is taken (e.g. `fetch -d @-`): no read-back codes from it. */
  stdinBusy?: boolean;
}

/**
 * Waits for the person to approve the agent, whichever way finishes first: the type-in direction
 * (they type the agent's code on the page; the client polls the token endpoint until it is done) and
 * the read-back direction (the page shows them a code; they type it here and the client completes
 * the claim with it). Ctrl+C stops, as does a denial or the end of the link's life.
 */
export function waitForHuman(session: Session, target: string, claim: ClaimRequiredResult, options: WaitOptions = {}): Promise<ReadyResult> {
  const { client, io } = session;
  const handoff = claim.handoff;
  const controller = new AbortController();
  const progress = new Progress(io.stderr, 'Waiting for the approval');
  let input: CodeInput | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let checking = false;

  return new Promise<ReadyResult>((resolve, reject) => {
    let settled = false;
    const finish = (error: unknown, result?: ReadyResult) => {
      if (settled) return;
      settled = true;
      controller.abort();
      session.wakeAll();
      input?.stop();
      if (deadline) clearTimeout(deadline);
      process.off('SIGINT', interrupt);
      process.off('SIGTERM', interrupt);
      progress.stop();
      session.progress = undefined;
      if (error) reject(error);
      else resolve(result!);
    };
    const interrupt = () =>
      finish(new AuthmdClientError('aborted', 'Stopped waiting; the agent was not approved. Run the command again for a new link.'));
    process.on('SIGINT', interrupt);
    process.on('SIGTERM', interrupt);

    session.progress = progress;
    progress.start();

    const polling = handoff.userCode !== undefined;
    if (polling) {
      client
        .waitForClaim(target, {
          signal: controller.signal,
          onPoll: (outcome) => {
            if (outcome === 'slow_down') progress.note('The service asked authmd to check less often.');
          },
        })
        .then((ready) => finish(undefined, ready), finish);
    }

    const reading = handoff.readBack && !options.stdinBusy;
    if (reading) {
      input = readCodes(io.stdin, {
        onCode: (text) => void complete(text),
        onTyping: (text) => progress.setInput(text),
        onInterrupt: interrupt,
        onEnd: () => {
          if (!polling) {
            finish(new AuthmdClientError('human_unavailable', 'stdin ended before a code was typed, so the claim cannot be completed. Run the command on a terminal to type the code the page shows.'));
          }
        },
      });
    }

    if (!polling && !reading) {
      finish(new AuthmdClientError('human_unavailable', 'The service offers no way to finish the claim from here (no code to type on the page, and stdin is not available for the page\'s code).'));
      return;
    }
    // Nothing renews the link in the read-back direction alone: give up when it stops working (a new
    // emailed code, v0.1, moves the deadline to its own expiry).
    const armDeadline = (expiresAt: string) => {
      if (polling) return;
      if (deadline) clearTimeout(deadline);
      const left = Date.parse(expiresAt) - Date.now();
      if (left <= 0) return;
      const what = handoff.emailedTo ? 'code' : 'link';
      deadline = setTimeout(() => finish(new AuthmdClientError('claim_expired', `The ${handoff.emailedTo ? 'emailed code' : 'link'} expired before the claim was finished. Run the command again for a new ${what}.`)), left);
    };
    armDeadline(handoff.expiresAt);

    async function complete(text: string): Promise<void> {
      const code = text.replace(/[\s-]/g, '');
      if (!/^\d{6}$/.test(code)) {
        const where = handoff.emailedTo ? `the code in the email to ${handoff.emailedTo}` : 'the code the page shows after you press Authorize';
        progress.note(`"${text}" is not a six-digit code. Type ${where}.`);
        return;
      }
      if (checking) return;
      checking = true;
      progress.note(`Checking the code ${code}…`);
      try {
        finish(undefined, await client.completeClaim(target, code));
      } catch (error) {
        if (settled) return;
        if (error instanceof AuthmdClientError && error.code === 'invalid_user_code') progress.note(`${error.message} Type the code again.`);
        // v0.1 code_resent: the code expired (or too many were wrong); the client had a new one emailed.
        else if (error instanceof AuthmdClientError && (error.code === 'code_resent' || error.code === 'claim_not_completed')) {
          if (error.code === 'code_resent') armDeadline(client.pendingHandoff(target)?.expiresAt ?? handoff.expiresAt);
          progress.note(`${error.message} Type it and press Enter.`);
        }
        else finish(error);
      } finally {
        checking = false;
      }
    }
  });
}
