import { jwtBearerRequest, parseWith, tokenResponse } from '@authmd/protocol';
import { exchangeAssertion } from '../../engine/exchange.ts';
import type { HttpEnv } from '../env.ts';
import { valid } from '../request.ts';

/** RFC 7523 §2.1: `assertion` is one of this service's identity assertions. */
export async function jwtBearerGrant(form: Record<string, string>, { ctx }: HttpEnv): Promise<Record<string, unknown>> {
  const params = valid(parseWith(jwtBearerRequest, form));
  return tokenResponse(await exchangeAssertion(ctx, params));
}
