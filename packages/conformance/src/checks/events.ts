import { jwtTypes } from '@authmd/protocol';
import { CheckFailed, expectThat, Skipped, type Check } from '../check.ts';
import type { CheckContext } from '../context.ts';
import { callApi, exchange, registrationOf } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';
import { registerWithIdJag } from '../provider/trusted.ts';
import { deliver, eventsSetup, expectNoEffect, expectSetRefused, providerPerson, whatStillWorks, type EventsSetup, type ProviderPerson } from './events-steps.ts';
import { expectInvalidGrant } from './expect.ts';
import { mustDecodeJwt } from '../jwt.ts';

const ANOTHER_SERVICE = 'https://another-service.example';
const UNTRUSTED_PROVIDER = 'https://untrusted-provider.example';

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** RFC 8935 §2.2: the SET was accepted, so its effect must show. */
async function expectRevoked(ctx: CheckContext, person: ProviderPerson, what: string): Promise<void> {
  const after = await whatStillWorks(ctx, person);
  if (after.api.status !== 401) throw new CheckFailed(`${what}: the person's access token must then be refused at the API (401), got ${describeAnswer(after.api)}`);
  expectInvalidGrant(after.exchange, `${what}: the person's identity assertion at the token endpoint`);
}

interface RefusedSet {
  /** What is wrong with it, as the message names it. */
  what: string;
  set: string;
  contentType?: string;
  /** The one RFC 8935 §2.4 code the case calls for, when there is one. */
  err?: string;
}

/**
 * A check that delivers SETs that must be refused: each gets 400 `{err, description}` and leaves the
 * person's token and assertion working. Each check has its own person, so one check's wrong effect
 * cannot spoil another's evidence.
 */
function refusedSetCheck(spec: Omit<Check, 'group' | 'run'> & { sets(setup: EventsSetup, person: ProviderPerson): Promise<RefusedSet[]> }): Check {
  return {
    id: spec.id,
    group: 'events',
    title: spec.title,
    ref: spec.ref,
    async run(ctx) {
      const setup = await eventsSetup(ctx);
      const person = await providerPerson(ctx, setup, spec.id.replace('.', '-'));
      for (const refused of await spec.sets(setup, person)) {
        expectSetRefused(await deliver(ctx, setup, refused.set, refused.contentType), refused.what, refused.err);
        await expectNoEffect(ctx, person, refused.what);
      }
    },
  };
}

/** Fails when the answer is one a transmitter would take for a failed delivery and retry (RFC 8935 §2.3, §2.2). */
function judgeRedelivery(answer: Answer): void {
  if (answer.status >= 200 && answer.status < 300) return;
  const reason = `${answer.json?.err ?? ''} ${answer.json?.description ?? ''} ${answer.json?.error ?? ''}`;
  if (answer.status === 400 && /replay|duplicate|already|jti/i.test(reason)) return;
  throw new CheckFailed(
    `a SET delivered a second time (same jti) must be acknowledged (202) or refused as a duplicate (400 naming the replay), ` +
      `not answered as a failure the provider would retry or report: got ${describeAnswer(answer)}`,
  );
}

export const eventsChecks: Check[] = [
  {
    id: 'events.revocation',
    group: 'events',
    title: "The provider's revocation SET is accepted (202) and ends the person's access token and identity assertion",
    ref: 'RFC 8935 §2.2; profile §2 (provider revocation event); auth.md §2.9',
    async run(ctx) {
      const setup = await eventsSetup(ctx);
      const person = await providerPerson(ctx, setup, 'events-revocation');
      const answer = await deliver(ctx, setup, await setup.provider.signSet({ audience: setup.issuer, email: person.email }));
      expectThat(answer.status === 202, `the provider's revocation SET: expected 202 Accepted (RFC 8935 §2.2), got ${describeAnswer(answer)}`);
      await expectRevoked(ctx, person, 'the revocation SET was accepted');
    },
  },
  {
    id: 'events.duplicate',
    group: 'events',
    title: 'A SET delivered twice (same jti) is acknowledged or refused as a duplicate, and has no second effect',
    ref: 'RFC 8935 §2.2–2.3; RFC 8417 §2.2 (jti); standards A15 (replay)',
    async run(ctx) {
      const setup = await eventsSetup(ctx);
      // Times are spaced so that consent (-10 s), its revocation (-5 s) and consent given again (now) are in order.
      const now = nowSeconds();
      const person = await providerPerson(ctx, setup, 'events-duplicate', { iat: now - 10, auth_time: now - 10 });
      const set = await setup.provider.signSet({ audience: setup.issuer, email: person.email, claims: { iat: now - 5, toe: now - 5 } });
      const first = await deliver(ctx, setup, set);
      if (first.status !== 202) throw new Skipped(`needs the first delivery to be accepted (see events.revocation), got ${describeAnswer(first)}`);
      const afterFirst = await whatStillWorks(ctx, person);
      if (afterFirst.api.status === 200) throw new Skipped('needs the first delivery to take effect (see events.revocation): the access token still works');

      // The person consents again: a later ID-JAG. A second processing of the old SET would end this too.
      const again = await registerWithIdJag(ctx, await setup.provider.mintIdJag({ audience: setup.issuer, email: person.email }));
      const read = again.status === 200 ? registrationOf(again, await ctx.service()) : undefined;
      const revived = read?.ok ? read.value.assertion : undefined;
      const renewed = revived ? await exchange(ctx, revived).catch(() => undefined) : undefined;
      if (!renewed) ctx.note(`events.duplicate: consent given again after the revocation was not honoured (${describeAnswer(again)}); only the answer to the duplicate is judged`);

      judgeRedelivery(await deliver(ctx, setup, set));
      if (renewed) {
        const api = await callApi(ctx, renewed.accessToken);
        expectThat(
          api.status === 200,
          `the duplicate SET had a second effect: the token issued on consent given after the first delivery now gets ${describeAnswer(api)} (RFC 8935: deduplicate by jti)`,
        );
      }
    },
  },
  refusedSetCheck({
    id: 'events.bad-signature',
    title: 'A SET signed with a key the provider does not publish is refused (400 {err, description}) and has no effect',
    ref: 'RFC 8935 §2.2–2.3; RFC 8725 §3.3',
    async sets(setup, person) {
      const published = await setup.provider.signSet({ audience: setup.issuer, email: person.email });
      const publishedKid = mustDecodeJwt(published, 'the SET the test provider signed').header.kid;
      return [
        { what: 'a SET signed by a key that is in no JWKS of the provider', set: await setup.provider.signSet({ audience: setup.issuer, email: person.email, signWith: 'foreign' }) },
        {
          what: "a SET under the provider's published kid but signed by another key",
          set: await setup.provider.signSet({ audience: setup.issuer, email: person.email, signWith: 'foreign', header: { kid: publishedKid } }),
        },
      ];
    },
  }),
  refusedSetCheck({
    id: 'events.wrong-audience',
    title: 'A SET addressed to another service (aud) is refused (400) and has no effect',
    ref: 'RFC 8935 §2.2; RFC 8417 §2.2 (aud); RFC 8725 §3.9',
    async sets(setup, person) {
      return [
        {
          what: `a SET with aud ${ANOTHER_SERVICE}`,
          set: await setup.provider.signSet({ audience: ANOTHER_SERVICE, email: person.email }),
        },
      ];
    },
  }),
  refusedSetCheck({
    id: 'events.untrusted-issuer',
    title: 'A SET from an issuer the service does not trust is refused (400 invalid_issuer) and has no effect',
    ref: 'RFC 8935 §2.2, §2.4 (invalid_issuer)',
    async sets(setup, person) {
      return [
        {
          what: `a SET with iss ${UNTRUSTED_PROVIDER}`,
          set: await setup.provider.signSet({ audience: setup.issuer, email: person.email, claims: { iss: UNTRUSTED_PROVIDER } }),
          err: 'invalid_issuer',
        },
      ];
    },
  }),
  refusedSetCheck({
    id: 'events.content-type',
    title: 'A SET sent as application/json instead of application/secevent+jwt is refused with 400, not a 5xx, and has no effect',
    ref: 'RFC 8935 §2.1–2.3',
    async sets(setup, person) {
      return [
        {
          what: 'a SET sent with Content-Type application/json',
          set: await setup.provider.signSet({ audience: setup.issuer, email: person.email }),
          contentType: 'application/json',
        },
      ];
    },
  }),
  refusedSetCheck({
    id: 'events.wrong-typ',
    title: `A SET typed ${jwtTypes.idJag} (another kind of JWT posted as a SET) is refused (400) and has no effect`,
    ref: 'RFC 8725 §3.11–3.12; RFC 8417 §2.3',
    async sets(setup, person) {
      return [
        {
          what: `a SET with typ ${jwtTypes.idJag}`,
          set: await setup.provider.signSet({ audience: setup.issuer, email: person.email, header: { typ: jwtTypes.idJag } }),
        },
      ];
    },
  }),
];
