import { bearerChallenge, grantTypes, tokenTypes, withoutTrailingSlash } from '@authmd/protocol';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { CheckFailed, expectThat, requireThat, Skipped, type Check } from '../check.ts';
import { prerequisite, type CheckContext } from '../context.ts';
import { covers, type Discovered } from '../discovery.ts';
import { registerAnonymous } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';


/**
 * Discovery: the 401 challenge, the protected-resource metadata (RFC 9728), the authorization
 * server metadata (RFC 8414) with its `agent_auth` member, the auth.md document it points at, and the
 * service's own key set. These checks use `ctx.discover()`, so that a discovery failure fails them.
 */

/** The registration methods any published dialect names. */
const KNOWN_IDENTITY_TYPES = ['anonymous', 'service_auth', 'identity_assertion', 'refresh'];

/** JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const isObject = (value: unknown): value is Record<string, any> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');
const isHttpUrl = (value: unknown): value is string =>
  typeof value === 'string' && URL.canParse(value) && ['http:', 'https:'].includes(new URL(value).protocol);
const show = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));
const pathOf = (url: string): string => new URL(url).pathname;

/** The media type of an answer, without parameters, lower-case. */
function mediaType(answer: Answer): string {
  return (answer.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Collects every broken rule of one document, so that one run names them all. */
class Problems {
  private readonly found: string[] = [];
  expect(condition: unknown, problem: string): void {
    if (!condition) this.found.push(problem);
  }
  /** Fails with every problem found, prefixed by what was checked. */
  report(what: string): void {
    if (this.found.length) throw new CheckFailed(`${what}: ${this.found.join('; ')}`);
  }
}

/** A member that must be an http(s) URL. */
function expectUrl(problems: Problems, document: Record<string, any>, name: string): void {
  problems.expect(isHttpUrl(document[name]), `${name} must be a URL, got ${show(document[name])}`);
}

async function checkChallenge(ctx: CheckContext): Promise<void> {
  const service = await ctx.discover();
  const api = await ctx.api();
  const answer = await ctx.http.get(api);
  expectThat(answer.status === 401, `the protected API without a token: expected 401, got ${describeAnswer(answer)}`);
  const header = answer.headers.get('www-authenticate');
  expectThat(header, `the 401 from GET ${pathOf(api)} carries no WWW-Authenticate header; expected Bearer resource_metadata="<protected resource metadata URL>"`);
  const params = bearerChallenge(header);
  expectThat(params, `the 401 from GET ${pathOf(api)} has no Bearer challenge: WWW-Authenticate: ${header}`);
  const metadataUrl = params.resource_metadata;
  expectThat(metadataUrl, `the Bearer challenge of GET ${pathOf(api)} has no resource_metadata parameter: WWW-Authenticate: ${header}`);
  expectThat(isHttpUrl(metadataUrl), `resource_metadata is not a URL: ${metadataUrl}`);
  const prm = await ctx.http.get(metadataUrl, { accept: 'application/json' });
  expectThat(
    prm.status === 200 && isObject(prm.json) && typeof prm.json.resource === 'string',
    `resource_metadata ${metadataUrl} does not answer protected resource metadata: ${describeAnswer(prm)}`,
  );
  // RFC 9728 §3.3 asks for the very URL requested; like our client and draft-ietf-oauth-rfc9728bis, a resource that is a path prefix of it on the same origin is accepted.
  expectThat(covers(prm.json.resource, api), `resource_metadata ${metadataUrl} describes resource ${prm.json.resource}, which does not cover ${api}`);
  const servers = Array.isArray(prm.json.authorization_servers) ? prm.json.authorization_servers : [];
  expectThat(
    servers.some((server: unknown) => typeof server === 'string' && withoutTrailingSlash(server) === service.issuer),
    `resource_metadata ${metadataUrl} names authorization_servers ${show(prm.json.authorization_servers)}, not the issuer ${service.issuer} discovered from ${service.prmUrl}`,
  );
}

function checkPrm(service: Discovered): void {
  const { prm, prmAnswer, prmUrl } = service;
  const problems = new Problems();
  problems.expect(mediaType(prmAnswer) === 'application/json', `Content-Type must be application/json, got ${show(prmAnswer.headers.get('content-type') ?? undefined)}`);
  problems.expect(isHttpUrl(prm.resource) && !prm.resource.includes('#'), `resource must be a URL without a fragment, got ${show(prm.resource)}`);
  problems.expect(
    Array.isArray(prm.authorization_servers) && prm.authorization_servers.length > 0 && prm.authorization_servers.every(isHttpUrl),
    `authorization_servers must be a non-empty array of issuer URLs, got ${show(prm.authorization_servers)}`,
  );
  if (prm.bearer_methods_supported !== undefined) {
    problems.expect(
      isStringArray(prm.bearer_methods_supported) && prm.bearer_methods_supported.includes('header'),
      `bearer_methods_supported must include "header" (agents send Authorization: Bearer), got ${show(prm.bearer_methods_supported)}`,
    );
  }
  if (prm.scopes_supported !== undefined) {
    problems.expect(isStringArray(prm.scopes_supported), `scopes_supported must be an array of strings, got ${show(prm.scopes_supported)}`);
  }
  problems.report(`the protected resource metadata at ${prmUrl}`);
}

function checkAsMetadata(service: Discovered): void {
  const { as, asAnswer, asUrl } = service;
  const problems = new Problems();
  problems.expect(mediaType(asAnswer) === 'application/json', `Content-Type must be application/json, got ${show(asAnswer.headers.get('content-type') ?? undefined)}`);
  problems.expect(
    isHttpUrl(as.issuer) && !as.issuer.includes('?') && !as.issuer.includes('#'),
    `issuer must be a URL without query or fragment, got ${show(as.issuer)}`,
  );
  expectUrl(problems, as, 'token_endpoint');
  problems.expect(isStringArray(as.response_types_supported), `response_types_supported is required (an empty array when there is no authorization endpoint), got ${show(as.response_types_supported)}`);
  problems.expect(
    isStringArray(as.grant_types_supported) && as.grant_types_supported.includes(grantTypes.jwtBearer),
    `grant_types_supported must list ${grantTypes.jwtBearer}, got ${show(as.grant_types_supported)}`,
  );
  expectUrl(problems, as, 'revocation_endpoint');
  problems.report(`the authorization server metadata at ${asUrl}`);
}

/** The keys of the `identity_endpoint` dialects (current, and v0.7 which shares them). */
function checkAgentAuth(service: Discovered): void {
  const agentAuth = service.agentAuth;
  const problems = new Problems();
  for (const name of ['skill', 'identity_endpoint', 'claim_endpoint']) expectUrl(problems, agentAuth, name);
  const types = agentAuth.identity_types_supported;
  if (isStringArray(types) && types.length > 0) {
    const unknown = types.filter((type) => !KNOWN_IDENTITY_TYPES.includes(type));
    problems.expect(unknown.length === 0, `identity_types_supported lists ${unknown.map((type) => `"${type}"`).join(', ')}, which no dialect defines (known: ${KNOWN_IDENTITY_TYPES.join(', ')})`);
  } else {
    problems.expect(false, `identity_types_supported must be a non-empty array of strings, got ${show(types)}`);
  }
  if (isStringArray(types) && types.includes('identity_assertion')) {
    const assertionTypes = agentAuth.identity_assertion?.assertion_types_supported;
    problems.expect(
      isStringArray(assertionTypes) && assertionTypes.includes(tokenTypes.idJag),
      `identity_assertion is listed, so identity_assertion.assertion_types_supported must include ${tokenTypes.idJag}, got ${show(assertionTypes)}`,
    );
  }
  if (agentAuth.events_endpoint !== undefined || agentAuth.events_supported !== undefined) {
    expectUrl(problems, agentAuth, 'events_endpoint');
    problems.expect(
      isStringArray(agentAuth.events_supported) && agentAuth.events_supported.length > 0,
      `events_supported must name the event schemas the events endpoint ingests, got ${show(agentAuth.events_supported)}`,
    );
  }
  problems.report(`agent_auth in ${service.asUrl}`);
}

function checkAgentAuthV01(service: Discovered): void {
  const agentAuth = service.agentAuth;
  const problems = new Problems();
  for (const name of ['register_uri', 'claim_uri']) expectUrl(problems, agentAuth, name);
  // revocation_uri is where a trusted provider posts its logout token (protocol-reference §7.4): due when
  // the service takes providers' ID-JAGs, and optional (but a URL when present) when it trusts none.
  const idJag = isStringArray(agentAuth.identity_assertion?.assertion_types_supported) && agentAuth.identity_assertion.assertion_types_supported.includes(tokenTypes.idJag);
  if (idJag) {
    problems.expect(isHttpUrl(agentAuth.revocation_uri), `revocation_uri must be a URL (identity_assertion takes ${tokenTypes.idJag}, so providers need their logout endpoint), got ${show(agentAuth.revocation_uri)}`);
  } else if (agentAuth.revocation_uri !== undefined) {
    expectUrl(problems, agentAuth, 'revocation_uri');
  }
  const types = agentAuth.identity_types_supported;
  problems.expect(isStringArray(types) && types.length > 0, `identity_types_supported must be a non-empty array of strings, got ${show(types)}`);
  // v0.1 registration names the credential it wants, so each method lists the ones it can return.
  for (const method of ['anonymous', 'identity_assertion']) {
    if (!isStringArray(types) || !types.includes(method)) continue;
    const credentialTypes = agentAuth[method]?.credential_types_supported;
    problems.expect(
      isStringArray(credentialTypes) && credentialTypes.length > 0,
      `${method} is listed, so ${method}.credential_types_supported must name its credentials, got ${show(credentialTypes)}`,
    );
  }
  problems.report(`the v0.1 keys of agent_auth in ${service.asUrl}`);
}

/** A markdown heading, as a section name: no `Step 3 —` prefix, no formatting, lower-case. */
function sectionName(heading: string): string {
  return heading
    .replace(/[`*]/g, '')
    .replace(/^step\s+\d+\s*[—–:.-]*\s*/i, '')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/** The headings of a markdown document, outside fenced code blocks. */
export function headingsOf(markdown: string): string[] {
  const headings: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split(/\r?\n/)) {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      continue;
    }
    const heading = fence === undefined ? /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1] : undefined;
    if (heading) headings.push(heading);
  }
  return headings;
}

/**
 * The sections every published AUTH.md has (v0.1 and the current line), by the names of its own
 * headings: "Step 1 — Discover" … "Errors", "Revocation". The claim ceremony is due when a claim
 * endpoint is advertised; "Exchange the assertion" when credentials come from the token endpoint.
 */
function standardSections(service: Discovered): { title: string; names: string[] }[] {
  const sections = [
    { title: 'Discover', names: ['discover'] },
    { title: 'Pick a method', names: ['pick a method'] },
    { title: 'Register', names: ['register'] },
  ];
  if (service.endpoints.claim || typeof service.agentAuth.claim_uri === 'string') sections.push({ title: 'Claim ceremony', names: ['claim ceremony'] });
  if (service.dialects.current || service.dialects.v07) sections.push({ title: 'Exchange the assertion', names: ['exchange the assertion'] });
  sections.push(
    { title: 'Use the access_token (v0.1: Use the credential)', names: ['use the access_token', 'use the access token', 'use the credential'] },
    { title: 'Errors', names: ['errors'] },
    { title: 'Revocation', names: ['revocation'] },
  );
  return sections;
}

async function checkSkill(ctx: CheckContext): Promise<void> {
  const service = await ctx.discover();
  const skill = service.endpoints.skill;
  requireThat(skill, 'the service advertises no agent_auth.skill (discovery.agent-auth reports it)');
  const answer = await ctx.http.get(skill, { accept: 'text/markdown' });
  expectThat(answer.status === 200, `agent_auth.skill ${skill}: expected 200, got ${describeAnswer(answer)}`);
  expectThat(mediaType(answer) === 'text/markdown', `agent_auth.skill ${skill}: expected Content-Type text/markdown, got ${show(answer.headers.get('content-type') ?? undefined)}`);
  const found = headingsOf(answer.text).map(sectionName);
  const missing = standardSections(service).filter((section) => !section.names.some((name) => found.some((heading) => heading.startsWith(name))));
  expectThat(
    missing.length === 0,
    `the auth.md at ${skill} lacks the standard section${missing.length > 1 ? 's' : ''} ${missing.map((s) => `"${s.title}"`).join(', ')} (its headings: ${found.map((h) => `"${h}"`).join(', ') || 'none'})`,
  );
}

/**
 * Every URL an agent sends a credential to, and the key set, by metadata member. The skill is left
 * out: it is only read, and the published AUTH.md example itself serves it from another host.
 */
function advertisedEndpoints(service: Discovered): [string, unknown][] {
  const { as, agentAuth } = service;
  const top = ['token_endpoint', 'revocation_endpoint', 'introspection_endpoint', 'jwks_uri'].map((name): [string, unknown] => [name, as[name]]);
  const profile = ['identity_endpoint', 'claim_endpoint', 'events_endpoint', 'register_uri', 'claim_uri', 'revocation_uri'].map(
    (name): [string, unknown] => [`agent_auth.${name}`, agentAuth[name]],
  );
  return [...top, ...profile].filter(([, url]) => url !== undefined);
}

function checkSameOrigin(service: Discovered): void {
  const origin = new URL(service.issuer).origin;
  const elsewhere = advertisedEndpoints(service).filter(([, url]) => !isHttpUrl(url) || new URL(url).origin !== origin);
  expectThat(
    elsewhere.length === 0,
    `endpoints off the issuer's origin ${origin}: ${elsewhere.map(([name, url]) => `${name} ${show(url)}`).join(', ')}`,
  );
}

/** Checks the key set holds only public keys with a `kid`; returns it. */
function checkKeySet(answer: Answer, jwksUri: string): JSONWebKeySet {
  const set = answer.json;
  expectThat(
    answer.status === 200 && isObject(set) && Array.isArray(set.keys) && set.keys.length > 0,
    `jwks_uri ${jwksUri}: expected 200 with a JWK Set {"keys":[…]}, got ${describeAnswer(answer)}`,
  );
  const problems = new Problems();
  set.keys.forEach((key: unknown, index: number) => {
    if (!isObject(key) || typeof key.kty !== 'string') return problems.expect(false, `key ${index} is not a JWK: ${show(key)}`);
    const secret = PRIVATE_JWK_MEMBERS.filter((member) => member in key);
    problems.expect(secret.length === 0, `key ${index} (kid ${show(key.kid)}) is private: it has ${secret.join(', ')}`);
    problems.expect(typeof key.kid === 'string' && key.kid.length > 0, `key ${index} has no kid`);
  });
  problems.report(`the key set at ${jwksUri}`);
  return set as JSONWebKeySet;
}

async function checkJwks(ctx: CheckContext): Promise<void> {
  const service = await ctx.discover();
  const jwksUri = service.endpoints.jwks;
  requireThat(jwksUri, 'the service advertises no jwks_uri (the published protocol has none; authmd publishes one)');
  const keySet = checkKeySet(await ctx.http.get(jwksUri, { accept: 'application/jwk-set+json, application/json' }), jwksUri);
  const registration = await prerequisite('an anonymous registration (for an assertion to verify)', () => registerAnonymous(ctx));
  const issuer = typeof service.as.issuer === 'string' ? service.as.issuer : service.issuer;
  const algorithms = [...new Set(keySet.keys.map((key) => key.alg).filter((alg): alg is string => typeof alg === 'string'))];
  try {
    await jwtVerify(registration.assertion!, createLocalJWKSet(keySet), { issuer, algorithms: algorithms.length ? algorithms : undefined });
  } catch (error) {
    throw new CheckFailed(`the identity assertion of an anonymous registration does not verify against ${jwksUri} with iss ${issuer}: ${(error as Error).message}`);
  }
}

function checkCacheControl(service: Discovered): void {
  const documents: [string, Answer][] = [
    [service.prmUrl, service.prmAnswer],
    [service.asUrl, service.asAnswer],
  ];
  const wrong = documents.filter(([, answer]) => {
    const value = answer.headers.get('cache-control') ?? '';
    return !/(^|[\s,])max-age\s*=\s*"?\d+/i.test(value) || /no-store/i.test(value);
  });
  expectThat(
    wrong.length === 0,
    `metadata without a Cache-Control max-age (expected e.g. public, max-age=300): ${wrong.map(([url, answer]) => `${url} has ${show(answer.headers.get('cache-control') ?? undefined)}`).join('; ')}`,
  );
}

export const discoveryChecks: Check[] = [
  {
    id: 'discovery.challenge',
    group: 'discovery',
    title: 'The protected API answers 401 without a token, with a Bearer challenge whose resource_metadata leads to metadata covering it',
    ref: 'RFC 9728 §5.1, §3.3',
    run: checkChallenge,
  },
  {
    id: 'discovery.prm',
    group: 'discovery',
    title: 'The protected resource metadata is a JSON object with resource, authorization_servers, and well-formed bearer methods and scopes',
    ref: 'RFC 9728 §2, §3.2',
    run: async (ctx) => checkPrm(await ctx.discover()),
  },
  {
    id: 'discovery.prm-resource',
    group: 'discovery',
    title: 'The protected resource metadata names as resource the identifier whose well-known URL was fetched',
    ref: 'RFC 9728 §3.3',
    async run(ctx) {
      const service = await ctx.discover();
      expectThat(
        withoutTrailingSlash(service.resource) === service.base,
        `the metadata at ${service.prmUrl} describes resource "${service.resource}", not ${service.base} whose well-known URL was fetched; a client must not use it (if ${service.resource} is the resource, give it as the base URL)`,
      );
    },
  },
  {
    id: 'discovery.as-issuer',
    group: 'discovery',
    title: 'The authorization server metadata names as issuer the authorization_servers entry it was fetched for',
    ref: 'RFC 8414 §3.3',
    async run(ctx) {
      const service = await ctx.discover();
      const entry = (service.prm.authorization_servers as unknown[]).find((server) => typeof server === 'string') as string;
      const issuer = service.as.issuer;
      // Identical up to a terminating slash, which issuers are normalised without (as our client and the official one do).
      expectThat(
        typeof issuer === 'string' && withoutTrailingSlash(issuer) === withoutTrailingSlash(entry),
        `the metadata at ${service.asUrl} names issuer ${show(issuer)}, not "${entry}" it was fetched for; a client must not use it`,
      );
    },
  },
  {
    id: 'discovery.as-metadata',
    group: 'discovery',
    title: 'The authorization server metadata has issuer, token_endpoint, response_types_supported, the jwt-bearer grant and revocation_endpoint',
    ref: 'RFC 8414 §2; auth.md §2.2',
    run: async (ctx) => checkAsMetadata(await ctx.discover()),
  },
  {
    id: 'discovery.agent-auth',
    group: 'discovery',
    title: 'agent_auth has skill, identity_endpoint, claim_endpoint, known identity types, the ID-JAG assertion type and a consistent events pair',
    ref: 'auth.md §2.2; profile §1',
    async run(ctx) {
      const service = await ctx.discover();
      requireThat(service.dialects.current || service.dialects.v07, 'the service advertises only the v0.1 dialect (no agent_auth.identity_endpoint)');
      checkAgentAuth(service);
    },
  },
  {
    id: 'discovery.agent-auth-v07',
    group: 'discovery',
    title: 'A service listing the v0.7 claim grant advertises the claim_endpoint that starts its ceremonies',
    ref: 'auth.md v0.7 (protocol-reference §3); profile §1',
    async run(ctx) {
      const service = await ctx.discover();
      requireThat(service.dialects.v07, `the service does not advertise the v0.7 claim grant ${grantTypes.claim}`);
      expectThat(
        isHttpUrl(service.agentAuth.claim_endpoint),
        `grant_types_supported lists ${grantTypes.claim}, but agent_auth.claim_endpoint is ${show(service.agentAuth.claim_endpoint)}: an agent cannot start the ceremony it would poll for`,
      );
    },
  },
  {
    id: 'discovery.agent-auth-v01',
    group: 'discovery',
    title: 'A service advertising v0.1 (register_uri) also has claim_uri, the credential types of each method, and revocation_uri when it takes providers\' ID-JAGs',
    ref: 'auth.md v0.1 (protocol-reference §7.1); profile §1',
    async run(ctx) {
      const service = await ctx.discover();
      requireThat(service.dialects.v01, 'the service does not advertise the v0.1 dialect (no agent_auth.register_uri)');
      checkAgentAuthV01(service);
    },
  },
  {
    id: 'discovery.skill',
    group: 'discovery',
    title: 'agent_auth.skill serves a text/markdown auth.md with the standard sections',
    ref: 'auth.md §2.2 (skill); published AUTH.md structure',
    run: checkSkill,
  },
  {
    id: 'discovery.same-origin',
    group: 'discovery',
    title: "Every advertised endpoint (token, revocation, identity, claim, events, JWKS) is on the issuer's origin",
    ref: 'auth.md §2.2 (every endpoint under the issuer); RFC 8414 §2',
    run: async (ctx) => checkSameOrigin(await ctx.discover()),
  },
  {
    id: 'discovery.jwks',
    group: 'discovery',
    title: "jwks_uri serves only public keys with a kid, and the service's identity assertions verify against it with iss = issuer",
    // Skipped without jwks_uri: the published protocol has none (protocol-reference §8 item 6); authmd's profile publishes one.
    ref: 'RFC 8414 §2 (jwks_uri); RFC 7517 §5; profile §2 (service-signed assertions)',
    run: checkJwks,
  },
  {
    id: 'discovery.cache-control',
    group: 'discovery',
    title: 'Both metadata documents carry Cache-Control with a max-age',
    ref: 'auth.md §2.2 (Cache-Control: public, max-age=300); RFC 9728 §7.10',
    run: async (ctx) => checkCacheControl(await ctx.discover()),
  },
];
