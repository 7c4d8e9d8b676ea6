import { ProtocolError } from '@authmd/protocol';
import type { EngineContext } from '../engine/context.ts';
import type { Endpoint, HttpResponse } from '../http/env.ts';
import { escapeHtml, servicePage } from './layout.ts';

/** Pages answer browsers: a refusal becomes an HTML page with the same status, never JSON. */
export function htmlErrors(endpoint: Endpoint): Endpoint {
  return async (request, env) => {
    try {
      return await endpoint(request, env);
    } catch (error) {
      if (!(error instanceof ProtocolError)) {
        env.ctx.logger.error('page failed', { error: error instanceof Error ? error.stack : String(error), path: request.pathname });
        return { ...errorPage(env.ctx, 500, 'Something went wrong', 'An unexpected error occurred. Try again in a moment.'), error: 'server_error' };
      }
      return { ...errorPage(env.ctx, error.status, titleFor(error), error.description, error.headers), error: error.code };
    }
  };
}

/** An HTML error page; `actionHtml` (already escaped) may offer a way out, such as a sign-out form. */
export function errorPage(
  ctx: EngineContext,
  status: number,
  title: string,
  message: string,
  headers: Record<string, string | string[]> = {},
  actionHtml = '',
): HttpResponse {
  return servicePage(ctx, { title, status, body: `<p class="error">${escapeHtml(message)}</p>${actionHtml}`, headers });
}

function titleFor(error: ProtocolError): string {
  switch (error.code) {
    case 'already_claimed':
      return 'Already linked';
    case 'claim_denied':
      return error.status === 403 ? 'Not for this account' : 'Denied';
    case 'claim_expired':
    case 'user_code_expired':
      return 'Link expired';
    case 'not_found':
      return 'Link not valid';
    case 'rate_limit_exceeded':
    case 'too_many_attempts':
      return 'Too many tries';
    default:
      return 'Something is not right';
  }
}

