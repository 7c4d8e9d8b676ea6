import { createHmac, constants, generateKeyPair, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { afterEach } from 'vitest';
import { eventSchemas, jwtTypes } from '@authmd/protocol';

/**
 * A real agent provider for tests: it holds private keys of several kinds, serves its JWKS, its
 * RFC 8414 metadata and a client ID metadata document (CIMD) from an http server on 127.0.0.1, and
 * signs ID-JAGs and SETs. Every header and claim can be set (or removed) by the caller, and tokens
 * can be signed with the "wrong" thing on purpose (no signature, HMAC over the public key bytes, an
 * RSA signature under an ES256 header…). The server records every request it receives, so a test
 * can tell whether (and how often) the service fetched anything from it.
 */

export type Alg = 'ES256' | 'RS256' | 'PS256' | 'EdDSA';
export type Json = Record<string, unknown>;

export interface ProviderKey {
  alg: Alg;
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public JWK as published: kty members plus kid, alg and use. */
  jwk: Json;
  /** The public key as SPKI PEM. */
  pem: string;
}

/** A fresh key pair for `alg`, known by `kid` (RSA key generation is slow: prefer `startProvider`'s pooled RSA keys). */
export function generateProviderKey(alg: Alg, kid: string): ProviderKey {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return providerKey(alg, kid, pair);
}

function providerKey(alg: Alg, kid: string, pair: { publicKey: KeyObject; privateKey: KeyObject }): ProviderKey {
  const jwk = { ...(pair.publicKey.export({ format: 'jwk' }) as Json), kid, alg, use: 'sig' };
  return { alg, kid, privateKey: pair.privateKey, publicKey: pair.publicKey, jwk, pem: pair.publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

/**
 * RSA pairs take ~0.4 s each to make, so a process keeps a small pool, made on the threadpool, and
 * hands them out round-robin: consecutive providers (all those of one test) never share a pair.
 */
const RSA_POOL_SIZE = 8;
let rsaPool: Promise<{ publicKey: KeyObject; privateKey: KeyObject }>[] | undefined;
let rsaNext = 0;
function pooledRsaPair() {
  rsaPool ??= Array.from({ length: RSA_POOL_SIZE }, () => promisify(generateKeyPair)('rsa', { modulusLength: 2048 }));
  return rsaPool[rsaNext++ % RSA_POOL_SIZE]!;
}

/** The JWS signature of `input` made by `key`, with the algorithm the key is for (not what a header may claim). */
export function signWithKey(key: ProviderKey, input: string): Buffer {
  const data = Buffer.from(input);
  switch (key.alg) {
    case 'ES256':
      return sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    case 'RS256':
      return sign('sha256', data, key.privateKey);
    case 'PS256':
      return sign('sha256', data, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    case 'EdDSA':
      return sign(null, data, key.privateKey);
  }
}

export type Signature =
  /** Signed with the chosen key (default). */
  | 'key'
  /** An unsecured JWS: empty signature segment (`alg: none` style). */
  | 'none'
  /** A non-empty signature that is not a signature of anything. */
  | 'garbage'
  /** HMAC-SHA256 with this secret (e.g. the public key's PEM or JWK JSON: the classic confusion attack). */
  | { hmac: string | Buffer };

export interface MintOptions {
  /** Which key signs (by algorithm, from the provider's keys), or any key at all. Default: the provider's ES256 key. */
  key?: Alg | ProviderKey;
  /** Merged over the default header `{alg, kid, typ}`; a member set to undefined is removed. */
  header?: Json;
  signature?: Signature;
}

/** Merges `overrides` into `base`; members set to undefined are removed. */
function merge(base: Json, overrides: Json): Json {
  const out: Json = { ...base };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete out[name];
    else out[name] = value;
  }
  return out;
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A compact JWS of exactly this header and payload, signed as `signature` says. */
export function compactJws(header: Json, payload: Json, key: ProviderKey, signature: Signature = 'key'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  if (signature === 'none') return `${input}.`;
  if (signature === 'garbage') return `${input}.${Buffer.from('not a signature of anything at all').toString('base64url')}`;
  if (typeof signature === 'object') return `${input}.${createHmac('sha256', signature.hmac).update(input).digest('base64url')}`;
  return `${input}.${signWithKey(key, input).toString('base64url')}`;
}

/** Who the provider mints for: the service's issuer (the default `aud`) and the service's clock. */
export interface Target {
  audience: string;
  clock: () => number;
}

export interface TestProvider {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The issuer identifier (the origin). */
  issuer: string;
  /** Where the JWKS is served. */
  jwksUri: string;
  /** The URL of its client ID metadata document (its CIMD `client_id`). */
  cimdUrl: string;
  /** Its keys by algorithm; all of them are published unless `published` says otherwise. */
  keys: Record<Alg, ProviderKey>;
  /** A shared secret this provider could sign HS256 tokens with (never published). */
  hmacSecret: Buffer;
  /** The kids served at the JWKS, in order; keys made by `addKey` are served once listed here. */
  published: string[];
  /** Published keys whose JWK is altered (e.g. `{ alg: undefined }` to publish it without `alg`). */
  jwkOverrides: Map<string, Json>;
  /** Extra headers on the JWKS response (e.g. Cache-Control). */
  jwksHeaders: Record<string, string>;
  /** Delay before the JWKS is answered. */
  jwksDelayMs: number;
  /** Members merged into the CIMD document (undefined removes one). */
  cimd: Json;
  /** Every request received, in order. */
  requests: { method: string; path: string }[];
  /** Requests received for `path` (every request when omitted). */
  hits(path?: string): number;
  /** Makes a new key known by `kid` (not published until added to `published`). */
  addKey(alg: Alg, kid: string): ProviderKey;
  /** Who tokens are minted for (set by `attach`). */
  target: Target | undefined;
  attach(target: Target): void;
  /** Seconds since the epoch on the target's clock. */
  now(): number;
  /** An ID-JAG for the target; `overrides` are merged into the claims (undefined removes one). */
  mintIdJag(overrides?: Json, options?: MintOptions): string;
  /** A revocation SET for the target (override `events` for other event types). */
  mintSet(overrides?: Json, options?: MintOptions): string;
  /** The trust list entry for this provider (its JWKS pinned unless `jwksUri: undefined` is given). */
  trustEntry(extra?: Json): { issuer: string; displayName: string; jwksUri?: string; [member: string]: unknown };
  close(): Promise<void>;
}

export const REVOKED = eventSchemas.assertionRevoked;
export const JWKS_PATH = '/jwks';
export const CIMD_PATH = '/agent-auth.json';
export const METADATA_PATH = '/.well-known/oauth-authorization-server';

export interface ProviderOptions {
  /** Shown on the claim page via the trust list. Default "Acme Agents". */
  displayName?: string;
  /** A prefix for the kids, so two providers never share one. Default: random. */
  kidPrefix?: string;
}

export async function startProvider(options: ProviderOptions = {}): Promise<TestProvider> {
  const prefix = options.kidPrefix ?? randomUUID().slice(0, 8);
  const [rs, ps] = await Promise.all([pooledRsaPair(), pooledRsaPair()]);
  const keys = {
    ES256: generateProviderKey('ES256', `${prefix}-es256`),
    RS256: providerKey('RS256', `${prefix}-rs256`, rs),
    PS256: providerKey('PS256', `${prefix}-ps256`, ps),
    EdDSA: generateProviderKey('EdDSA', `${prefix}-eddsa`),
  } satisfies Record<Alg, ProviderKey>;
  const extraKeys = new Map<string, ProviderKey>();
  const sockets = new Set<Socket>();
  const displayName = options.displayName ?? 'Acme Agents';

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    provider.requests.push({ method: req.method ?? '', path });
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (path === JWKS_PATH) {
      const all = [...Object.values(keys), ...extraKeys.values()];
      const served = provider.published.flatMap((kid) => {
        const key = all.find((k) => k.kid === kid);
        return key ? [merge(key.jwk, provider.jwkOverrides.get(kid) ?? {})] : [];
      });
      const answer = () => send(200, { keys: served }, provider.jwksHeaders);
      if (provider.jwksDelayMs > 0) setTimeout(answer, provider.jwksDelayMs);
      else answer();
      return;
    }
    if (path === METADATA_PATH) return send(200, { issuer: provider.issuer, jwks_uri: provider.jwksUri });
    if (path === CIMD_PATH) {
      const document = merge(
        { client_id: provider.cimdUrl, client_name: 'Provider-Chosen Name', jwks_uri: provider.jwksUri, token_endpoint_auth_method: 'private_key_jwt' },
        provider.cimd,
      );
      return send(200, document);
    }
    send(404, { error: 'not_found' });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const pickKey = (key: Alg | ProviderKey | undefined): ProviderKey => (key === undefined ? keys.ES256 : typeof key === 'string' ? keys[key] : key);
  const mint = (typ: string, defaults: Json, overrides: Json, mintOptions: MintOptions): string => {
    const key = pickKey(mintOptions.key);
    const header = merge({ alg: key.alg, kid: key.kid, typ }, mintOptions.header ?? {});
    return compactJws(header, merge(defaults, overrides), key, mintOptions.signature);
  };
  const requireTarget = (): Target => {
    if (!provider.target) throw new Error('attach the provider to a service first');
    return provider.target;
  };

  const provider: TestProvider = {
    origin,
    issuer: origin,
    jwksUri: origin + JWKS_PATH,
    cimdUrl: origin + CIMD_PATH,
    keys,
    hmacSecret: Buffer.from(randomUUID()),
    published: Object.values(keys).map((k) => k.kid),
    jwkOverrides: new Map(),
    jwksHeaders: {},
    jwksDelayMs: 0,
    cimd: {},
    requests: [],
    hits: (path) => provider.requests.filter((r) => path === undefined || r.path === path).length,
    addKey(alg, kid) {
      const key = generateProviderKey(alg, kid);
      extraKeys.set(kid, key);
      return key;
    },
    target: undefined,
    attach(target) {
      provider.target = target;
    },
    now: () => Math.floor(requireTarget().clock() / 1000),
    mintIdJag(overrides = {}, mintOptions = {}) {
      const target = requireTarget();
      const now = provider.now();
      const defaults = {
        iss: provider.issuer,
        sub: 'user-1',
        aud: target.audience,
        client_id: provider.issuer,
        jti: randomUUID(),
        iat: now,
        exp: now + 300,
        auth_time: now - 30,
        email: 'ada@example.com',
        email_verified: true,
      };
      return mint(jwtTypes.idJag, defaults, overrides, mintOptions);
    },
    mintSet(overrides = {}, mintOptions = {}) {
      const target = requireTarget();
      const defaults = { iss: provider.issuer, aud: target.audience, iat: provider.now(), jti: randomUUID(), sub: 'user-1', events: { [REVOKED]: {} } };
      return mint(jwtTypes.secEvent, defaults, overrides, mintOptions);
    },
    trustEntry(extra = {}) {
      return merge({ issuer: provider.issuer, displayName, jwksUri: provider.jwksUri }, extra) as ReturnType<TestProvider['trustEntry']>;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return provider;
}

/** For a test file: `start` makes a provider that is closed after each test. */
export function providerPerTest(): (options?: ProviderOptions) => Promise<TestProvider> {
  let started: TestProvider[] = [];
  afterEach(async () => {
    await Promise.all(started.map((p) => p.close()));
    started = [];
  });
  return async (options) => {
    const provider = await startProvider(options);
    started.push(provider);
    return provider;
  };
}
