import { AuthmdClientError, outcomeUnknown } from './errors.ts';
import type { JsonAnswer } from './http.ts';

/**
 * Sends an ID-JAG registration. An ID-JAG is single-use (the service burns its jti on reading it),
 * so it is never sent twice: when the answer was lost, a fresh one from `mint` is sent once (the
 * service keeps one registration per provider account, so it registers the same one again).
 */
export async function sendIdJagOnce(send: (assertion: string) => Promise<JsonAnswer>, idJag: string, mint: () => Promise<string | undefined>): Promise<JsonAnswer> {
  try {
    return await send(idJag);
  } catch (error) {
    if (!outcomeUnknown(error)) throw error;
    const fresh = await mint();
    if (!fresh || fresh === idJag) {
      throw new AuthmdClientError('network_error', `${error.message} The ID-JAG is single-use, so it is not sent again: mint a fresh ID-JAG and authenticate again.`, error.details);
    }
    return send(fresh);
  }
}
