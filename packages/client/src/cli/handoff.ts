import QRCode from 'qrcode';
import type { Handoff } from '../types.ts';
import { styler, when } from './format.ts';

export interface HandoffView {
  /** The process stays to finish the claim (else `--no-wait`: it exits right after). */
  waiting: boolean;
  /** A new link replacing an expired one. */
  renewed?: boolean;
  /** How to run this again, for the `--no-wait` note. */
  rerun?: string;
}

/**
 * The hand-off as a person reads it on a terminal: the link, a QR code of it (for a phone), and what
 * to do with codes, for whichever directions the service offers.
 */
export async function renderHandoff(handoff: Handoff, view: HandoffView, stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): Promise<string> {
  if (handoff.emailedTo) return renderEmailedCode(handoff, handoff.emailedTo, view, stream, env);
  const { bold } = styler(stream, env);
  const qr = await QRCode.toString(handoff.verificationUri, { type: 'terminal', small: true });
  const lines = [
    '',
    view.renewed
      ? `The previous link expired; here is a new one for ${handoff.issuer}.`
      : `A person needs to approve this agent at ${handoff.issuer}.`,
    '',
    'Open this link and sign in:',
    `  ${bold(handoff.verificationUri)}`,
    '',
    ...qr.split('\n').filter((line) => visible(line) !== '').map((line) => `  ${line}`),
    '',
  ];
  if (view.waiting) {
    if (handoff.userCode) {
      lines.push(`- If the page asks for a code, type this code on the page: ${bold(handoff.userCode)}`, '  (authmd notices by itself once you have.)');
    }
    if (handoff.readBack) lines.push('- If the page shows you a code after you press Authorize, type it here and press Enter.');
    lines.push('', `The link works until ${when(handoff.expiresAt)}. Press Ctrl+C to stop waiting.`, '');
  } else {
    lines.push(
      'Not waiting (--no-wait): this process exits now, and only the process that started a claim can finish',
      'it (claim tokens are kept in memory only). To approve the agent, run this on a terminal and follow the',
      `link it shows: ${view.rerun ?? 'the same command without --no-wait'}`,
      '',
    );
  }
  return lines.join('\n');
}

/** v0.1: no page for the agent to show; the code is in an email the service sent the person. */
function renderEmailedCode(handoff: Handoff, to: string, view: HandoffView, stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): string {
  const { bold } = styler(stream, env);
  const lines = [
    '',
    view.renewed ? `${handoff.issuer} emailed a new code to ${bold(to)}.` : `A person needs to approve this agent at ${handoff.issuer}: it emailed a 6-digit code to ${bold(to)}.`,
    '',
  ];
  if (view.waiting) {
    lines.push('- Open that email and type the code it contains here, then press Enter.', '', `The code works until about ${when(handoff.expiresAt)}. Press Ctrl+C to stop waiting.`, '');
  } else {
    lines.push(
      'Not waiting (--no-wait): this process exits now, and only the process that started a claim can finish',
      `it (claim tokens are kept in memory only). To approve the agent, run ${view.rerun ?? 'the same command without --no-wait'}`,
      'on a terminal and type the code from the email it sends.',
      '',
    );
  }
  return lines.join('\n');
}

/** A line without its ANSI colour codes. */
const visible = (line: string) => line.replace(/\x1b\[[0-9;]*m/g, '').trim();
