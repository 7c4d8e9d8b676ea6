import { readRefreshEnvelope } from '@authmd/protocol';
import { CheckFailed, expectThat, requireThat, type Check } from '../check.ts';
import { prerequisite, type CheckContext } from '../context.ts';
import { callApi, type Claimed, claimedByReadBack, exchange, exchangeAnswer, readOrFail, refreshAnswer } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';
import { expectError } from './expect.ts';

/**
 * Refresh tokens (current dialect): `{type:"refresh"}` at the identity endpoint rotates them. These
 * checks spend and destroy what they use, so none touches the run's shared claimed registration:
 * - the "chain" registration is rotated once (`firstRotation`); rotate, no-store and old-assertion only
 *   read that rotation, and reuse, which kills the whole family, comes after them in this array (the
 *   runner keeps catalogue order, with or without `--only`);
 * - revoke needs a family of its own, since a reuse or a revocation ends a family.
 */

/** Refused refresh tokens: the auth.md code, or RFC 6749's. */
const REFUSED = ['400 invalid_refresh_token', '400 invalid_grant'];

interface Family {
  claimed: Claimed;
  refreshToken: string;
}

interface Rotation {
  before: Family;
  answer: Answer;
}

interface Rotated {
  assertion: string;
  refreshToken: string;
}

async function refreshService(ctx: CheckContext): Promise<void> {
  const service = await ctx.service();
  requireThat(service.dialects.current, 'the service does not advertise the current dialect, the only one with refresh tokens');
}

/** A claimed registration with its refresh token, for `purpose` only. */
function family(ctx: CheckContext, purpose: 'chain' | 'revoke'): Promise<Family> {
  return prerequisite('a registration claimed by read-back, with a refresh token', async () => {
    const claimed = await claimedByReadBack(ctx, `refresh-${purpose}`);
    if (!claimed.refreshToken) throw new CheckFailed(`the read-back completion carried no identity.refresh_token: ${describeAnswer(claimed.completion)}`);
    return { claimed, refreshToken: claimed.refreshToken };
  });
}

/** The chain's one rotation, shared by the checks that look at it; its answer as it came. */
function firstRotation(ctx: CheckContext): Promise<Rotation> {
  return ctx.once('refresh:first-rotation', async () => {
    const before = await family(ctx, 'chain');
    return { before, answer: await refreshAnswer(ctx, before.refreshToken) };
  });
}

/** What a successful rotation must give: a new assertion and a NEW refresh token. */
function rotated(rotation: Rotation): Rotated {
  const { answer, before } = rotation;
  expectThat(answer.status === 200, `refreshing: expected 200 with a new assertion and refresh token, got ${describeAnswer(answer)}`);
  const { identity } = readOrFail(readRefreshEnvelope(answer.json), answer, 'refreshing');
  const refreshToken = identity.refreshToken?.value;
  expectThat(refreshToken !== undefined, `refreshing: no identity.refresh_token.value in ${describeAnswer(answer)} (refresh tokens rotate on every use)`);
  expectThat(refreshToken !== before.refreshToken, 'refreshing returned the same refresh token it was given; it must rotate: a new token on every use (profile §2)');
  return { assertion: identity.assertion, refreshToken };
}

/** For the checks whose subject is not the rotation itself. */
function aRotation(ctx: CheckContext): Promise<Rotated & { rotation: Rotation }> {
  return prerequisite('a refresh-token rotation', async () => {
    const rotation = await firstRotation(ctx);
    return { ...rotated(rotation), rotation };
  });
}

export const refreshChecks: Check[] = [
  {
    id: 'refresh.rotate',
    group: 'refresh',
    title: '{type:"refresh"} → 200 with a new identity assertion and a new refresh token (a different value); the new assertion exchanges',
    ref: 'auth.md §2.3 refresh, §2.11 (protocol-reference); profile §2 (rotate on every use)',
    async run(ctx) {
      await refreshService(ctx);
      await family(ctx, 'chain');
      const next = rotated(await firstRotation(ctx));
      await exchange(ctx, next.assertion);
    },
  },
  {
    id: 'refresh.no-store',
    group: 'refresh',
    title: 'Refresh responses, which carry an assertion and a refresh token, carry Cache-Control: no-store',
    ref: 'profile §2 (responses carrying secrets); RFC 6749 §5.1',
    async run(ctx) {
      await refreshService(ctx);
      const { rotation } = await aRotation(ctx);
      const cacheControl = rotation.answer.headers.get('cache-control') ?? '';
      const directives = cacheControl.split(',').map((directive) => directive.trim().toLowerCase());
      expectThat(directives.includes('no-store'), `the refresh response should carry Cache-Control: no-store, got ${cacheControl ? `Cache-Control: ${cacheControl}` : 'no Cache-Control'}`);
    },
  },
  {
    id: 'refresh.old-assertion',
    group: 'refresh',
    title: 'After a rotation, the identity assertion from before it is refused at the token endpoint (invalid_grant)',
    ref: 'profile §2 (assertion generations: refreshing makes every older assertion useless)',
    async run(ctx) {
      await refreshService(ctx);
      const { rotation } = await aRotation(ctx);
      const answer = await exchangeAnswer(ctx, rotation.before.claimed.assertion);
      expectError(answer, 'exchanging the assertion from before the rotation', '400 invalid_grant');
    },
  },
  {
    id: 'refresh.reuse',
    group: 'refresh',
    title: 'Reusing a spent refresh token is refused, and kills the family: the token the rotation issued and the access tokens of the registration stop working',
    ref: 'profile §2 (reuse revokes the whole family and the registration\'s tokens); RFC 9700 §4.14.2',
    async run(ctx) {
      await refreshService(ctx);
      const { rotation, refreshToken, assertion } = await aRotation(ctx);
      const tokens = await prerequisite('an exchange of the rotated assertion', () => exchange(ctx, assertion));
      const before = await callApi(ctx, tokens.accessToken);
      requireThat(before.status !== 401, `the protected API refuses a fresh access token, so its revocation cannot be observed: ${describeAnswer(before)}`);

      const reuse = await refreshAnswer(ctx, rotation.before.refreshToken);
      expectError(reuse, 'reusing the spent refresh token', ...REFUSED);
      const successor = await refreshAnswer(ctx, refreshToken);
      expectError(successor, 'after the reuse, the refresh token the rotation issued (the family must die)', ...REFUSED);
      const after = await callApi(ctx, tokens.accessToken);
      expectThat(after.status === 401, `after the reuse, the registration's access tokens should be refused (401), got ${describeAnswer(after)}`);
    },
  },
  {
    id: 'refresh.revoke',
    group: 'refresh',
    title: 'Revoking a refresh token (RFC 7009, token_type_hint=refresh_token) → 200, and refreshing with it then fails',
    ref: 'RFC 7009 §2 (refresh tokens MUST be revocable), §2.2',
    async run(ctx) {
      await refreshService(ctx);
      const service = await ctx.service();
      requireThat(service.endpoints.revocation, 'the service advertises no revocation_endpoint');
      const { refreshToken } = await family(ctx, 'revoke');
      const revoked = await ctx.http.postForm(service.endpoints.revocation, { token: refreshToken, token_type_hint: 'refresh_token' });
      expectThat(revoked.status === 200, `revoking the refresh token: expected 200, got ${describeAnswer(revoked)}`);
      const answer = await refreshAnswer(ctx, refreshToken);
      expectError(answer, 'refreshing with the revoked refresh token', ...REFUSED);
    },
  },
];
