import { advertisedDialects, wellKnown, wellKnownUrl, withoutTrailingSlash, type AdvertisedDialects } from '@authmd/protocol';
import { CheckFailed } from './check.ts';
import { describeAnswer, type Answer, type Http } from './http.ts';

/** What the suite learned from the service's metadata; checks of other groups start from here. */
export interface Discovered {
  /** The URL the operator gave, without a trailing slash. */
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

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

/**
 * Protected resource metadata of the base URL (RFC 9728), then the metadata of its first
 * authorization server (RFC 8414). Throws `CheckFailed` naming the document that is missing or unusable;
 * the discovery checks judge the details.
 */
export async function discover(http: Http, baseUrl: string): Promise<Discovered> {
  const base = withoutTrailingSlash(baseUrl);
  const prmUrl = wellKnownUrl(base, wellKnown.protectedResource);
  const prmAnswer = await http.get(prmUrl, { accept: 'application/json' });
  const prm = prmAnswer.json;
  if (prmAnswer.status !== 200 || typeof prm !== 'object' || prm === null || Array.isArray(prm)) {
    throw new CheckFailed(`no protected resource metadata at ${prmUrl} (RFC 9728 §3): ${describeAnswer(prmAnswer)}`);
  }
  if (typeof prm.resource !== 'string') throw new CheckFailed(`the protected resource metadata at ${prmUrl} has no "resource" string`);
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
