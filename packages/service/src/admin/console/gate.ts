import { protocolError } from '@authmd/protocol';
import type { EngineContext } from '../../engine/context.ts';
import type { HttpRequest, HttpResponse } from '../../http/env.ts';
import { normalizeEmail } from '../../engine/users.ts';
import { readForm } from '../../http/request.ts';
import { checkCsrf } from '../../pages/csrf.ts';
import { currentUser, signInUrl } from '../../pages/current-user.ts';
import { redirect } from '../../pages/layout.ts';
import type { AdminConfig } from '../config.ts';

/**
 * Who may use the console: a signed-in person (the host's session, or the built-in emailed code)
 * whose email is one of `admin.operators`. Someone signed in with another address is refused,
 * never sent round the sign-in again.
 */

export type Gate = { operator: string } | { response: HttpResponse };

/** For a page: the operator, or a redirect to sign in that comes back to this page. */
export async function operatorForPage(ctx: EngineContext, request: HttpRequest, returnTo: string): Promise<Gate> {
  const user = await currentUser(ctx, request);
  if (!user) return { response: redirect(signInUrl(ctx, returnTo)) };
  return { operator: checkOperator(ctx, user.email) };
}

/** For a form: its fields once the CSRF token and the operator are checked. */
export async function operatorForm(ctx: EngineContext, request: HttpRequest): Promise<{ operator: string; form: Record<string, string> }> {
  const form = await readForm(request, ctx.config.maxBodyBytes);
  checkCsrf(ctx, request, form);
  const user = await currentUser(ctx, request);
  if (!user) throw protocolError('unauthorized', 'Your session has ended. Sign in again and repeat what you were doing.');
  return { operator: checkOperator(ctx, user.email), form };
}

function checkOperator(ctx: EngineContext, email: string | null): string {
  const operators = (ctx.config.admin as AdminConfig).operators;
  if (email && operators.has(normalizeEmail(email))) return email;
  throw protocolError('operator_forbidden', `You are signed in${email ? ` as ${email}` : ''}, which is not an operator of this service. Sign out, then sign in with an operator address.`);
}
