import { grantTypes, protocolError, type Dialect } from '@authmd/protocol';
import type { Endpoint, HttpEnv } from './env.ts';
import { claimGrant } from './grants/claim.ts';
import { jwtBearerGrant } from './grants/jwt-bearer.ts';
import { readForm } from './request.ts';
import { json } from './responses.ts';

type Grant = (form: Record<string, string>, env: HttpEnv) => Promise<Record<string, unknown>>;

/** The grants this service answers: jwt-bearer always, the claim grant while v0.7 is spoken. */
function supportedGrants(dialects: readonly Dialect[]): Record<string, Grant> {
  return {
    [grantTypes.jwtBearer]: jwtBearerGrant,
    ...(dialects.includes('v0.7') ? { [grantTypes.claim]: claimGrant } : {}),
  };
}

/** `POST /oauth2/token`: parse the form, refuse ambiguous client authentication, dispatch on `grant_type`. */
export function tokenEndpoint(dialects: readonly Dialect[]): Endpoint {
  const grants = supportedGrants(dialects);
  return async (request, env) => {
    const form = await readForm(request, env.ctx.config.maxBodyBytes);
    if (request.header('authorization') !== undefined && form.client_assertion !== undefined) {
      throw protocolError('invalid_request', 'Use one client authentication method, not both an Authorization header and client_assertion.');
    }
    const grantType = form.grant_type;
    if (grantType === undefined) throw protocolError('invalid_request', 'grant_type: is required.');
    const grant = Object.hasOwn(grants, grantType) ? grants[grantType] : undefined;
    if (!grant) throw protocolError('unsupported_grant_type', `grant_type ${grantType} is not supported here.`);
    return json(await grant(form, env));
  };
}
