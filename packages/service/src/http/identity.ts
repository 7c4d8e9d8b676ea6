import { parseIdentityRequest, protocolError, registrationEnvelope } from '@authmd/protocol';
import { registerAnonymous } from '../engine/registrations.ts';
import type { Endpoint } from './env.ts';
import { readJson, valid } from './request.ts';
import { json } from './responses.ts';

/** `POST /agent/identity`: register (anonymous, service_auth, identity_assertion) or refresh. */
export const postIdentity: Endpoint = async (request, { ctx }) => {
  const body = await readJson(request, ctx.config.maxBodyBytes);
  const command = valid(parseIdentityRequest(body));
  switch (command.type) {
    case 'anonymous': {
      const registration = await registerAnonymous(ctx, { clientIp: request.clientIp });
      return json(registrationEnvelope(registration, ctx.config.dialects, ctx.clock()));
    }
    case 'service_auth':
      throw protocolError('service_auth_not_enabled', 'Registration by email is not offered by this service.');
    case 'identity_assertion':
      throw protocolError('issuer_not_enabled', 'This service trusts no ID-JAG issuer.');
    case 'refresh':
      throw protocolError('invalid_refresh_token', 'The refresh token is invalid, expired, or already used.');
  }
};
