import { createHash, createPublicKey, verify } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryStore, createService, nodeMiddleware, silentLogger, type AuthmdService } from '@authmd/service';
import { exchange, registerAnonymous, startService, type RunningService } from '../support/harness.ts';
import { decodeJwt, HOUR, json, SECOND, WELL_KNOWN_AS, WELL_KNOWN_PRM } from './helpers.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const CLAIM_GRANT = 'urn:workos:agent-auth:grant-type:claim';

async function getJson(url: string): Promise<Record<string, any>> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return json(response);
}

async function jwks(base: string): Promise<{ kid: string; alg: string; use: string; [member: string]: unknown }[]> {
  return (await getJson(`${base}/.well-known/jwks.json`)).keys;
}

/** Every string in a JSON document, with the name of the member that holds it. */
function urlMembers(value: unknown, name = ''): { name: string; url: string }[] {
  if (typeof value === 'string') return /^https?:\/\//.test(value) ? [{ name, url: value }] : [];
  if (Array.isArray(value)) return value.flatMap((item) => urlMembers(item, name));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([key, item]) => urlMembers(item, key));
  return [];
}

/** Members that hold identifiers (RFC 8414 issuer, RFC 8707/9728 resources), not endpoints to call. */
const IDENTIFIER_MEMBERS = new Set(['issuer', 'resource', 'authorization_servers', 'protected_resources']);

describe('discovery documents', () => {
  let running: RunningService;
  let base: string;
  beforeAll(async () => {
    running = await startService({ extraResources: ['/admin'] });
    base = running.base;
  });
  afterAll(() => running.close());

  it('publishes protected resource metadata whose resource is exactly the base URL', async () => {
    const prm = await getJson(base + WELL_KNOWN_PRM);
    expect(prm.resource).toBe(base);
    expect(prm.authorization_servers).toEqual([base]);
    expect(prm.scopes_supported).toEqual(expect.arrayContaining(['notes.read', 'notes.write']));
    expect(prm.bearer_methods_supported).toEqual(['header']);
  });

  it('publishes the second resource metadata at the path-suffixed well-known URL', async () => {
    const prm = await getJson(`${base}${WELL_KNOWN_PRM}/admin`);
    expect(prm.resource).toBe(`${base}/admin`);
    expect(prm.authorization_servers).toEqual([base]);
  });

  it('publishes authorization server metadata whose issuer is exactly the base URL', async () => {
    const as = await getJson(base + WELL_KNOWN_AS);
    expect(as.issuer).toBe(base);
    expect(as.token_endpoint).toBe(`${base}/oauth2/token`);
    expect(as.revocation_endpoint).toBe(`${base}/oauth2/revoke`);
    expect(as.jwks_uri).toBe(`${base}/.well-known/jwks.json`);
    expect(Array.isArray(as.response_types_supported)).toBe(true);
    expect(as.agent_auth.identity_endpoint).toBe(`${base}/agent/identity`);
    expect(as.agent_auth.skill).toBe(`${base}/auth.md`);
    expect(as.agent_auth.identity_types_supported).toEqual(['anonymous', 'service_auth', 'refresh']);
    expect(as.agent_auth.claim_endpoint).toBe(`${base}/agent/identity/claim`);
  });

  it('advertises the jwt-bearer grant, and the claim grant while v0.7 is spoken', async () => {
    const as = await getJson(base + WELL_KNOWN_AS);
    expect(as.grant_types_supported).toEqual([JWT_BEARER, CLAIM_GRANT]);
    const currentOnly = await startService({ dialects: { 'v0.7': false } });
    try {
      const metadata = await getJson(currentOnly.base + WELL_KNOWN_AS);
      expect(metadata.grant_types_supported).toEqual([JWT_BEARER]);
    } finally {
      await currentOnly.close();
    }
  });

  it('lists every protected resource, and each has metadata naming itself', async () => {
    const as = await getJson(base + WELL_KNOWN_AS);
    expect(as.protected_resources).toEqual([base, `${base}/admin`]);
    for (const resource of as.protected_resources as string[]) {
      const url = new URL(resource);
      const prm = await getJson(`${url.origin}${WELL_KNOWN_PRM}${url.pathname === '/' ? '' : url.pathname}`);
      expect(prm.resource).toBe(resource);
    }
  });

  it('advertises no endpoint that answers 404', async () => {
    const documents = [
      await getJson(base + WELL_KNOWN_AS),
      await getJson(base + WELL_KNOWN_PRM),
      await getJson(`${base}${WELL_KNOWN_PRM}/admin`),
    ];
    const endpoints = documents.flatMap((document) => urlMembers(document)).filter(({ name }) => !IDENTIFIER_MEMBERS.has(name));
    expect(endpoints.map(({ name }) => name)).toEqual(expect.arrayContaining(['token_endpoint', 'revocation_endpoint', 'jwks_uri', 'identity_endpoint', 'skill']));
    for (const { name, url } of endpoints) {
      const response = await fetch(url);
      expect(response.status, `${name} ${url}`).not.toBe(404);
      expect(response.status, `${name} ${url}`).toBeLessThan(500);
    }
  });

  it('serves the documents, the JWKS and auth.md with Cache-Control: public, max-age=300', async () => {
    for (const path of [WELL_KNOWN_PRM, `${WELL_KNOWN_PRM}/admin`, WELL_KNOWN_AS, '/.well-known/jwks.json', '/auth.md']) {
      const response = await fetch(base + path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('cache-control'), path).toBe('public, max-age=300');
    }
  });

  it('serves auth.md as text/markdown with every section and the real endpoint URLs', async () => {
    const response = await fetch(`${base}/auth.md`);
    expect(response.headers.get('content-type')).toBe('text/markdown; charset=utf-8');
    const text = await response.text();
    for (const heading of ['Discover', 'Pick a method', 'Register', 'Claim ceremony', 'Exchange the assertion', 'Use the access_token', 'Errors', 'Revocation']) {
      expect(text).toMatch(new RegExp(`^## ${heading}$`, 'm'));
    }
    for (const url of [`${base}/agent/identity`, `${base}/oauth2/token`, `${base}/oauth2/revoke`, base + WELL_KNOWN_PRM, base + WELL_KNOWN_AS]) {
      expect(text).toContain(url);
    }
  });

  it('publishes keys with kid, alg and use, and a registration assertion verifies with the published key', async () => {
    const keys = await jwks(base);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(typeof key.kid).toBe('string');
      expect(key.alg).toBe('ES256');
      expect(key.use).toBe('sig');
      expect(key).not.toHaveProperty('d');
      // RFC 7638 thumbprint as kid (protocol-reference §2.10)
      const canonical = JSON.stringify({ crv: key.crv, kty: key.kty, x: key.x, y: key.y });
      expect(key.kid).toBe(createHash('sha256').update(canonical).digest('base64url'));
    }
    const registration = await registerAnonymous(base);
    const { header, segments } = decodeJwt(registration.identity.assertion);
    expect(header.typ).toBe('oauth-id-jag+jwt');
    const jwk = keys.find((key) => key.kid === header.kid);
    expect(jwk).toBeDefined();
    const publicKey = createPublicKey({ key: jwk as any, format: 'jwk' });
    const signingInput = Buffer.from(`${segments[0]}.${segments[1]}`);
    const signature = Buffer.from(segments[2], 'base64url');
    expect(verify('sha256', signingInput, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
    // and the check above can fail: a changed payload does not verify
    const forged = Buffer.from(`${segments[0]}.${segments[0]}`);
    expect(verify('sha256', forged, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)).toBe(false);
  });
});

describe('discovery with anonymous registration switched off', () => {
  let running: RunningService;
  beforeAll(async () => {
    running = await startService({ methods: { anonymous: false } });
  });
  afterAll(() => running.close());

  it('does not list anonymous in identity_types_supported', async () => {
    const as = await getJson(running.base + WELL_KNOWN_AS);
    expect(as.agent_auth.identity_types_supported).not.toContain('anonymous');
  });
});

describe('signing key rotation', () => {
  let running: RunningService;
  beforeEach(async () => {
    running = await startService();
  });
  afterEach(() => running.close());

  it('publishes both keys, keeps old assertions working, signs with the new key, then drops the old key', async () => {
    const { base, service, clock } = running;
    const before = await registerAnonymous(base);
    const oldKid = decodeJwt(before.identity.assertion).header.kid as string;
    expect((await jwks(base)).map((k) => k.kid)).toEqual([oldKid]);

    await service.rotateKeys();
    const kids = (await jwks(base)).map((k) => k.kid);
    expect(kids).toHaveLength(2);
    expect(kids).toContain(oldKid);

    expect((await exchange(base, before.identity.assertion)).status).toBe(200);

    const after = await registerAnonymous(base);
    const newKid = decodeJwt(after.identity.assertion).header.kid as string;
    expect(newKid).not.toBe(oldKid);
    expect(kids).toContain(newKid);

    clock.advance(HOUR + 60 * SECOND + SECOND);
    await service.maintain();
    expect((await jwks(base)).map((k) => k.kid)).toEqual([newKid]);
  });
});

describe('an issuer with a path (RFC 8414 §3, RFC 9728 §3.1)', () => {
  let server: Server;
  let service: AuthmdService;
  let origin: string;
  let issuer: string;
  beforeAll(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    issuer = `${origin}/tenant`;
    service = await createService({
      issuer,
      scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
      store: createMemoryStore(),
      logger: silentLogger,
      maintenanceIntervalSeconds: 0,
    });
    const middleware = nodeMiddleware(service);
    server.on('request', (req, res) =>
      middleware(req, res, () => {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"not_found"}');
      }),
    );
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await service.close();
  });

  it('publishes the metadata at the path-suffixed well-known URLs, naming the issuer exactly', async () => {
    const as = await getJson(`${origin}${WELL_KNOWN_AS}/tenant`);
    expect(as.issuer).toBe(issuer);
    const prm = await getJson(`${origin}${WELL_KNOWN_PRM}/tenant`);
    expect(prm.resource).toBe(issuer);
    expect(prm.authorization_servers).toEqual([issuer]);
    expect((await fetch(origin + WELL_KNOWN_PRM)).status, "the origin's root may belong to another service").toBe(404);
  });

  it('advertises endpoints under the issuer path that all answer, and the flow works through them', async () => {
    const as = await getJson(`${origin}${WELL_KNOWN_AS}/tenant`);
    for (const url of [as.token_endpoint, as.revocation_endpoint, as.jwks_uri, as.agent_auth.identity_endpoint, as.agent_auth.skill]) {
      expect(url.startsWith(`${issuer}/`), url).toBe(true);
      expect((await fetch(url)).status, url).not.toBe(404);
    }
    const registered = await fetch(as.agent_auth.identity_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"type":"anonymous"}',
    });
    expect(registered.status).toBe(200);
    const { identity } = await registered.json();
    expect(decodeJwt(identity.assertion).payload.iss).toBe(issuer);
    const exchanged = await fetch(as.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion: identity.assertion }).toString(),
    });
    expect(exchanged.status).toBe(200);
  });
});

describe('a resource below the issuer (profile: RFC 9728 resource identifiers)', () => {
  let running: RunningService;
  beforeAll(async () => {
    running = await startService({ resourcePaths: ['/api'] });
  });
  afterAll(() => running.close());

  it("publishes the resource's metadata at its path-aware well-known URL, naming it exactly, and the same at the root", async () => {
    const { base } = running;
    const own = await getJson(`${base}${WELL_KNOWN_PRM}/api`);
    expect(own.resource).toBe(`${base}/api`);
    expect(own.authorization_servers).toEqual([base]);
    expect(await getJson(base + WELL_KNOWN_PRM)).toEqual(own);
    expect((await getJson(base + WELL_KNOWN_AS)).protected_resources).toEqual([`${base}/api`]);
  });

  it('the 401 of the API points at the path-aware metadata, and a token bound to the resource is accepted below it', async () => {
    const { base } = running;
    const refused = await fetch(`${base}/api/notes`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${base}${WELL_KNOWN_PRM}/api"`);
    const { identity } = await registerAnonymous(base);
    const token = await json(await exchange(base, identity.assertion));
    const accepted = await fetch(`${base}/api/notes`, { headers: { authorization: `Bearer ${token.access_token}` } });
    expect(accepted.status).toBe(200);
  });
});
