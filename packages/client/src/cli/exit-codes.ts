import { AuthmdClientError } from '../errors.ts';
import { UsageError } from './args.ts';

/** What `authmd` exits with. Scripts switch on these; `--help` and the README list them. */
export const ExitCode = {
  ok: 0,
  /** Anything else that went wrong, including a non-2xx answer to `authmd fetch`. */
  error: 1,
  /** A person must act: approve the agent on the service's page (`--no-wait`, the link expired, re-login needed). */
  needsHuman: 2,
  /** The person denied the agent. */
  denied: 3,
  /** The command was called wrongly (sysexits EX_USAGE). */
  usage: 64,
  /** The service could not be reached or is unavailable (sysexits EX_UNAVAILABLE). */
  unavailable: 69,
  /** Stopped with Ctrl+C while waiting. */
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Protocol codes that mean "a person has to do something before this can work". */
const NEEDS_HUMAN = new Set([
  'claim_required',
  'interaction_required',
  'reauthentication_required',
  'login_required',
  'claim_expired',
  'expired_token',
  'user_code_expired',
  'too_many_attempts',
  'no_pending_claim',
  'human_unavailable',
  // The answer to a claim's completion (or its hand-over) was lost: the person approves once more.
  'claim_answer_lost',
  // The answer to a code was lost before the service completed the claim: the person gives the code again.
  'claim_not_completed',
  // v0.1: a new code was emailed; the registration is already claimed (or its code is on its way).
  'code_resent',
  'claimed_or_in_flight',
  'otp_expired',
  'otp_not_generated',
  'previously_claimed',
]);

const DENIED = new Set(['access_denied', 'claim_denied']);

const UNAVAILABLE = new Set(['network_error', 'server_error', 'temporarily_unavailable', 'service_unavailable']);

export function exitCodeFor(error: unknown): ExitCodeValue {
  if (error instanceof UsageError) return ExitCode.usage;
  if (error instanceof AuthmdClientError) {
    if (error.code === 'aborted') return ExitCode.interrupted;
    if (DENIED.has(error.code)) return ExitCode.denied;
    if (NEEDS_HUMAN.has(error.code)) return ExitCode.needsHuman;
    if (UNAVAILABLE.has(error.code) || (error.status !== undefined && error.status >= 500)) return ExitCode.unavailable;
    return ExitCode.error;
  }
  if (isNetworkFailure(error)) return ExitCode.unavailable;
  return ExitCode.error;
}

/** `fetch` itself failed (connection refused, DNS, TLS, timeout): undici's `TypeError: fetch failed` and friends. */
export function isNetworkFailure(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return true;
  return error instanceof TypeError && error.message === 'fetch failed';
}
