import type { ClaimRequiredResult, Handoff } from './types.ts';

export function claimRequiredResult(handoff: Handoff): ClaimRequiredResult {
  return {
    status: 'claim_required',
    registration_id: handoff.registrationId,
    verification_uri: handoff.verificationUri,
    attempt_expires_at: handoff.expiresAt,
    ...(handoff.userCode ? { user_code: handoff.userCode } : {}),
    instructions: instructionsFor(handoff),
    handoff,
  };
}

export function instructionsFor(handoff: Handoff): string {
  if (handoff.emailedTo) {
    return [
      `The service emailed a 6-digit code to ${handoff.emailedTo}.`,
      'Ask the user to read that code from the email and give it to the agent, which completes the claim with it.',
      `The code works until about ${handoff.expiresAt}.`,
    ].join(' ');
  }
  const steps = [`Ask the user to open ${handoff.verificationUri} and sign in.`];
  if (handoff.userCode) steps.push(`If the page asks for a code, they type ${handoff.userCode}; the agent then finishes by itself.`);
  if (handoff.readBack) steps.push('If the page shows a code after they press Authorize, they give that code to the agent, which completes the claim with it.');
  steps.push(`The link works until ${handoff.expiresAt}.`);
  return steps.join(' ');
}
