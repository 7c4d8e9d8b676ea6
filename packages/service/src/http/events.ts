import { SetDeliveryError } from '@authmd/protocol';
import { receiveSecurityEvent } from '../engine/provider-events.ts';
import type { Endpoint } from './env.ts';
import { empty, json } from './responses.ts';

/** `POST /agent/event/notify` (RFC 8935 push delivery): 202, or 400 `{err, description}`. */
export const postEvent: Endpoint = async (request, { ctx }) => {
  const type = (request.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  try {
    if (type !== 'application/secevent+jwt') {
      throw new SetDeliveryError('invalid_request', 'Expected a JWT body with Content-Type application/secevent+jwt.');
    }
    const body = Buffer.from(await request.body(ctx.config.maxBodyBytes)).toString('utf8').trim();
    await receiveSecurityEvent(ctx, body);
    return empty(202);
  } catch (error) {
    if (!(error instanceof SetDeliveryError)) throw error;
    if (error.detail) ctx.logger.info('security event refused', { err: error.err, detail: error.detail });
    return json(error.toBody(), 400);
  }
};
