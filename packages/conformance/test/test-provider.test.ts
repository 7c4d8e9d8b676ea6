import { createHmac, createPublicKey, verify } from 'node:crypto';
import { connect, createServer as createTcpServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventSchemas } from '@authmd/protocol';
import { startTestProvider, type TestProvider } from '../src/provider/test-provider.ts';
import { startBrokenService, type BrokenService } from './fixtures/broken-service.ts';

/**
 * The conformance suite's built-in provider, proven against the real `@authmd/service` over HTTP:
 * what it mints is accepted, what it mints broken on purpose is refused, and its SET revokes.
 */

type Json = Record<string, any>;

let provider: TestProvider;
let service: BrokenService;

beforeAll(async () => {
  provider = await startTestProvider({});
  // The real service, unbroken: the demo on a memory store, trusting the provider.
  service = await startBrokenService({}, { trust: provider.trustEntry });
});

afterAll(async () => {
  await service?.close();
  await provider?.close();
});

function decode(token: string): { header: Json; payload: Json; signature: string } {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const json = (segment: string) => JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  return { header: json(header), payload: json(payload), signature };
}

async function answer(response: Response): Promise<{ status: number; headers: Headers; body: Json }> {
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : {} };
}

const get = async (url: string) => answer(await fetch(url));

const presentIdJag = async (assertion: string) =>
  answer(await fetch(`${service.base}/agent/identity`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'identity_assertion', assertion }) }));

const exchange = async (assertion: string) =>
  answer(
    await fetch(`${service.base}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
    }),
  );

const callApi = async (token: string) => answer(await fetch(`${service.base}/api/notes`, { headers: { authorization: `Bearer ${token}` } }));

/** An ID-JAG registration with a working access token. */
async function registered(email: string): Promise<{ assertion: string; accessToken: string }> {
  const registration = await presentIdJag(await provider.mintIdJag({ audience: service.base, email }));
  expect(registration.status, JSON.stringify(registration.body)).toBe(200);
  const assertion: string = registration.body.identity.assertion;
  const token = await exchange(assertion);
  expect(token.status, JSON.stringify(token.body)).toBe(200);
  expect((await callApi(token.body.access_token)).status).toBe(200);
  return { assertion, accessToken: token.body.access_token };
}

/** Whether a TCP connection to host:port is accepted. */
function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('documents', () => {
  it('serves RFC 8414 metadata naming its issuer and JWKS', async () => {
    const metadata = await get(`${provider.issuer}/.well-known/oauth-authorization-server`);
    expect(metadata.status).toBe(200);
    expect(metadata.headers.get('content-type')).toBe('application/json');
    expect(metadata.body).toMatchObject({ issuer: provider.issuer, jwks_uri: provider.jwksUri });
    expect(provider.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(provider.jwksUri).toBe(`${provider.issuer}/.well-known/jwks.json`);
  });

  it('serves a JWKS of one public ES256 key, cacheable for 5 minutes', async () => {
    const jwks = await get(provider.jwksUri);
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=300');
    expect(jwks.body.keys).toHaveLength(1);
    const [key] = jwks.body.keys;
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(typeof key.kid).toBe('string');
    expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });

  it('serves a client ID metadata document whose client_id is its own URL', async () => {
    expect(provider.clientId).toBe(`${provider.issuer}/agent-auth.json`);
    const cimd = await get(provider.clientId);
    expect(cimd.status).toBe(200);
    expect(cimd.headers.get('content-type')).toBe('application/json');
    expect(cimd.body).toMatchObject({
      client_id: provider.clientId,
      client_name: 'authmd conformance test provider',
      jwks_uri: provider.jwksUri,
      token_endpoint_auth_method: 'private_key_jwt',
    });
    expect(cimd.body).not.toHaveProperty('client_secret');
    expect(cimd.body).not.toHaveProperty('jwks');
  });

  it('gives a trust entry that names its issuer, client_id and keys', () => {
    expect(provider.trustEntry).toEqual({
      issuer: provider.issuer,
      displayName: 'authmd conformance test provider',
      clientIds: [provider.clientId],
      jwksUri: provider.jwksUri,
    });
  });

  it('answers 404 JSON for any other path and 405 for another method on a document', async () => {
    const missing = await get(`${provider.issuer}/nothing-here`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/json');
    expect(missing.body.error).toBe('not_found');
    const posted = await answer(await fetch(provider.jwksUri, { method: 'POST', body: '{}' }));
    expect(posted.status).toBe(405);
    expect(posted.body.error).toBe('method_not_allowed');
  });
});

describe('mintIdJag', () => {
  it('mints an ID-JAG the service registers (200 with credentials)', async () => {
    const idJag = await provider.mintIdJag({ audience: service.base, email: 'ada@example.com' });
    const { header, payload } = decode(idJag);
    expect(header).toMatchObject({ alg: 'ES256', typ: 'oauth-id-jag+jwt' });
    expect(payload).toMatchObject({ iss: provider.issuer, aud: service.base, client_id: provider.clientId, email: 'ada@example.com', email_verified: true });
    expect(payload.exp - payload.iat).toBe(300);
    expect(Math.abs(payload.auth_time - Date.now() / 1000)).toBeLessThan(5);

    const registration = await presentIdJag(idJag);
    expect(registration.status, JSON.stringify(registration.body)).toBe(200);
    expect(registration.body.type).toBe('identity_assertion');
    expect(typeof registration.body.identity.assertion).toBe('string');
    const token = await exchange(registration.body.identity.assertion);
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    expect((await callApi(token.body.access_token)).status).toBe(200);
  });

  it('derives a stable sub from the email, and a new jti every time', async () => {
    const [first, second, other] = await Promise.all([
      provider.mintIdJag({ audience: service.base, email: 'grace@example.com' }),
      provider.mintIdJag({ audience: service.base, email: 'Grace@Example.com' }),
      provider.mintIdJag({ audience: service.base, email: 'alan@example.com' }),
    ]);
    expect(decode(first).payload.sub).toBe(decode(second).payload.sub);
    expect(decode(first).payload.sub).not.toBe(decode(other).payload.sub);
    expect(decode(first).payload.jti).not.toBe(decode(second).payload.jti);
  });

  it('applies claim and header overrides; undefined removes a member', async () => {
    const idJag = await provider.mintIdJag({
      audience: service.base,
      email: 'ada@example.com',
      claims: { email_verified: undefined, amr: ['pwd', 'mfa'] },
      header: { typ: undefined, cty: 'x' },
    });
    const { header, payload } = decode(idJag);
    expect(payload).not.toHaveProperty('email_verified');
    expect(payload.amr).toEqual(['pwd', 'mfa']);
    expect(header).not.toHaveProperty('typ');
    expect(header.cty).toBe('x');
  });
});

describe('broken ID-JAGs are refused by the service', () => {
  const email = 'mallory@example.com';

  it('alg none: an unsigned JWT with an empty signature', async () => {
    const token = await provider.mintIdJag({ audience: service.base, email, header: { alg: 'none' } });
    expect(token.endsWith('.')).toBe(true);
    expect(decode(token).header.alg).toBe('none');
    const refused = await presentIdJag(token);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: 'invalid_request', reason: 'malformed' });
  });

  it('HS256 keyed with the published public JWK (key confusion)', async () => {
    const token = await provider.mintIdJag({ audience: service.base, email, header: { alg: 'HS256' } });
    const jwk = (await get(provider.jwksUri)).body.keys[0];
    const [h, p, s] = token.split('.') as [string, string, string];
    expect(s).toBe(createHmac('sha256', JSON.stringify(jwk)).update(`${h}.${p}`).digest('base64url'));
    expect(decode(token).header.kid).toBe(jwk.kid);
    const refused = await presentIdJag(token);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: 'invalid_request', reason: 'unsupported_algorithm' });
  });

  it.each([
    ['signWith: foreign', { signWith: 'foreign' as const }],
    ['header kid: foreign', { header: { kid: 'foreign' } }],
  ])('a foreign key, whose kid is in no JWKS (%s)', async (_name, options) => {
    const token = await provider.mintIdJag({ audience: service.base, email, ...options });
    const { kid } = decode(token).header;
    const published: Json[] = (await get(provider.jwksUri)).body.keys;
    expect(kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(published.map((key) => key.kid)).not.toContain(kid);
    const refused = await presentIdJag(token);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: 'invalid_request', reason: 'unknown_key' });
  });

  it('a foreign key under the published kid: the signature does not verify', async () => {
    const jwk = (await get(provider.jwksUri)).body.keys[0];
    const token = await provider.mintIdJag({ audience: service.base, email, signWith: 'foreign', header: { kid: jwk.kid } });
    const [h, p, s] = token.split('.') as [string, string, string];
    const publicKey = createPublicKey({ key: jwk, format: 'jwk' });
    expect(verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))).toBe(false);
    const refused = await presentIdJag(token);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: 'invalid_request', reason: 'invalid_signature' });
  });

  it.each([['JWT'], ['secevent+jwt'], [undefined]])('typ %s instead of oauth-id-jag+jwt', async (typ) => {
    const refused = await presentIdJag(await provider.mintIdJag({ audience: service.base, email, header: { typ } }));
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: 'invalid_request', reason: 'invalid_token_type' });
  });

  it('the same request unbroken is accepted (control)', async () => {
    const accepted = await presentIdJag(await provider.mintIdJag({ audience: service.base, email }));
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(200);
  });
});

describe('signSet and sendSet', () => {
  it('signs a revocation SET about the same subject as the ID-JAGs', async () => {
    const email = 'ada@example.com';
    const set = decode(await provider.signSet({ audience: service.base, email }));
    const idJag = decode(await provider.mintIdJag({ audience: service.base, email }));
    expect(set.header).toMatchObject({ alg: 'ES256', typ: 'secevent+jwt', kid: idJag.header.kid });
    expect(set.payload).toMatchObject({ iss: provider.issuer, aud: service.base, sub: idJag.payload.sub, sub_id: { format: 'iss_sub', iss: provider.issuer, sub: idJag.payload.sub } });
    expect(set.payload.events).toEqual({ [eventSchemas.assertionRevoked]: {} });
    expect(typeof set.payload.jti).toBe('string');
    expect(set.payload.toe).toBe(set.payload.iat);
    expect(set.payload).not.toHaveProperty('exp');
  });

  it('a SET it sends is accepted (202) and ends the registration', async () => {
    const email = 'revoked@example.com';
    const { assertion, accessToken } = await registered(email);
    const metadata = await get(`${service.base}/.well-known/oauth-authorization-server`);
    const eventsEndpoint: string = metadata.body.agent_auth.events_endpoint;
    expect(eventsEndpoint).toBe(`${service.base}/agent/event/notify`);

    const delivered = await provider.sendSet(eventsEndpoint, await provider.signSet({ audience: service.base, email }));
    expect(delivered.status, delivered.text).toBe(202);

    expect((await callApi(accessToken)).status).toBe(401);
    const again = await exchange(assertion);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
    // An ID-JAG minted before the revocation is refused too: the SET named the ID-JAGs' subject.
    const before = Math.floor(Date.now() / 1000) - 10;
    const stale = await presentIdJag(await provider.mintIdJag({ audience: service.base, email, claims: { iat: before, auth_time: before } }));
    expect(stale.status).toBe(400);
    expect(stale.body.reason).toBe('revoked');
  });

  it('a SET signed with the foreign key is refused (400) and revokes nothing', async () => {
    const email = 'kept@example.com';
    const { accessToken } = await registered(email);
    const refused = await provider.sendSet(`${service.base}/agent/event/notify`, await provider.signSet({ audience: service.base, email, signWith: 'foreign' }));
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text)).toMatchObject({ err: 'invalid_key' });
    expect((await callApi(accessToken)).status).toBe(200);
  });
});

describe('the server', () => {
  it('listens on 127.0.0.1 only', async () => {
    const port = Number(new URL(provider.issuer).port);
    expect(await connects('127.0.0.1', port)).toBe(true);
    const elsewhere = Object.values(networkInterfaces())
      .flat()
      .filter((entry) => entry !== undefined && !entry.internal && entry.family === 'IPv4')
      .map((entry) => entry!.address);
    // On Linux all of 127/8 reaches the loopback interface, so 127.0.0.2 tells 127.0.0.1 from 0.0.0.0.
    const ipv4Probes = [...(process.platform === 'linux' ? ['127.0.0.2'] : []), ...elsewhere];
    for (const host of [...ipv4Probes, '::1']) expect(await connects(host, port), host).toBe(false);

    // Control: the same probes do reach a server bound to every interface.
    const wildcard = createTcpServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => wildcard.listen(0, '0.0.0.0', resolve));
    try {
      const wildcardPort = (wildcard.address() as { port: number }).port;
      for (const host of ipv4Probes) expect(await connects(host, wildcardPort), host).toBe(true);
    } finally {
      await new Promise<void>((resolve) => wildcard.close(() => resolve()));
    }
  });

  it('refuses any other host, and takes a fixed port', async () => {
    await expect(startTestProvider({ host: '0.0.0.0' as '127.0.0.1' })).rejects.toThrow(/127\.0\.0\.1 only/);
    const fixed = await startTestProvider({ port: 0 });
    const port = Number(new URL(fixed.issuer).port);
    await fixed.close();
    const again = await startTestProvider({ port });
    try {
      expect(again.issuer).toBe(`http://127.0.0.1:${port}`);
      expect((await get(again.jwksUri)).status).toBe(200);
    } finally {
      await again.close();
    }
  });
});
