import { parseWith, revocationRequest } from '@authmd/protocol';
import { revokeToken } from '../engine/revocation.ts';
import type { Endpoint } from './env.ts';
import { readForm, valid } from './request.ts';
import { empty } from './responses.ts';

/** `POST /oauth2/revoke` (RFC 7009): 200 whether or not the token was known; the hint is ignored. */
export const postRevoke: Endpoint = async (request, { ctx }) => {
  const form = await readForm(request, ctx.config.maxBodyBytes);
  const { token } = valid(parseWith(revocationRequest, form));
  await revokeToken(ctx, token);
  return empty(200);
};
