import { advertisedDialects, wellKnown, wellKnownUrl, withoutTrailingSlash, type AdvertisedDialects } from '@authmd/protocol';
import { CheckFailed } from './check.ts';
import { describeAnswer, type Answer, type Http } from './http.ts';

/** What the suite learned from the service's metadata; checks of other groups start from here. */
export interface Discovered {
  /** The resource whose metadata is judged: the URL the operator gave, or the API below it that its metadata named. Without a trailing slash. */
  base: string;
  prmUrl: string;
  prmAnswer: Answer;
  prm: Record<string, any>;
  /** The protected resource the metadata describes (RFC 9728 `resource`). */
  resource: string;
  issuer: string;
  asUrl: string;
  asAnswer: Answer;
  as: Record<string, any>;
  agentAuth: Record<string, any>;
  /** Which generations of auth.md the service advertises (`advertisedDialects` of @authmd/protocol). */
  dialects: AdvertisedDialects;
  identityTypes: string[];
  scopes: string[];
  endpoints: {
    token: string;
    revocation: string | undefined;
    /** Undefined for a service that speaks only v0.1 (`register_uri`). */
    identity: string | undefined;
    claim: string | undefined;
    claimComplete: string | undefined;
    events: string | undefined;
    jwks: string | undefined;
    skill: string | undefined;
  };
}

/** Whether a resource identifier covers the URL asked about: same origin, and its path is a prefix. */
export function covers(resource: string, url: string): boolean {
  if (!URL.canParse(resource) || !URL.canParse(url)) return false;
  const r = new URL(resource);
  const u = new URL(url);
  const prefix = withoutTrailingSlash(r.pathname);
  return r.origin === u.origin && (prefix === '' || u.pathname === prefix || u.pathname.startsWith(`${prefix}/`));
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

/**
 * Protected resource metadata of the base URL (RFC 9728), then the metadata of its first
 * authorization server (RFC 8414). Throws `CheckFailed` naming the document that is missing or unusable;
 * the discovery checks judge the details.
 */
export async function discover(http: Http, baseUrl: string): Promise<Discovered> {
  const given = withoutTrailingSlash(baseUrl);
  let { base, prmUrl, prmAnswer, prm } = await resourceMetadata(http, given);
  // Metadata at the given URL naming an API below it (a service may serve its API's metadata at the root
  // too): the API's own well-known URL is the one to judge, and its metadata must name it exactly.
  if (withoutTrailingSlash(prm.resource) !== given && covers(given, prm.resource)) {
    ({ base, prmUrl, prmAnswer, prm } = await resourceMetadata(http, withoutTrailingSlash(prm.resource), prmUrl));
  }
  const issuer = strings(prm.authorization_servers)[0];
  if (!issuer) throw new CheckFailed(`the protected resource metadata at ${prmUrl} names no authorization_servers`);
  const asUrl = wellKnownUrl(issuer, wellKnown.authorizationServer);
  const asAnswer = await http.get(asUrl, { accept: 'application/json' });
  const as = asAnswer.json;
  if (asAnswer.status !== 200 || typeof as !== 'object' || as === null || Array.isArray(as)) {
    throw new CheckFailed(`no authorization server metadata at ${asUrl} (RFC 8414 §3): ${describeAnswer(asAnswer)}`);
  }
  const agentAuth = typeof as.agent_auth === 'object' && as.agent_auth !== null ? (as.agent_auth as Record<string, any>) : {};
  if (typeof agentAuth.identity_endpoint !== 'string' && typeof agentAuth.register_uri !== 'string') {
    throw new CheckFailed(`the authorization server metadata at ${asUrl} has no agent_auth.identity_endpoint: this is not an auth.md service`);
  }
  if (typeof as.token_endpoint !== 'string') throw new CheckFailed(`the authorization server metadata at ${asUrl} has no token_endpoint`);
  const identityTypes = strings(agentAuth.identity_types_supported);
  const claim = typeof agentAuth.claim_endpoint === 'string' ? agentAuth.claim_endpoint : undefined;
  return {
    base,
    prmUrl,
    prmAnswer,
    prm,
    resource: prm.resource,
    issuer: withoutTrailingSlash(issuer),
    asUrl,
    asAnswer,
    as,
    agentAuth,
    dialects: advertisedDialects(as),
    identityTypes,
    scopes: strings(as.scopes_supported),
    endpoints: {
      token: as.token_endpoint,
      revocation: typeof as.revocation_endpoint === 'string' ? as.revocation_endpoint : undefined,
      identity: typeof agentAuth.identity_endpoint === 'string' ? agentAuth.identity_endpoint : undefined,
      claim,
      claimComplete: claim ? `${claim}/complete` : undefined,
      events: typeof agentAuth.events_endpoint === 'string' ? agentAuth.events_endpoint : undefined,
      jwks: typeof as.jwks_uri === 'string' ? as.jwks_uri : undefined,
      skill: typeof agentAuth.skill === 'string' ? agentAuth.skill : undefined,
    },
  };
}

/** The protected resource metadata of `resource` (RFC 9728 §3), or CheckFailed naming the URL; `from`: the metadata that named it. */
async function resourceMetadata(http: Http, resource: string, from?: string): Promise<{ base: string; prmUrl: string; prmAnswer: Answer; prm: Record<string, any> }> {
  const prmUrl = wellKnownUrl(resource, wellKnown.protectedResource);
  const prmAnswer = await http.get(prmUrl, { accept: 'application/json' });
  const prm = prmAnswer.json;
  const named = from ? `, the resource named by ${from}` : '';
  if (prmAnswer.status !== 200 || typeof prm !== 'object' || prm === null || Array.isArray(prm)) {
    throw new CheckFailed(`no protected resource metadata at ${prmUrl} (RFC 9728 §3) for ${resource}${named}: ${describeAnswer(prmAnswer)}`);
  }
  if (typeof prm.resource !== 'string') throw new CheckFailed(`the protected resource metadata at ${prmUrl} has no "resource" string`);
  return { base: resource, prmUrl, prmAnswer, prm };
}
