import { parseIdentityRequest, refreshEnvelope, registrationEnvelope, type IdentityRequest } from '@authmd/protocol';
import { registerWithIdJag } from '../engine/agent-verified.ts';
import { refresh } from '../engine/refresh.ts';
import { registerAnonymous, registerServiceAuth } from '../engine/registrations.ts';
import type { EngineContext } from '../engine/context.ts';
import { counted } from '../metrics.ts';
import type { Endpoint, HttpRequest, HttpResponse } from './env.ts';
import { readJson, valid } from './request.ts';
import { json } from './responses.ts';

/**
 * `POST /agent/identity`: register (anonymous, service_auth, identity_assertion) or refresh, counted
 * once settled: by method, or, for a refresh, as an exchange.
 */
export const postIdentity: Endpoint = async (request, { ctx }) => {
  const body = await readJson(request, ctx.config.maxBodyBytes);
  const command = valid(parseIdentityRequest(body));
  if (command.type === 'refresh') return counted(ctx.metrics.exchange, 'refresh', () => answer(ctx, request, command));
  return counted(ctx.metrics.registration, command.type, () => answer(ctx, request, command));
};

async function answer(ctx: EngineContext, request: HttpRequest, command: IdentityRequest): Promise<HttpResponse> {
  const { dialects } = ctx.config;
  switch (command.type) {
    case 'anonymous':
      return json(registrationEnvelope(await registerAnonymous(ctx, { clientIp: request.clientIp }), dialects, ctx.clock()));
    case 'service_auth': {
      const registration = await registerServiceAuth(ctx, { loginHint: command.login_hint, clientIp: request.clientIp });
      return json(registrationEnvelope(registration, dialects, ctx.clock()));
    }
    case 'identity_assertion': {
      const registration = await registerWithIdJag(ctx, { assertion: command.assertion, clientIp: request.clientIp });
      return json(registrationEnvelope(registration, dialects, ctx.clock()));
    }
    case 'refresh': {
      const refreshed = await refresh(ctx, command.refresh_token);
      return json(refreshEnvelope(refreshed.registrationId, refreshed.identity));
    }
  }
}
