import { protocolError } from '@authmd/protocol';
import type { EngineContext } from '../engine/context.ts';
import type { HttpRequest } from '../http/env.ts';
import { constantTimeEqual, hashSecret } from '../secrets.ts';
import type { AdminConfig } from './config.ts';

/**
 * The operator an admin API request comes from: its bearer token, compared in constant time with
 * every configured one (no early exit, so timing tells nothing about which came close).
 */
export function apiOperator(ctx: EngineContext, request: HttpRequest): string {
  const admin = ctx.config.admin as AdminConfig;
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(request.header('authorization') ?? '');
  const presented = hashSecret(match?.[1] ?? '');
  let operator: string | undefined;
  for (const candidate of admin.tokens) {
    if (constantTimeEqual(presented, candidate.tokenHash) && match) operator = candidate.operator;
  }
  if (operator !== undefined) return operator;
  throw protocolError('operator_unauthorized', match ? 'This token is not an operator\'s.' : 'The admin API needs an operator token.', {
    headers: { 'WWW-Authenticate': `Bearer realm="${ctx.config.issuer}${admin.path}"` },
    detail: match ? 'admin API call with an unknown token' : 'admin API call without a bearer token',
  });
}
