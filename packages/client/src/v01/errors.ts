import { AuthmdClientError, fromServiceError } from '../errors.ts';
import { refusalOf } from '../read-answer.ts';

/**
 * A refusal of `POST claim_uri/complete` in this client's terms: the codes the CLI and the MCP server
 * already act on (`invalid_user_code`: ask for the code again), with a message saying what to do.
 */
export function completionError(status: number, body: unknown, emailedTo: string | undefined): AuthmdClientError {
  const refusal = refusalOf(body);
  const inbox = emailedTo ? `the latest email to ${emailedTo}` : 'the latest claim email';
  if (refusal?.error === 'otp_invalid') {
    const tries = refusal.extra.tries_left;
    const left = typeof tries === 'number' ? ` (${tries} ${tries === 1 ? 'try' : 'tries'} left)` : '';
    return new AuthmdClientError('invalid_user_code', `That is not the code in ${inbox}${left}. Check the code in the email and give it again.`, { status, body });
  }
  return fromServiceError(status, body, 'Completing the claim');
}

/** The refusals after which only a new code helps: the service emails one when the claim is started again. */
export const NEEDS_NEW_CODE = new Set(['otp_expired', 'otp_not_generated', 'too_many_attempts']);
