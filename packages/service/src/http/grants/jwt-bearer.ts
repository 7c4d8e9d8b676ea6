import { decodeJwt } from '@authmd/core/keys';
import { jwtBearerRequest, parseWith, tokenResponse } from '@authmd/protocol';
import { exchangeIdJag } from '../../engine/agent-verified.ts';
import { exchangeAssertion } from '../../engine/exchange.ts';
import { counted } from '../../metrics.ts';
import type { HttpEnv } from '../env.ts';
import { valid } from '../request.ts';

/**
 * RFC 7523 §2.1: `assertion` is one of this service's identity assertions or, when the operator
 * switched it on (profile.md §4), a trusted provider's ID-JAG. The issuer decides which: our own,
 * or one on the trust list; the two never share keys.
 */
export async function jwtBearerGrant(form: Record<string, string>, { ctx }: HttpEnv): Promise<Record<string, unknown>> {
  const params = valid(parseWith(jwtBearerRequest, form));
  const redeemIdJag = ctx.config.trust.tokenGrant && ctx.trust.get(unverifiedIssuer(params.assertion)) !== undefined;
  const exchanged = redeemIdJag
    ? await counted(ctx.metrics.exchange, 'id_jag', () => exchangeIdJag(ctx, params))
    : await counted(ctx.metrics.exchange, 'jwt_bearer', () => exchangeAssertion(ctx, params));
  return tokenResponse(exchanged);
}

function unverifiedIssuer(token: string): unknown {
  try {
    return decodeJwt(token).payload.iss;
  } catch {
    return undefined; // malformed: the service-assertion path says so
  }
}
