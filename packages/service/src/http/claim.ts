import { claimCompleteRequest, claimedEnvelope, claimStartedEnvelope, parseClaimRequest, parseWith } from '@authmd/protocol';
import { completeByPageCode, startClaim } from '../engine/claims.ts';
import type { Endpoint } from './env.ts';
import { readJson, valid } from './request.ts';
import { json } from './responses.ts';

/** `POST /agent/identity/claim`: start (or restart) a claim attempt, in any published body form. */
export const postClaim: Endpoint = async (request, { ctx }) => {
  const command = valid(parseClaimRequest(await readJson(request, ctx.config.maxBodyBytes)));
  const outcome = await startClaim(ctx, command);
  if (outcome.kind === 'claimed') {
    return json(claimedEnvelope(outcome.claimed.registration, outcome.claimed.identity, ctx.config.dialects));
  }
  return json(claimStartedEnvelope(outcome.registration, outcome.attempt, ctx.config.dialects, ctx.clock()));
};

/** `POST /agent/identity/claim/complete`: the agent reads back the code the page showed the user. */
export const postClaimComplete: Endpoint = async (request, { ctx }) => {
  const body = valid(parseWith(claimCompleteRequest, await readJson(request, ctx.config.maxBodyBytes)));
  const claimed = await completeByPageCode(ctx, body.claim_token, body.user_code);
  return json(claimedEnvelope(claimed.registration, claimed.identity, ctx.config.dialects));
};
