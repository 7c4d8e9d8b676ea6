import { jwtTypes, parseChallenges } from '@authmd/protocol';
import { expectThat, requireThat, type Check } from '../check.ts';
import { prerequisite, type CheckContext } from '../context.ts';
import type { Discovered } from '../discovery.ts';
import { claimedByReadBack, exchange, expectStatus, registrationOf } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';
import { registerWithIdJag, trustedProvider, trustedProviderAnswer } from '../provider/trusted.ts';
import { envelopeFields, expectEnvelopesAgree, expectFields, identityEndpoint, postClaimScopes, sameScopes, scopeSet, sharedAnonymous, sharedAnonymousAnswer } from './registration-steps.ts';
import { credentialKeys, expectError, expectNoStore, expectRefusal, expectSuccess, keyPaths } from './expect.ts';
import { decodeJwt, typIs } from '../jwt.ts';

const TWO_HOURS_S = 7200;

/** Someone with no account at the service, who never signs in: the address of fresh service_auth registrations. */
const nobody = (ctx: CheckContext): string => ctx.email('nobody');

async function postServiceAuth(ctx: CheckContext, loginHint: string): Promise<Answer> {
  return ctx.http.postJson(await identityEndpoint(ctx), { type: 'service_auth', login_hint: loginHint });
}

async function requireMethod(ctx: CheckContext, method: 'anonymous' | 'service_auth'): Promise<Discovered> {
  const service = await ctx.service();
  await identityEndpoint(ctx);
  requireThat(service.identityTypes.includes(method), `the service does not advertise ${method} registration`);
  return service;
}

/** The test provider once the service has shown it trusts it; skipped (not failed) when that showing failed. */
const provider = (ctx: CheckContext) => prerequisite('a registration with the trusted test provider', () => trustedProvider(ctx)).then((trusted) => trusted.provider);

/** The `iss` the service's own JWTs must carry: the metadata's `issuer`, exactly. */
const issuerOf = (service: Discovered): string => (typeof service.as.issuer === 'string' ? service.as.issuer : service.issuer);

function expectAgentAuthChallenge(answer: Answer, code: string, what: string): void {
  const challenge = answer.headers.get('www-authenticate') ?? '';
  expectThat(
    parseChallenges(challenge).some((c) => c.scheme.toLowerCase() === 'agentauth' && c.params.error === code),
    `${what}: expected WWW-Authenticate: AgentAuth error="${code}", got ${challenge ? `WWW-Authenticate: ${challenge}` : 'no WWW-Authenticate header'}`,
  );
}

export const registrationChecks: Check[] = [
  {
    id: 'registration.anonymous',
    group: 'registration',
    title: 'Anonymous registration answers 200 with every enabled dialect\'s fields, future expiries, and Cache-Control: no-store',
    ref: 'auth.md §2.3; profile §1 (response envelopes are supersets), §2 (responses carrying secrets)',
    async run(ctx) {
      const service = await requireMethod(ctx, 'anonymous');
      // The answer as it came: its shape is what this check judges, before any reader.
      const answer = await sharedAnonymousAnswer(ctx);
      expectStatus(answer, 200, 'anonymous registration');
      expectFields(answer, envelopeFields(service, 'anonymous'), 'anonymous registration');
      expectEnvelopesAgree(answer, service, 'anonymous', 'anonymous registration');
      expectNoStore(answer, 'anonymous registration (it carries an identity assertion and a claim token)');
    },
  },
  {
    id: 'registration.anonymous-assertion',
    group: 'registration',
    title: 'The identity assertion of an anonymous registration is an oauth-id-jag+jwt, asymmetrically signed, naming the issuer and the registration',
    ref: 'auth.md §2.10; RFC 8725 §3.1, §3.11',
    async run(ctx) {
      const service = await ctx.service();
      const registration = await prerequisite('an anonymous registration', () => sharedAnonymous(ctx));
      const jwt = decodeJwt(registration.assertion!);
      expectThat(jwt, `the identity assertion is not a compact JWS with JSON header and payload: ${registration.assertion!.slice(0, 80)}`);
      const { header, payload } = jwt;
      expectThat(typIs(header.typ, jwtTypes.idJag), `the identity assertion's typ: expected "${jwtTypes.idJag}", got ${JSON.stringify(header.typ)}`);
      const alg = typeof header.alg === 'string' ? header.alg : '';
      expectThat(alg !== '' && alg.toLowerCase() !== 'none' && !/^HS/i.test(alg), `the identity assertion's alg: expected an asymmetric algorithm (ES256, RS256…), got ${JSON.stringify(header.alg)}`);
      expectThat(payload.iss === issuerOf(service), `the identity assertion's iss: expected the issuer ${JSON.stringify(issuerOf(service))}, got ${JSON.stringify(payload.iss)}`);
      expectThat(payload.sub === registration.id, `the identity assertion's sub: expected the registration id ${JSON.stringify(registration.id)}, got ${JSON.stringify(payload.sub)}`);
      expectThat(typeof payload.exp === 'number' && payload.exp > Date.now() / 1000, `the identity assertion's exp: expected a time in the future, got ${JSON.stringify(payload.exp)}`);
    },
  },
  {
    id: 'registration.service-auth',
    group: 'registration',
    title: 'service_auth registration answers 200 with a claim ceremony in every enabled dialect, no credential before the claim, and Cache-Control: no-store',
    ref: 'auth.md §2.3, §3 (v0.7 service_auth); profile §1, §2',
    async run(ctx) {
      const service = await requireMethod(ctx, 'service_auth');
      const answer = await postServiceAuth(ctx, nobody(ctx));
      expectSuccess(answer, 'service_auth registration', 200);
      expectFields(answer, envelopeFields(service, 'service_auth'), 'service_auth registration');
      expectEnvelopesAgree(answer, service, 'service_auth', 'service_auth registration');
      const credentials = credentialKeys(answer.json);
      expectThat(credentials.length === 0, `service_auth registration: expected no credential before the person claims it, got ${credentials.join(', ')} (${describeAnswer(answer)})`);
      expectNoStore(answer, 'service_auth registration (it carries a claim token)');
    },
  },
  {
    id: 'registration.invalid-login-hint',
    group: 'registration',
    title: 'service_auth with a login_hint that is not an email address answers 400 invalid_login_hint',
    ref: 'auth.md §2.3, §2.16',
    async run(ctx) {
      await requireMethod(ctx, 'service_auth');
      expectError(await postServiceAuth(ctx, 'not an email'), 'service_auth with login_hint "not an email"', '400 invalid_login_hint');
    },
  },
  {
    id: 'registration.same-shape',
    group: 'registration',
    title: 'service_auth answers an address with an account and one without in the same shape (no account enumeration)',
    ref: 'authmd decisions (service_auth and account existence); auth.md §2.3',
    async run(ctx) {
      await requireMethod(ctx, 'service_auth');
      // The person who claimed a registration has an account; `nobody` never signs in.
      await prerequisite('a claimed registration (so that the person has an account)', () => claimedByReadBack(ctx));
      const unknown = await postServiceAuth(ctx, nobody(ctx));
      const known = await postServiceAuth(ctx, ctx.email());
      expectSuccess(unknown, 'service_auth for an address without an account', 200);
      requireThat(known.status !== 429, `service_auth for the address with an account was rate limited (${describeAnswer(known)}); run again later`);
      expectThat(known.status === unknown.status, `service_auth for an address WITH an account answered ${known.status}, for one without ${unknown.status}: the status tells who has an account (${describeAnswer(known)})`);
      const [knownKeys, unknownKeys] = [keyPaths(known.json), keyPaths(unknown.json)];
      const onlyKnown = knownKeys.filter((key) => !unknownKeys.includes(key));
      const onlyUnknown = unknownKeys.filter((key) => !knownKeys.includes(key));
      expectThat(
        onlyKnown.length === 0 && onlyUnknown.length === 0,
        `service_auth answers differ by whether the address has an account, which tells who has one: only with an account: ${onlyKnown.join(', ') || 'nothing'}; only without: ${onlyUnknown.join(', ') || 'nothing'}`,
      );
    },
  },
  {
    id: 'registration.identity-assertion',
    group: 'registration',
    title: 'A clean ID-JAG from a trusted provider registers at once (200, an identity assertion) and its exchange holds the post-claim scopes',
    ref: 'auth.md §2.3 (identity_assertion, clean match), §2.7; profile §1',
    async run(ctx) {
      const service = await ctx.service();
      // The answer as it came: its shape is what this check judges, before any reader.
      const { answer } = await trustedProviderAnswer(ctx);
      expectFields(answer, envelopeFields(service, 'identity_assertion'), 'identity_assertion registration');
      expectEnvelopesAgree(answer, service, 'identity_assertion', 'identity_assertion registration');
      expectNoStore(answer, 'identity_assertion registration (it carries an identity assertion)');
      const { registration } = await trustedProvider(ctx);
      const tokens = await exchange(ctx, registration.assertion!);
      const expected = postClaimScopes(registration);
      const granted = scopeSet(tokens.scope);
      expectThat(
        granted && sameScopes(granted, expected),
        `the exchange of an identity_assertion registration's assertion: expected the post-claim scope "${expected.join(' ')}", got ${JSON.stringify(tokens.scope)}`,
      );
    },
  },
  {
    id: 'registration.identity-assertion-login-required',
    group: 'registration',
    title: 'An ID-JAG whose auth_time is 2 hours old answers 401 login_required with WWW-Authenticate: AgentAuth and max_age',
    ref: 'auth.md §2.3, §2.12; profile §2 (auth_time)',
    async run(ctx) {
      const service = await ctx.service();
      const trusted = await provider(ctx);
      const stale = await trusted.mintIdJag({ audience: service.issuer, email: ctx.email('provider'), claims: { auth_time: Math.floor(Date.now() / 1000) - TWO_HOURS_S } });
      const answer = await registerWithIdJag(ctx, stale);
      const what = 'an ID-JAG whose auth_time is 2 hours old';
      expectError(answer, what, '401 login_required');
      expectAgentAuthChallenge(answer, 'login_required', what);
      const maxAge = answer.json?.max_age;
      expectThat(typeof maxAge === 'number' && maxAge > 0, `${what}: expected max_age (seconds) in the body, got ${JSON.stringify(maxAge)} (${describeAnswer(answer)})`);
    },
  },
  {
    id: 'registration.identity-assertion-step-up',
    group: 'registration',
    title: 'A first ID-JAG for an address that already has an account answers 401 interaction_required with a claim ceremony, never credentials',
    ref: 'auth.md §2.3 (step-up), §2.12; profile §2 (never a silent link)',
    async run(ctx) {
      const service = await ctx.service();
      const trusted = await provider(ctx);
      await prerequisite('a claimed registration (so that the person has an account)', () => claimedByReadBack(ctx));
      // The person's own address, from a provider account (`sub`) the service has never seen.
      const idJag = await trusted.mintIdJag({ audience: service.issuer, email: ctx.email(), claims: { sub: ctx.unique('step-up') } });
      const answer = await registerWithIdJag(ctx, idJag);
      const what = 'a first ID-JAG for an address that has an account';
      expectError(answer, what, '401 interaction_required');
      expectAgentAuthChallenge(answer, 'interaction_required', what);
      const credentials = credentialKeys(answer.json);
      expectThat(credentials.length === 0, `${what}: expected no credential before the person confirms the link, got ${credentials.join(', ')} (${describeAnswer(answer)})`);
      const ceremony = registrationOf(answer, service);
      const unread = ceremony.ok ? '' : ` (it does not read: ${ceremony.message})`;
      expectThat(ceremony.ok && ceremony.value.claimToken && ceremony.value.verificationUri, `${what}: expected a claim ceremony (a claim token and a verification_uri)${unread}, got ${describeAnswer(answer)}`);
    },
  },
  {
    id: 'registration.method-not-enabled',
    group: 'registration',
    title: 'A registration method the service does not advertise is refused with anonymous_not_enabled / service_auth_not_enabled',
    ref: 'auth.md §2.16, §3 (error names); profile §1 (discovery advertises nothing that is off)',
    async run(ctx) {
      const service = await ctx.service();
      const endpoint = await identityEndpoint(ctx);
      const methods = [
        { method: 'anonymous', body: { type: 'anonymous' }, codes: ['anonymous_not_enabled', 'anonymous_registration_disabled'] },
        { method: 'service_auth', body: { type: 'service_auth', login_hint: nobody(ctx) }, codes: ['service_auth_not_enabled', 'service_auth_registration_disabled'] },
      ].filter(({ method }) => !service.identityTypes.includes(method));
      requireThat(methods.length > 0, 'the service advertises both anonymous and service_auth registration: no method is off to try');
      for (const { method, body, codes } of methods) {
        expectRefusal(await ctx.http.postJson(endpoint, body), codes, `${method} registration, which the metadata does not advertise`);
      }
    },
  },
  {
    id: 'registration.untrusted-issuer',
    group: 'registration',
    title: 'An ID-JAG from an issuer the service does not trust is refused with issuer_not_enabled',
    ref: 'auth.md §2.16, §4.1; profile §2 (error codes)',
    async run(ctx) {
      const service = await ctx.service();
      await identityEndpoint(ctx);
      requireThat(service.identityTypes.includes('identity_assertion'), 'the service does not advertise identity_assertion registration');
      requireThat(ctx.provider, 'the built-in test provider is not running (started without it)');
      const idJag = await ctx.provider.mintIdJag({ audience: service.issuer, email: ctx.email('provider'), claims: { iss: 'https://untrusted.example' } });
      expectRefusal(await registerWithIdJag(ctx, idJag), ['issuer_not_enabled'], 'an ID-JAG whose iss is https://untrusted.example');
    },
  },
];
