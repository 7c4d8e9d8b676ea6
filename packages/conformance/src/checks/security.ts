import type { JsonWebKey } from 'node:crypto';
import { CheckFailed, expectThat, requireThat, Skipped, type Check } from '../check.ts';
import { prerequisite, type CheckContext } from '../context.ts';
import { claimedByReadBack, completeAnswer, exchange, exchangeAnswer, registerAnonymous, registerServiceAuth, startClaim, type Registration, type Tokens } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';
import { registerWithIdJag, trustedProvider } from '../provider/trusted.ts';
import type { TestProvider } from '../provider/test-provider.ts';
import { runParts } from './parts.ts';
import { expectInvalidGrant, expectRegistrationRefused } from './expect.ts';
import { mustDecodeJwt, hmacSigned, publicKeyAsSecrets, unsigned } from '../jwt.ts';

const ID_JAG_GRANT_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';
const ANOTHER_SERVICE = 'https://another-service.example';
/** profile §3: wrong codes a claim attempt takes before it is closed. */
const WRONG_CODES_ALLOWED = 5;

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** One anonymous registration for the whole group (rate limits). */
function anonymousRegistration(ctx: CheckContext): Promise<Registration> {
  return ctx.once('security.anonymous', () => registerAnonymous(ctx));
}

interface OwnAssertion {
  /** A service-signed identity assertion the token endpoint accepts. */
  assertion: string;
  tokens: Tokens;
}

/**
 * One of the service's own identity assertions, shown to work at the token endpoint, so that a
 * forgery of it that is refused proves the forgery was noticed. Anonymous when offered, else the
 * read-back claim that other groups share.
 */
function ownAssertion(ctx: CheckContext): Promise<OwnAssertion> {
  return ctx.once('security.own-assertion', () =>
    prerequisite("one of the service's own identity assertions, exchanged for an access token", async () => {
      const service = await ctx.service();
      let assertion: string;
      if (service.identityTypes.includes('anonymous')) assertion = (await anonymousRegistration(ctx)).assertion!;
      else if (service.dialects.current && service.endpoints.claim) assertion = (await claimedByReadBack(ctx)).assertion;
      else throw new Skipped('the service advertises neither anonymous registration nor the read-back ceremony, so the suite holds none of its assertions');
      return { assertion, tokens: await exchange(ctx, assertion) };
    }),
  );
}

interface IdJagSetup {
  provider: TestProvider;
  issuer: string;
  /** The person the provider's ID-JAGs are about (the one `trustedProvider` registered). */
  email: string;
}

/** The trusted test provider; the check is skipped, saying how to trust it, when the service does not. */
async function idJagSetup(ctx: CheckContext): Promise<IdJagSetup> {
  const { provider } = await prerequisite('a clean ID-JAG registration from the test provider', () => trustedProvider(ctx));
  return { provider, issuer: (await ctx.service()).issuer, email: ctx.email('provider') };
}

/** Presents each ID-JAG at registration; each must be refused with no credentials. */
async function expectIdJagsRefused(ctx: CheckContext, cases: Array<{ what: string; assertion: string }>): Promise<void> {
  for (const { what, assertion } of cases) expectRegistrationRefused(await registerWithIdJag(ctx, assertion), what);
}

/** Six-digit codes (the code's own length) that are not `code`. */
function wrongCodes(code: string, count: number): string[] {
  if (!/^\d+$/.test(code)) throw new Skipped(`the code the page showed (${code}) is not digits; the suite cannot make wrong ones`);
  const space = 10 ** code.length;
  return Array.from({ length: count }, (_, i) => String((Number(code) + (i + 1) * 111_111) % space).padStart(code.length, '0'));
}

/** The public key(s) that could have signed `token`, from the service's JWKS. */
async function publicKeysFor(ctx: CheckContext, token: string): Promise<JsonWebKey[]> {
  const service = await ctx.service();
  requireThat(service.endpoints.jwks, 'the service advertises no jwks_uri, so the suite does not know its public key');
  const answer = await ctx.http.get(service.endpoints.jwks, { accept: 'application/json' });
  const keys = Array.isArray(answer.json?.keys) ? (answer.json.keys as JsonWebKey[]) : [];
  requireThat(answer.status === 200 && keys.length > 0, `needs the service's JWKS (see discovery), got ${describeAnswer(answer)}`);
  const kid = mustDecodeJwt(token, 'the token to re-sign').header.kid;
  const matching = keys.filter((key) => (key as { kid?: unknown }).kid === kid);
  return matching.length ? matching : keys;
}

const hasNoStore = (answer: Answer): boolean =>
  (answer.headers.get('cache-control') ?? '')
    .toLowerCase()
    .split(',')
    .some((directive) => directive.trim() === 'no-store');

function expectNoStore(answer: Answer, what: string): void {
  if (hasNoStore(answer)) return;
  throw new CheckFailed(`${what} carries a secret but has Cache-Control "${answer.headers.get('cache-control') ?? '(none)'}", not no-store: ${describeAnswer(answer)}`);
}

export const securityChecks: Check[] = [
  {
    id: 'security.code-brute-force',
    group: 'security',
    title: 'After 5 wrong codes at /complete the claim attempt is closed: even the right code is then refused',
    ref: 'profile §3; RFC 8628 §5.1; auth.md §2.17',
    async run(ctx) {
      const service = await ctx.service();
      requireThat(service.dialects.current, 'the service does not advertise the current (read-back) dialect');
      requireThat(service.endpoints.claimComplete, 'the service advertises no claim_endpoint');
      const registration = await prerequisite('a service_auth registration', () => registerServiceAuth(ctx));
      ctx.note(`waiting for the person (${ctx.human.name}) to authorize the agent at ${registration.verificationUri}`);
      const code = await prerequisite('the person authorizing the agent (read-back)', () => ctx.human.readBack(registration.verificationUri!, ctx.email()));
      for (const [index, guess] of wrongCodes(code, WRONG_CODES_ALLOWED).entries()) {
        const answer = await completeAnswer(ctx, registration.claimToken!, guess);
        expectThat(answer.status >= 400 && answer.status < 500, `wrong code ${index + 1} of ${WRONG_CODES_ALLOWED} must be refused with a 4xx, got ${describeAnswer(answer)}`);
      }
      const last = await completeAnswer(ctx, registration.claimToken!, code);
      expectThat(
        last.status >= 400 && last.status < 500,
        `after ${WRONG_CODES_ALLOWED} wrong codes the attempt must be closed, so the right code must be refused too ` +
          `(429 too_many_attempts), got ${describeAnswer(last)}: wrong guesses are not capped`,
      );
    },
  },
  {
    id: 'security.id-jag-replay',
    group: 'security',
    title: 'The same ID-JAG (same jti) presented twice: the second presentation is refused',
    ref: 'profile §2 (jti replay); RFC 7523 §3 item 7; ID-JAG draft (jti)',
    async run(ctx) {
      const { provider, issuer, email } = await idJagSetup(ctx);
      const idJag = await provider.mintIdJag({ audience: issuer, email });
      const first = await registerWithIdJag(ctx, idJag);
      if (first.status !== 200) throw new Skipped(`needs the first presentation of a clean ID-JAG to be accepted, got ${describeAnswer(first)}`);
      expectRegistrationRefused(await registerWithIdJag(ctx, idJag), 'the same ID-JAG presented a second time (a replayed jti)');
    },
  },
  {
    id: 'security.alg-none',
    group: 'security',
    title: "The service's own identity assertion re-encoded with alg none (any spelling) and no signature is refused at the token endpoint",
    ref: 'RFC 8725 §3.1–3.2; RFC 7523 §3.1',
    async run(ctx) {
      const { assertion } = await ownAssertion(ctx);
      for (const alg of ['none', 'None', 'NONE']) {
        expectInvalidGrant(await exchangeAnswer(ctx, unsigned(assertion, alg)), `its identity assertion with alg "${alg}" and no signature`);
      }
    },
  },
  {
    id: 'security.alg-none-id-jag',
    group: 'security',
    title: 'An unsigned ID-JAG (alg none) from the trusted provider is refused at registration, with no credentials',
    ref: 'RFC 8725 §3.1–3.2; auth.md §4',
    async run(ctx) {
      const { provider, issuer, email } = await idJagSetup(ctx);
      await expectIdJagsRefused(ctx, [{ what: 'an ID-JAG with alg none', assertion: await provider.mintIdJag({ audience: issuer, email, header: { alg: 'none' } }) }]);
    },
  },
  {
    id: 'security.key-confusion',
    group: 'security',
    title: "The service's own identity assertion re-signed with HS256 keyed by its public key is refused at the token endpoint",
    ref: 'RFC 8725 §3.1; standards A15 (algorithm confusion)',
    async run(ctx) {
      const { assertion } = await ownAssertion(ctx);
      for (const key of await publicKeysFor(ctx, assertion)) {
        for (const { form, secret } of publicKeyAsSecrets(key)) {
          expectInvalidGrant(await exchangeAnswer(ctx, hmacSigned(assertion, secret)), `its identity assertion re-signed with HS256 keyed by ${form} from its JWKS`);
        }
      }
    },
  },
  {
    id: 'security.key-confusion-id-jag',
    group: 'security',
    title: "An ID-JAG signed with HS256 keyed by the provider's public key is refused at registration, with no credentials",
    ref: 'RFC 8725 §3.1; auth.md §4',
    async run(ctx) {
      const { provider, issuer, email } = await idJagSetup(ctx);
      await expectIdJagsRefused(ctx, [
        { what: "an ID-JAG signed with HS256 keyed by the provider's public JWK", assertion: await provider.mintIdJag({ audience: issuer, email, header: { alg: 'HS256' } }) },
      ]);
    },
  },
  {
    id: 'security.token-type-confusion',
    group: 'security',
    title: "Tokens of one kind are refused where another is expected: an access token as a jwt-bearer assertion; the service's own assertion as an ID-JAG",
    ref: 'RFC 8725 §3.11–3.12; RFC 7523 §3.1',
    async run(ctx) {
      const own = await ownAssertion(ctx);
      await runParts(ctx, 'security.token-type-confusion', {
        'access token as assertion': async () => {
          expectInvalidGrant(await exchangeAnswer(ctx, own.tokens.accessToken), 'an access token presented as a jwt-bearer assertion');
        },
        'own assertion as ID-JAG': async () => {
          requireThat((await ctx.service()).identityTypes.includes('identity_assertion'), 'the service does not advertise identity_assertion registration');
          // The service is not its own agent provider: its issuer is on no trust list of its own.
          expectRegistrationRefused(await registerWithIdJag(ctx, own.assertion), "the service's own identity assertion presented as a provider ID-JAG");
        },
      });
    },
  },
  {
    id: 'security.token-type-confusion-id-jag',
    group: 'security',
    title: "A provider's ID-JAG is refused at the token endpoint (unless the ID-JAG grant profile is advertised), and a SET is refused as an ID-JAG",
    ref: 'RFC 8725 §3.11–3.12; RFC 8417 §4.5; auth.md §2.7; profile §4',
    async run(ctx) {
      const { provider, issuer, email } = await idJagSetup(ctx);
      const service = await ctx.service();
      await runParts(ctx, 'security.token-type-confusion-id-jag', {
        'ID-JAG at the token endpoint': async () => {
          const profiles = Array.isArray(service.as.authorization_grant_profiles_supported) ? (service.as.authorization_grant_profiles_supported as unknown[]) : [];
          requireThat(!profiles.includes(ID_JAG_GRANT_PROFILE), `the service advertises ${ID_JAG_GRANT_PROFILE}, so redeeming an ID-JAG at its token endpoint is allowed`);
          const idJag = await provider.mintIdJag({ audience: issuer, email });
          expectInvalidGrant(await exchangeAnswer(ctx, idJag), "a provider's ID-JAG presented at the token endpoint, where only the service's own assertions belong");
        },
        'SET as ID-JAG': async () => {
          const now = nowSeconds();
          // Every ID-JAG claim is there; only typ (and the events claim) say it is a SET.
          const claims = { email, email_verified: true, auth_time: now, exp: now + 300, client_id: provider.clientId };
          expectRegistrationRefused(await registerWithIdJag(ctx, await provider.signSet({ audience: issuer, email, claims })), 'a SET (typ secevent+jwt) presented as an ID-JAG');
        },
      });
    },
  },
  {
    id: 'security.id-jag-expired',
    group: 'security',
    title: 'An expired ID-JAG is refused at registration, with no credentials',
    ref: 'RFC 7523 §3 item 4; auth.md §4.1',
    async run(ctx) {
      const { provider, issuer, email } = await idJagSetup(ctx);
      const now = nowSeconds();
      // Ten minutes past its exp, beyond any clock skew; auth_time stays within the usual max_age.
      const claims = { iat: now - 900, auth_time: now - 900, exp: now - 600 };
      await expectIdJagsRefused(ctx, [{ what: 'an ID-JAG that expired ten minutes ago', assertion: await provider.mintIdJag({ audience: issuer, email, claims }) }]);
    },
  },
  {
    id: 'security.id-jag-audience',
    group: 'security',
    title: 'An ID-JAG for another service, or with two audiences, is refused at registration, with no credentials',
    ref: 'profile §2 (ID-JAG aud); RFC 8725 §3.9; RFC 7523 §3 item 3',
    async run(ctx) {
      const { provider, issuer, email } = await idJagSetup(ctx);
      await expectIdJagsRefused(ctx, [
        { what: `an ID-JAG with aud ${ANOTHER_SERVICE}`, assertion: await provider.mintIdJag({ audience: ANOTHER_SERVICE, email }) },
        { what: `an ID-JAG with aud [${issuer}, ${ANOTHER_SERVICE}]`, assertion: await provider.mintIdJag({ audience: issuer, email, claims: { aud: [issuer, ANOTHER_SERVICE] } }) },
      ]);
    },
  },
  {
    id: 'security.id-jag-foreign-key',
    group: 'security',
    title: "An ID-JAG signed by a key not in the provider's JWKS is refused at registration, with no credentials",
    ref: 'RFC 8725 §3.8; RFC 7523 §3 item 9; auth.md §4.1',
    async run(ctx) {
      const { provider, issuer, email } = await idJagSetup(ctx);
      const publishedKid = mustDecodeJwt(await provider.mintIdJag({ audience: issuer, email }), 'the ID-JAG the test provider minted').header.kid;
      await expectIdJagsRefused(ctx, [
        { what: 'an ID-JAG signed by a key in no JWKS of the provider', assertion: await provider.mintIdJag({ audience: issuer, email, signWith: 'foreign' }) },
        {
          what: "an ID-JAG under the provider's published kid but signed by another key",
          assertion: await provider.mintIdJag({ audience: issuer, email, signWith: 'foreign', header: { kid: publishedKid } }),
        },
      ]);
    },
  },
  {
    id: 'security.secrets-no-store',
    group: 'security',
    title: 'The /complete response and a claim start (an identity assertion and refresh token; a claim link) carry Cache-Control: no-store',
    // Registration, token and refresh responses are checked by registration.*, token.no-store and refresh.no-store.
    ref: 'profile §2 (responses carrying secrets); RFC 6749 §5.1',
    async run(ctx) {
      const service = await ctx.service();
      await runParts(ctx, 'security.secrets-no-store', {
        '/complete': async () => {
          requireThat(service.dialects.current && service.endpoints.claim, 'the service does not advertise the read-back ceremony');
          const claimed = await prerequisite('a registration claimed by read-back', () => claimedByReadBack(ctx));
          expectNoStore(claimed.completion, 'the /complete response');
        },
        'claim start': async () => {
          requireThat(service.endpoints.claim, 'the service advertises no claim_endpoint');
          requireThat(service.identityTypes.includes('anonymous'), 'the service does not advertise anonymous registration, whose claim the suite starts');
          const { claimToken } = await prerequisite('an anonymous registration', () => anonymousRegistration(ctx));
          const started = await prerequisite('a claim started on an anonymous registration', () => startClaim(ctx, claimToken!));
          expectNoStore(started.answer, 'the claim start response');
        },
      });
    },
  },
];
