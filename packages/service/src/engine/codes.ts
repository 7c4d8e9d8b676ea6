import { constantTimeEqual, keyedDigest, randomDigits } from '../secrets.ts';
import type { EngineContext } from './context.ts';

/**
 * Six-digit one-time codes. Stored as an HMAC under the service secret, bound to what they are for
 * and to the attempt they belong to, so a database dump does not reveal them (a plain hash of six
 * digits would be reversed in a second) and a code of one attempt means nothing for another.
 */
export type CodePurpose = 'agent-code' | 'page-code' | 'email-code' | 'sign-in';

export function newCode(ctx: EngineContext): string {
  return randomDigits(ctx.random, 6);
}

export function codeDigest(ctx: EngineContext, purpose: CodePurpose, subject: string, code: string): string {
  return keyedDigest(ctx.secret, purpose, subject, code);
}

export function codeMatches(ctx: EngineContext, purpose: CodePurpose, subject: string, code: string, digest: string | null): boolean {
  return digest !== null && constantTimeEqual(codeDigest(ctx, purpose, subject, code), digest);
}
