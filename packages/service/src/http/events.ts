import { SetDeliveryError } from '@authmd/protocol';
import { LOGOUT_FORMAT, receiveSecurityEvent, SET_FORMAT, type ProviderEventFormat } from '../engine/provider-events.ts';
import type { Endpoint, HttpResponse } from './env.ts';
import { empty, json } from './responses.ts';

/**
 * A provider's signed token POSTed as the whole body with `contentType`, handed to the engine in
 * `format`. Refusals are 400 with RFC 8935's codes, in the body shape of the endpoint's dialect.
 */
function providerTokenEndpoint(options: {
  contentType: string;
  format: ProviderEventFormat;
  answer: (revoked: number) => HttpResponse;
  refusal: (error: SetDeliveryError) => Record<string, unknown>;
}): Endpoint {
  return async (request, { ctx }) => {
    const type = (request.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    try {
      if (type !== options.contentType) {
        throw new SetDeliveryError('invalid_request', `Expected a JWT body with Content-Type ${options.contentType}.`);
      }
      const body = Buffer.from(await request.body(ctx.config.maxBodyBytes)).toString('utf8').trim();
      return options.answer(await receiveSecurityEvent(ctx, body, options.format));
    } catch (error) {
      if (!(error instanceof SetDeliveryError)) throw error;
      if (error.detail) ctx.logger.info('provider token refused', { err: error.err, detail: error.detail });
      return json(options.refusal(error), 400);
    }
  };
}

/** `POST /agent/event/notify` (RFC 8935 push delivery): 202, or 400 `{err, description}`. */
export const postEvent: Endpoint = providerTokenEndpoint({
  contentType: 'application/secevent+jwt',
  format: SET_FORMAT,
  answer: () => empty(202),
  refusal: (error) => error.toBody(),
});

/**
 * `POST /agent/auth/revoke` (v0.1, `application/logout+jwt`): a trusted provider says the user
 * withdrew consent; everything issued under that provider account stops. 200 `{revoked}`, or 400
 * `{error, error_description, message}`.
 */
export const postV01Revoke: Endpoint = providerTokenEndpoint({
  contentType: 'application/logout+jwt',
  format: LOGOUT_FORMAT,
  answer: (revoked) => json({ revoked }),
  refusal: (error) => ({ error: error.err, error_description: error.description, message: error.description }),
});
