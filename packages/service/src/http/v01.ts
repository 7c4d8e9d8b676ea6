import {
  parseV01Claim,
  parseV01Complete,
  parseV01Registration,
  ProtocolError,
  SetDeliveryError,
  v01ClaimedEnvelope,
  v01ClaimStartedEnvelope,
  v01RegistrationEnvelope,
} from '@authmd/protocol';
import { LOGOUT_FORMAT, receiveSecurityEvent } from '../engine/provider-events.ts';
import { completeV01Claim, startV01Claim } from '../engine/v01-claim.ts';
import { registerV01 } from '../engine/v01-registration.ts';
import type { Endpoint } from './env.ts';
import { readJson, valid } from './request.ts';
import { errorResponse, json } from './responses.ts';

/** The v0.1 endpoints (`/agent/auth*`, protocol-reference §7): v0.1's error names, the same engine. */
function speakingV01(endpoint: Endpoint): Endpoint {
  return async (request, env) => {
    try {
      return await endpoint(request, env);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      if (error.detail) env.ctx.logger.info('request refused', { code: error.code, reason: error.reason, detail: error.detail });
      return errorResponse(error, 'v0.1');
    }
  };
}

/** `POST /agent/auth`: register, and get the credential (or the claim handle) in the answer. */
export const postV01Register: Endpoint = speakingV01(async (request, { ctx }) => {
  const command = valid(parseV01Registration(await readJson(request, ctx.config.maxBodyBytes)));
  return json(v01RegistrationEnvelope(await registerV01(ctx, command, request.clientIp)));
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

/**
 * `POST /agent/auth/revoke` (`application/logout+jwt`): a trusted provider says the user withdrew
 * consent; everything issued under that provider account stops. 200 `{revoked}`, or 400 `{error, message}`.
 */
export const postV01Revoke: Endpoint = async (request, { ctx }) => {
  const type = (request.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  try {
    if (type !== 'application/logout+jwt') throw new SetDeliveryError('invalid_request', 'Expected a JWT body with Content-Type application/logout+jwt.');
    const body = Buffer.from(await request.body(ctx.config.maxBodyBytes)).toString('utf8').trim();
    if (!body) throw new SetDeliveryError('invalid_request', 'The body is empty; send the logout token.');
    return json({ revoked: await receiveSecurityEvent(ctx, body, LOGOUT_FORMAT) });
  } catch (error) {
    if (!(error instanceof SetDeliveryError)) throw error;
    if (error.detail) ctx.logger.info('logout token refused', { err: error.err, detail: error.detail });
    return json({ error: error.err, error_description: error.description, message: error.description }, 400);
  }
};
