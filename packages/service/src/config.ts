import { createHash } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { ConfigError, type Logger, type MetricsOptions } from '@authmd/core';
import type { Fetcher } from '@authmd/core/fetch';
import type { SigningAlgorithm, KeyEncryptionOptions } from '@authmd/core/keys';
import type { Store } from '@authmd/core/store';
import { withoutTrailingSlash, type Dialect, type ResourceDescription } from '@authmd/protocol';
import { resolveAdmin, type AdminConfig, type AdminOptions } from './admin/config.ts';
import type { AuditSink } from './audit.ts';
import type { RandomSource } from './secrets.ts';
import type { HttpRequest } from './http/env.ts';
import type { ProxyHeader, ProxyTrust } from './http/client-address.ts';
import type { Mailer } from './mail/mailer.ts';

export { ConfigError };

/** Everything an operator can set. Only `issuer` and `scopes` are required; the rest has safe defaults. */
export interface ServiceOptions {
  /** The authorization server's issuer identifier: an http(s) URL without query or fragment. */
  issuer: string;
  /** Shown to agents in auth.md and to humans on the claim page. */
  name?: string;
  summary?: string;
  logoUri?: string;
  /**
   * The protected resources (RFC 8707 identifiers). Default: the issuer itself. The first is the
   * default resource of tokens requested without `resource`.
   */
  resources?: (string | ResourceDescription)[];
  scopes: {
    /** What an unclaimed anonymous registration may do. */
    preClaim: string[];
    /** What a claimed (or directly verified) registration may do. */
    postClaim: string[];
  };
  /** Where state lives. Default: an in-memory store, announced as unfit for production. */
  store?: Store;
  /** Which protocol generations to speak; all three (`current`, `v0.7`, `v0.1`) are on by default. */
  dialects?: Partial<Record<Dialect, boolean>>;
  /** Registration methods. */
  methods?: { anonymous?: boolean; serviceAuth?: boolean };
  lifetimes?: {
    accessTokenSeconds?: number;
    assertionSeconds?: number;
    /** How long a registration can be claimed (anonymous) or confirmed (service_auth). Default 24 h. */
    claimWindowSeconds?: number;
    /** How long one claim attempt (its page and codes) lives. Default 600 s. */
    attemptSeconds?: number;
    refreshTokenDays?: number;
    /** Browser sessions on the service's own pages. Default 24 h. */
    sessionHours?: number;
    /** An emailed sign-in code. Default 600 s. */
    signInCodeSeconds?: number;
  };
  /** Registration rate limits per hour (profile.md §3), per client IP and then for the whole service. */
  rateLimits?: Partial<Record<RateLimitedMethod, { perIp?: number; perService?: number }>>;
  /** How the sign-in page sends codes. Default: the development outbox at /dev/mailbox, refused in production. */
  mail?: MailOptions;
  signIn?: SignInOptions;
  /** Agent providers whose ID-JAGs this service accepts (the Agent Verified flow). Empty: none. */
  trust?: TrustOptions;
  /** Outbound HTTP (provider JWKS, CIMD documents). Default: the SSRF-safe fetcher. */
  fetcher?: Fetcher;
  clockSkewSeconds?: number;
  /**
   * Encryption of the private signing keys at rest by a key-encryption key (or a KMS). Default: the
   * keys in AUTHMD_KEY_ENCRYPTION_KEY. Without any, keys are stored in plaintext with a warning at
   * start, and the service refuses to start when NODE_ENV=production unless `allowPlaintext` is true.
   */
  keyEncryption?: KeyEncryptionOptions;
  signing?: {
    algorithm?: SigningAlgorithm;
    /** A new signing key is made when the active one is older than this. Default 90 days. */
    rotateAfterDays?: number;
  };
  limits?: {
    maxBodyBytes?: number;
    /** Wrong codes per claim attempt (both directions together) before it is dead. Default 5. */
    codeTriesPerAttempt?: number;
    /** Claim attempts per registration. Default 10. */
    attemptsPerRegistration?: number;
    /** Sign-in codes sent to one address per hour, whatever the clients asking. Default 10. */
    signInCodesPerHour?: number;
    /** Sign-in codes one client IP (an IPv6 client: its /64) may ask for per hour, whatever the addresses. Default 20. */
    signInCodesPerIpPerHour?: number;
    /**
     * Sign-in codes sent to one address at the request of one client IP (IPv6: its /64) per hour, so
     * that no single client can spend an address's whole budget. Default 3 (at most `signInCodesPerHour`).
     */
    signInCodesPerAddressAndIpPerHour?: number;
    /** The claim grant's polling interval (v0.7). Default 5 s. */
    pollIntervalSeconds?: number;
  };
  /** How often expired rows are purged and the keyring is re-read; 0 turns the timer off. Default 60 s. */
  maintenanceIntervalSeconds?: number;
  /** How long a validated access token may be served from memory. Default 5 s; 0 disables the cache. */
  tokenCacheSeconds?: number;
  /**
   * RFC 7662 token introspection at `POST /oauth2/introspect`, for resource servers in another
   * process (see `createRemoteGuard`). Off unless at least one client is listed; callers
   * authenticate with HTTP Basic (`client_secret_basic`). Secrets: at least 32 characters.
   */
  introspection?: { clients: { id: string; secret: string }[] };
  /**
   * The proxies in front of the service, whose forwarding header names the client address that the
   * per-IP limits count. A number: that many proxies, the nearest being the socket peer (use it only
   * when nothing reaches the service except through them). A list of addresses and CIDR ranges
   * (`['10.0.0.0/8', '2001:db8::/32']`): the peer and each hop in it are proxies. Default: none, the
   * socket peer is the client and forwarding headers are ignored.
   */
  trustProxy?: number | string[];
  /** The header those proxies append to: `x-forwarded-for` (default) or RFC 7239 `forwarded`. The other is ignored. */
  proxyHeader?: ProxyHeader;
  auditRetentionDays?: number;
  clock?: () => number;
  random?: RandomSource;
  /**
   * Where authmd logs. Default: JSON lines on stderr in pino's format (`jsonLogger`). pino itself (or
   * any logger with a `child` method and pino's `(fields, message)` convention) is accepted as is: its
   * types fit this interface, and a `child` method tells authmd to call it pino's way.
   */
  logger?: Logger;
  /** One `request` line per request (id, method, path, status, duration; never the query or a header). Default true. */
  requestLog?: boolean;
  /**
   * Prometheus metrics (prom-client, an optional peer dependency): off by default. `true` registers
   * the collectors in a new registry, `service.metrics`; or give your own `registry` and a name
   * `prefix` (default `authmd_`). The service never serves them itself: expose
   * `await registry.metrics()` where only your scraper reaches it.
   */
  metrics?: boolean | MetricsOptions;
  audit?: AuditSink;
  /**
   * The operator's admin API and console (`/admin`): off unless `apiTokens` or `operators` names
   * someone. See docs/admin.md.
   */
  admin?: AdminOptions;
}

export type RateLimitedMethod = 'anonymous' | 'service_auth' | 'identity_assertion';

export interface TrustedIssuerOptions {
  /** The provider's issuer identifier, compared to `iss` exactly (no trailing-slash leniency). */
  issuer: string;
  /** Shown to people on the claim page; the provider's own client_name never is. */
  displayName: string;
  /** Accepted `client_id` values. Default: the issuer itself, or an https CIMD URL whose document names the same JWKS. */
  clientIds?: string[];
  /** Accepted JWS algorithms. Default: ES256, RS256, PS256, EdDSA. */
  algorithms?: string[];
  /** Where the provider's keys are. Default: `jwks_uri` of its RFC 8414 metadata, else `<issuer>/.well-known/jwks.json`. */
  jwksUri?: string;
  /** Authentication methods every ID-JAG must list in `amr` (for example `['mfa']`). */
  requireAmr?: string[];
}

export interface TrustOptions {
  issuers: TrustedIssuerOptions[];
  /** Development only: providers on http://127.0.0.1 and outbound fetches to loopback. Announced at start. */
  allowLoopback?: boolean;
  /** How old an ID-JAG's `auth_time` may be. Default 3600 s. */
  maxAuthAgeSeconds?: number;
  /** Also redeem trusted providers' ID-JAGs directly at the token endpoint (jwt-bearer; profile.md §4). Default off. */
  tokenGrant?: boolean;
}

export interface TrustedIssuer {
  issuer: string;
  displayName: string;
  clientIds: string[] | undefined;
  algorithms: string[];
  jwksUri: string | undefined;
  requireAmr: string[];
}

export type MailOptions =
  /** Send through an SMTP server (nodemailer transport options: host, port, secure, auth, …). */
  | { smtp: Record<string, unknown>; from: string }
  /**
   * Keep messages in memory and show them at /dev/mailbox: development only, announced at start.
   * The mailbox answers only requests whose Host is the issuer's host:port or one of `hosts` (such as
   * the address a proxy forwards to); others get 421, so a page on a rebound DNS name cannot read it.
   */
  | { outbox: true; from?: string; hosts?: string[] }
  /** Your own sender. */
  | { mailer: Mailer; from?: string };

/** A user the host application has already signed in. */
export interface HostUser {
  /** A stable identifier; it becomes the principal's `userId`. */
  id: string;
  email: string;
}

export interface SignInOptions {
  /**
   * Use the host application's own session: return the signed-in user of this request, or undefined.
   * When it returns undefined the built-in passwordless sign-in (an emailed code) is offered, unless
   * `loginUrl` sends the browser to the host's own sign-in page instead.
   */
  authenticateUser?: (request: HttpRequest) => Promise<HostUser | undefined>;
  /** Where to send a browser that is not signed in; it must come back to `returnTo` afterwards. */
  loginUrl?: (returnTo: string) => string;
}

export interface ServiceConfig {
  issuer: string;
  issuerPath: string;
  name: string;
  summary: string | undefined;
  logoUri: string | undefined;
  resources: ResourceDescription[];
  defaultResource: string;
  scopes: { supported: string[]; preClaim: string[]; postClaim: string[] };
  dialects: Dialect[];
  methods: { anonymous: boolean; serviceAuth: boolean };
  lifetimes: {
    accessTokenMs: number;
    assertionMs: number;
    claimWindowMs: number;
    attemptMs: number;
    refreshTokenMs: number;
    sessionMs: number;
    signInCodeMs: number;
  };
  rateLimits: Record<RateLimitedMethod, { perIp: number; perService: number }>;
  limits: {
    codeTriesPerAttempt: number;
    attemptsPerRegistration: number;
    signInCodesPerHour: number;
    signInCodesPerIpPerHour: number;
    signInCodesPerAddressAndIpPerHour: number;
    pollIntervalSeconds: number;
  };
  secureCookies: boolean;
  requestLog: boolean;
  /** Host values (`host[:port]`) the development outbox answers besides the issuer's: `mail.hosts`. */
  outboxHosts: string[];
  trust: { issuers: Map<string, TrustedIssuer>; allowLoopback: boolean; maxAuthAgeMs: number; tokenGrant: boolean };
  clockSkewMs: number;
  signing: { algorithm: SigningAlgorithm; rotateAfterMs: number };
  maxBodyBytes: number;
  maintenanceIntervalMs: number;
  tokenCacheMs: number;
  /** Introspection callers, each secret kept as its SHA-256 only; undefined: introspection is off. */
  introspection: { clients: { id: string; secretHash: Buffer }[] } | undefined;
  /** Undefined: the socket peer is the client. */
  proxyTrust: ProxyTrust | undefined;
  auditRetentionMs: number;
  /** Undefined: no admin API, no console. */
  admin: AdminConfig | undefined;
}


const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const DAY = 86_400_000;
const implementedDialects: readonly Dialect[] = ['current', 'v0.7', 'v0.1'];

export function resolveConfig(options: ServiceOptions): ServiceConfig {
  const issuer = checkIdentifier('issuer', options.issuer);
  const resources = (options.resources ?? [issuer]).map((r) => {
    const description = typeof r === 'string' ? { resource: r } : r;
    return { ...description, resource: checkIdentifier('resources[]', description.resource) };
  });
  if (resources.length === 0) throw new ConfigError('resources: list at least one protected resource');

  const { preClaim, postClaim } = options.scopes;
  for (const scope of [...preClaim, ...postClaim]) {
    if (!SCOPE_TOKEN.test(scope)) throw new ConfigError(`scopes: "${scope}" is not a valid scope token (RFC 6749 §3.3)`);
  }
  if (postClaim.length === 0) throw new ConfigError('scopes.postClaim: list at least one scope');

  const dialects = (['current', 'v0.7', 'v0.1'] as const).filter((d) => options.dialects?.[d] ?? implementedDialects.includes(d));
  for (const dialect of dialects) {
    if (!implementedDialects.includes(dialect)) {
      throw new ConfigError(`dialects.${dialect}: this version of @authmd/service does not speak ${dialect} yet`);
    }
  }
  if (dialects.length === 0) throw new ConfigError('dialects: switch on at least one of current, v0.7 and v0.1');

  const lifetimes = options.lifetimes ?? {};
  return {
    issuer,
    issuerPath: new URL(issuer).pathname.replace(/\/$/, ''),
    name: options.name ?? new URL(issuer).host,
    summary: options.summary,
    logoUri: options.logoUri,
    resources,
    defaultResource: resources[0]!.resource,
    scopes: { supported: [...new Set([...preClaim, ...postClaim])], preClaim: [...preClaim], postClaim: [...postClaim] },
    dialects,
    methods: { anonymous: options.methods?.anonymous ?? true, serviceAuth: options.methods?.serviceAuth ?? true },
    lifetimes: {
      accessTokenMs: seconds('lifetimes.accessTokenSeconds', lifetimes.accessTokenSeconds ?? 3600),
      assertionMs: seconds('lifetimes.assertionSeconds', lifetimes.assertionSeconds ?? 3600),
      claimWindowMs: seconds('lifetimes.claimWindowSeconds', lifetimes.claimWindowSeconds ?? 86_400),
      attemptMs: seconds('lifetimes.attemptSeconds', lifetimes.attemptSeconds ?? 600),
      refreshTokenMs: seconds('lifetimes.refreshTokenDays', lifetimes.refreshTokenDays ?? 30) * 86_400,
      sessionMs: seconds('lifetimes.sessionHours', lifetimes.sessionHours ?? 24) * 3600,
      signInCodeMs: seconds('lifetimes.signInCodeSeconds', lifetimes.signInCodeSeconds ?? 600),
    },
    rateLimits: {
      anonymous: rateLimit(options.rateLimits?.anonymous, 5, 100),
      service_auth: rateLimit(options.rateLimits?.service_auth, 5, 100),
      identity_assertion: rateLimit(options.rateLimits?.identity_assertion, 60, 1000),
    },
    limits: {
      codeTriesPerAttempt: count('limits.codeTriesPerAttempt', options.limits?.codeTriesPerAttempt ?? 5),
      attemptsPerRegistration: count('limits.attemptsPerRegistration', options.limits?.attemptsPerRegistration ?? 10),
      signInCodesPerHour: count('limits.signInCodesPerHour', options.limits?.signInCodesPerHour ?? 10),
      signInCodesPerIpPerHour: count('limits.signInCodesPerIpPerHour', options.limits?.signInCodesPerIpPerHour ?? 20),
      signInCodesPerAddressAndIpPerHour: count(
        'limits.signInCodesPerAddressAndIpPerHour',
        options.limits?.signInCodesPerAddressAndIpPerHour ?? Math.min(3, options.limits?.signInCodesPerHour ?? 10),
      ),
      pollIntervalSeconds: count('limits.pollIntervalSeconds', options.limits?.pollIntervalSeconds ?? 5),
    },
    secureCookies: new URL(issuer).protocol === 'https:',
    requestLog: options.requestLog ?? true,
    outboxHosts: options.mail && 'outbox' in options.mail ? [...(options.mail.hosts ?? [])] : [],
    trust: resolveTrust(options.trust, issuer),
    clockSkewMs: (options.clockSkewSeconds ?? 60) * 1000,
    signing: {
      algorithm: options.signing?.algorithm ?? 'ES256',
      rotateAfterMs: (options.signing?.rotateAfterDays ?? 90) * DAY,
    },
    maxBodyBytes: options.limits?.maxBodyBytes ?? 64 * 1024,
    maintenanceIntervalMs: (options.maintenanceIntervalSeconds ?? 60) * 1000,
    tokenCacheMs: (options.tokenCacheSeconds ?? 5) * 1000,
    introspection: resolveIntrospection(options.introspection),
    proxyTrust: resolveProxyTrust(options.trustProxy, options.proxyHeader),
    auditRetentionMs: (options.auditRetentionDays ?? 90) * DAY,
    admin: resolveAdmin(options.admin),
  };
}

const PROXY_HEADERS: readonly ProxyHeader[] = ['x-forwarded-for', 'forwarded'];

/**
 * Throws the ConfigError `createService` would for these `trustProxy` and `proxyHeader` values: for
 * a loader that reads them from elsewhere (a variable, a file) and wants to name its own source.
 */
export function checkTrustProxy(trustProxy: number | string[] | undefined, proxyHeader?: ProxyHeader): void {
  resolveProxyTrust(trustProxy, proxyHeader);
}

function resolveProxyTrust(trustProxy: number | string[] | undefined, proxyHeader: ProxyHeader | undefined): ProxyTrust | undefined {
  const header = proxyHeader ?? 'x-forwarded-for';
  if (!PROXY_HEADERS.includes(header)) throw new ConfigError(`proxyHeader: "${String(proxyHeader)}" is not one of ${PROXY_HEADERS.join(', ')}`);
  if (trustProxy === undefined || trustProxy === 0) return undefined;
  if (typeof trustProxy === 'number') {
    if (!Number.isInteger(trustProxy) || trustProxy < 0 || trustProxy > 32) {
      throw new ConfigError(`trustProxy: ${trustProxy} is not a number of proxies (a whole number from 0 to 32); or list the proxies' addresses`);
    }
    return { header, hops: trustProxy };
  }
  if (!Array.isArray(trustProxy) || trustProxy.length === 0) {
    throw new ConfigError('trustProxy: give the number of proxies in front of the service, or a non-empty list of their addresses and CIDR ranges');
  }
  const addresses = new BlockList();
  for (const entry of trustProxy) addTrustedProxy(addresses, entry);
  return { header, addresses };
}

/** One `trustProxy` entry: an IPv4 or IPv6 address, or a CIDR range of either. */
function addTrustedProxy(list: BlockList, entry: unknown): void {
  const text = typeof entry === 'string' ? entry.trim() : '';
  const [address = '', prefix, ...rest] = text.split('/');
  const family = isIP(address);
  const bits = family === 6 ? 128 : 32;
  const length = prefix === undefined ? bits : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
  if (family === 0 || rest.length > 0 || !(length >= 0 && length <= bits)) {
    throw new ConfigError(`trustProxy: "${String(entry)}" is not an IP address or CIDR range (e.g. 10.0.0.1, 10.0.0.0/8, 2001:db8::/32)`);
  }
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (prefix === undefined) list.addAddress(address, type);
  else list.addSubnet(address, length, type);
}

/** An issuer or resource identifier: absolute http(s) URL, no query, no fragment, no trailing slash. */
function checkIdentifier(field: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${field}: "${value}" is not an absolute URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`${field}: must be an https URL`);
  if (url.search || url.hash) throw new ConfigError(`${field}: must not have a query or fragment`);
  return withoutTrailingSlash(value);
}

const DEFAULT_ALGORITHMS = ['ES256', 'RS256', 'PS256', 'EdDSA'];
const KNOWN_ALGORITHMS = new Set(['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519']);

function resolveTrust(options: TrustOptions | undefined, ownIssuer: string): ServiceConfig['trust'] {
  const allowLoopback = options?.allowLoopback ?? false;
  const issuers = new Map<string, TrustedIssuer>();
  for (const entry of options?.issuers ?? []) {
    const url = URL.canParse(entry.issuer) ? new URL(entry.issuer) : undefined;
    const loopback = url !== undefined && ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
    if (!url || !(url.protocol === 'https:' || (url.protocol === 'http:' && allowLoopback && loopback))) {
      throw new ConfigError(`trust.issuers: ${entry.issuer} must be an https URL (http only on loopback with trust.allowLoopback)`);
    }
    if (entry.issuer === ownIssuer) throw new ConfigError('trust.issuers: the service cannot trust itself as an agent provider');
    const algorithms = entry.algorithms ?? DEFAULT_ALGORITHMS;
    for (const alg of algorithms) {
      if (!KNOWN_ALGORITHMS.has(alg)) throw new ConfigError(`trust.issuers: ${alg} is not an asymmetric JWS algorithm this service accepts`);
    }
    if (!entry.displayName) throw new ConfigError(`trust.issuers: ${entry.issuer} needs a displayName`);
    issuers.set(entry.issuer, {
      issuer: entry.issuer,
      displayName: entry.displayName,
      clientIds: entry.clientIds,
      algorithms,
      jwksUri: entry.jwksUri,
      requireAmr: entry.requireAmr ?? [],
    });
  }
  return {
    issuers,
    allowLoopback,
    maxAuthAgeMs: (options?.maxAuthAgeSeconds ?? 3600) * 1000,
    tokenGrant: options?.tokenGrant ?? false,
  };
}

const MIN_INTROSPECTION_SECRET = 32;

function resolveIntrospection(options: ServiceOptions['introspection']): ServiceConfig['introspection'] {
  if (!options) return undefined;
  if (options.clients.length === 0) throw new ConfigError('introspection.clients: list at least one client, or leave introspection out');
  const ids = new Set<string>();
  const clients = options.clients.map(({ id, secret }) => {
    if (!id) throw new ConfigError('introspection.clients: every client needs an id');
    if (ids.has(id)) throw new ConfigError(`introspection.clients: ${id} is listed twice`);
    ids.add(id);
    if (typeof secret !== 'string' || secret.length < MIN_INTROSPECTION_SECRET) {
      throw new ConfigError(`introspection.clients: the secret of ${id} must be at least ${MIN_INTROSPECTION_SECRET} characters (a random value)`);
    }
    return { id, secretHash: createHash('sha256').update(secret, 'utf8').digest() };
  });
  return { clients };
}

function rateLimit(given: { perIp?: number; perService?: number } | undefined, perIp: number, perService: number) {
  return { perIp: count('rateLimits.perIp', given?.perIp ?? perIp), perService: count('rateLimits.perService', given?.perService ?? perService) };
}

function count(field: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) throw new ConfigError(`${field}: must be a positive whole number`);
  return value;
}

function seconds(field: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) throw new ConfigError(`${field}: must be a positive whole number of seconds`);
  return value * 1000;
}
