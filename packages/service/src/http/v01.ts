import {
  parseV01Claim,
  parseV01Complete,
  parseV01Registration,
  v01ClaimedEnvelope,
  v01ClaimStartedEnvelope,
  v01RegistrationEnvelope,
} from '@authmd/protocol';
import { completeV01Claim, startV01Claim } from '../engine/v01-claim.ts';
import { registerV01 } from '../engine/v01-registration.ts';
import { counted } from '../metrics.ts';
import type { Endpoint } from './env.ts';
import { readJson, valid } from './request.ts';
import { json } from './responses.ts';

/** The v0.1 endpoints (`/agent/auth*`, protocol-reference §7): the same engine, refusals in v0.1's names. */
function speakingV01(endpoint: Endpoint): Endpoint {
  return Object.assign(endpoint, { errorDialect: 'v0.1' as const });
}

/** `POST /agent/auth`: register, and get the credential (or the claim handle) in the answer. */
export const postV01Register: Endpoint = speakingV01(async (request, { ctx }) => {
  const command = valid(parseV01Registration(await readJson(request, ctx.config.maxBodyBytes)));
  const registered = await counted(ctx.metrics.registration, `v0.1_${command.method}` as const, () => registerV01(ctx, command, request.clientIp));
  return json(v01RegistrationEnvelope(registered));
});

/** `POST /agent/auth/claim {claim_token, email}`: the person at that address is emailed a code. */
export const postV01Claim: Endpoint = speakingV01(async (request, { ctx }) => {
  const body = valid(parseV01Claim(await readJson(request, ctx.config.maxBodyBytes)));
  const started = await startV01Claim(ctx, body.claim_token, body.email, request.clientIp);
  return json(v01ClaimStartedEnvelope(started.registrationId, started.attempt));
});

/** `POST /agent/auth/claim/complete {claim_token, otp}`: the code the person read to the agent. */
export const postV01Complete: Endpoint = speakingV01(async (request, { ctx }) => {
  const body = valid(parseV01Complete(await readJson(request, ctx.config.maxBodyBytes)));
  const claimed = await completeV01Claim(ctx, body.claim_token, body.otp);
  return json(v01ClaimedEnvelope(claimed.registrationId, claimed.outcome));
});
