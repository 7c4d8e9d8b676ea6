import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventSchemas, jwtTypes, mediaTypes } from '@authmd/protocol';
import { CLIENT_NAME, documentHandler, documents, providerUrls } from './documents.ts';
import { applyOverrides, compactJws, type Members } from './jws.ts';
import { generateSigningKey, persistentSigningKey, type SigningKey } from './keys.ts';
import type { IdJagRequest, SetRequest, SigningKeyName, TrustEntry } from './types.ts';

/**
 * The suite's own agent provider, on loopback: it publishes RFC 8414 metadata, a JWKS and a client
 * ID metadata document, and mints ID-JAGs and revocation SETs the way `@authmd/provider` does,
 * with every header member and claim open to override so that checks can send broken ones too.
 */
export interface TestProvider {
  /** `http://127.0.0.1:<port>` */
  issuer: string;
  jwksUri: string;
  /** The URL of its client ID metadata document, the ID-JAGs' `client_id`. */
  clientId: string;
  /** What the service under test must put on its trust list for this provider. */
  trustEntry: TrustEntry;
  mintIdJag(request: IdJagRequest): Promise<string>;
  signSet(request: SetRequest): Promise<string>;
  /** POSTs a SET as RFC 8935 push delivery does, and reports the answer. */
  sendSet(eventsEndpoint: string, set: string): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
}

export interface TestProviderOptions {
  /** 0 (default): any free port. */
  port?: number;
  /** Keep the signing key in this file from run to run (default: a new key each start). */
  keyFile?: string;
  /** Only loopback: the provider's keys sign anything a check asks for. */
  host?: '127.0.0.1';
}

/** A `kid` header override with this value means: sign with the foreign key, under its own kid. */
const FOREIGN = 'foreign';
const ID_JAG_LIFETIME_S = 300;
const SEND_TIMEOUT_MS = 10_000;

/** The trust-list entry for a test provider on 127.0.0.1:`port`, known before it starts (for a service started first). */
export function testProviderTrustEntry(port: number): TrustEntry {
  const urls = providerUrls(`http://127.0.0.1:${port}`);
  return { issuer: urls.issuer, displayName: CLIENT_NAME, clientIds: [urls.clientId], jwksUri: urls.jwksUri };
}

export async function startTestProvider(options: TestProviderOptions = {}): Promise<TestProvider> {
  const host = options.host ?? '127.0.0.1';
  if (host !== '127.0.0.1') throw new Error(`The test provider listens on 127.0.0.1 only, not ${String(host)}.`);
  const [published, foreign] = await Promise.all([options.keyFile ? persistentSigningKey(options.keyFile) : generateSigningKey(), generateSigningKey()]);

  const server = createServer();
  await listen(server, options.port ?? 0, host);
  const urls = providerUrls(`http://${host}:${(server.address() as AddressInfo).port}`);
  server.on('request', documentHandler(documents(urls, [published.publicJwk])));

  const sign = (typ: string, claims: Members, request: { claims?: Members; header?: Members; signWith?: SigningKeyName }): Promise<string> => {
    const keyName = request.signWith ?? (request.header?.kid === FOREIGN ? 'foreign' : 'provider');
    const key: SigningKey = keyName === 'foreign' ? foreign : published;
    const header = applyOverrides({ alg: 'ES256', kid: key.kid, typ }, request.header);
    if (header.kid === FOREIGN) header.kid = foreign.kid;
    // The key-confusion attack: HMAC keyed with the public key exactly as the JWKS serves it.
    const signer = { privateKey: key.privateKey, hmacSecret: JSON.stringify(published.publicJwk) };
    return compactJws(header, applyOverrides(claims, request.claims), signer);
  };

  return {
    issuer: urls.issuer,
    jwksUri: urls.jwksUri,
    clientId: urls.clientId,
    trustEntry: testProviderTrustEntry((server.address() as AddressInfo).port),

    mintIdJag(request) {
      const now = nowSeconds();
      const claims = {
        iss: urls.issuer,
        sub: subjectOf(request.email),
        aud: request.audience,
        client_id: urls.clientId,
        jti: randomUUID(),
        iat: now,
        exp: now + ID_JAG_LIFETIME_S,
        auth_time: now,
        email: request.email,
        email_verified: true,
      };
      return sign(jwtTypes.idJag, claims, request);
    },

    signSet(request) {
      const now = nowSeconds();
      const sub = subjectOf(request.email);
      const claims = {
        iss: urls.issuer,
        // `sub` is what auth.md services read; `sub_id` (RFC 9493) names the same subject.
        sub,
        sub_id: { format: 'iss_sub', iss: urls.issuer, sub },
        aud: request.audience,
        jti: randomUUID(),
        iat: now,
        toe: now,
        events: { [eventSchemas.assertionRevoked]: {} },
      };
      return sign(jwtTypes.secEvent, claims, request);
    },

    async sendSet(eventsEndpoint, set) {
      const response = await fetch(eventsEndpoint, {
        method: 'POST',
        headers: { 'Content-Type': mediaTypes.secEvent, Accept: mediaTypes.json },
        body: set,
        redirect: 'manual',
        signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
      });
      return { status: response.status, text: await response.text() };
    },

    close: () => {
      server.closeAllConnections();
      // A second close finds the server stopped already; that is still closed.
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Stable per address (the service matches emails case-insensitively), and reveals nothing of it. */
function subjectOf(email: string): string {
  return 'user-' + createHash('sha256').update(email.trim().toLowerCase()).digest('base64url').slice(0, 22);
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
