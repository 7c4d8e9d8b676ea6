import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { nodeMiddleware, type AuthmdService } from '@authmd/service';
import { keyrings } from '../../src/schema.ts';
import type { RunningService } from '../support/harness.ts';

/** Shared helpers for the HTTP tests: JWT crafting, raw requests, and common assertions. */

export const WELL_KNOWN_PRM = '/.well-known/oauth-protected-resource';
export const WELL_KNOWN_AS = '/.well-known/oauth-authorization-server';

type Json = Record<string, any>;

export function b64url(value: string | Buffer | object): string {
  if (Buffer.isBuffer(value)) return value.toString('base64url');
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

export interface DecodedJwt {
  header: Json;
  payload: Json;
  segments: [string, string, string];
}

export function decodeJwt(token: string): DecodedJwt {
  const segments = token.split('.');
  if (segments.length !== 3) throw new Error(`not a compact JWS: ${token}`);
  const [h, p, s] = segments as [string, string, string];
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
    segments: [h, p, s],
  };
}

export function sha256b64url(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

export interface ServiceKey {
  kid: string;
  alg: string;
  privateKey: KeyObject;
  publicJwk: Json;
}

/**
 * The service's active signing key, read from the store's `keyrings` table. Reading it is legitimate
 * in a test: it lets us sign crafted assertions that differ from real ones in one claim only.
 */
export async function activeKey(service: AuthmdService): Promise<ServiceKey> {
  const row = await service.store.get(keyrings, 'service');
  if (!row) throw new Error('no keyring row');
  const key = row.keys.find((k) => k.retiredAt === null);
  if (!key) throw new Error('no active key');
  return {
    kid: key.kid,
    alg: key.alg,
    privateKey: createPrivateKey({ key: key.privateJwk as any, format: 'jwk' }),
    publicJwk: key.publicJwk as Json,
  };
}

/** Signs `header.payload` with an ES256 key (raw r||s signature, as JWS wants). */
export function signEs256(privateKey: KeyObject, header: Json, payload: Json): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}

export interface Craft {
  header?: Json;
  payload?: Json;
  /** Claims to remove from the payload. */
  drop?: string[];
  /** Header members to remove. */
  dropHeader?: string[];
}

/**
 * An assertion signed with the service's real key, starting from a real assertion's header and
 * payload and changing only what `changes` says.
 */
export async function craftAssertion(service: AuthmdService, realAssertion: string, changes: Craft = {}): Promise<string> {
  const key = await activeKey(service);
  const real = decodeJwt(realAssertion);
  const header: Json = { ...real.header, ...changes.header };
  for (const name of changes.dropHeader ?? []) delete header[name];
  const payload: Json = { ...real.payload, ...changes.payload };
  for (const name of changes.drop ?? []) delete payload[name];
  return signEs256(key.privateKey, header, payload);
}

export async function json(response: Response): Promise<Json> {
  const type = response.headers.get('content-type') ?? '';
  expect(type).toMatch(/^application\/json/);
  return response.json();
}

/** An RFC 6749 §5.1 / §5.2 response must not be cached. */
export function expectNoStore(response: Response | { headers: IncomingHttpHeaders }): void {
  const get = (name: string) =>
    response instanceof Response ? response.headers.get(name) : (response.headers[name] as string | undefined) ?? null;
  expect(get('cache-control')).toBe('no-store');
  expect(get('pragma')).toBe('no-cache');
}

/** An OAuth/profile error: status, JSON body with `error`, `error_description` and `message`. */
export async function expectError(response: Response, status: number, error: string): Promise<Json> {
  const body = await json(response);
  expect({ status: response.status, error: body.error }).toEqual({ status, error });
  expect(typeof body.error_description).toBe('string');
  expect(body.message).toBe(body.error_description);
  return body;
}

export async function expectInvalidGrant(response: Response, reason?: string | string[]): Promise<Json> {
  const body = await expectError(response, 400, 'invalid_grant');
  expectNoStore(response);
  if (typeof reason === 'string') expect(body.reason).toBe(reason);
  else if (reason) expect(reason).toContain(body.reason);
  return body;
}

/** Parses `Bearer a="b", c="d"` into its scheme and parameters. */
export function parseChallenge(header: string | null): { scheme: string; params: Record<string, string> } {
  expect(header).toBeTruthy();
  const [scheme = '', ...rest] = header!.split(' ');
  const params: Record<string, string> = {};
  for (const match of rest.join(' ').matchAll(/([A-Za-z_]+)="([^"]*)"/g)) params[match[1]!] = match[2]!;
  return { scheme, params };
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  /** The body in one piece, or in pieces (sent with Transfer-Encoding: chunked when no Content-Length is set). */
  body?: Buffer | string | (Buffer | string)[];
}

/** A request over node:http, for what fetch will not send (any method, no Content-Type, chunked pieces). */
export function rawRequest(base: string, options: RawRequest): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method: options.method ?? 'GET', path: options.path, headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
    const pieces = options.body === undefined ? [] : Array.isArray(options.body) ? options.body : [options.body];
    const write = (index: number): void => {
      if (index >= pieces.length) return void req.end();
      // The server may answer (413) and stop reading before the last piece: that is fine.
      req.write(pieces[index]!, () => setImmediate(() => write(index + 1)));
    };
    write(0);
  });
}

export function rawJson(response: RawResponse): Json {
  expect(String(response.headers['content-type'])).toMatch(/^application\/json/);
  return JSON.parse(response.body.toString('utf8'));
}

/** The service's node middleware alone (no `next`), on its own port: what a bare node:http host gets. */
export async function startBare(service: AuthmdService): Promise<{ base: string; server: Server; close(): Promise<void> }> {
  const middleware = nodeMiddleware(service);
  const server = createServer((req, res) => middleware(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Whether the server still answers a plain discovery request. */
export async function stillServes(running: RunningService): Promise<boolean> {
  const response = await fetch(`${running.base}${WELL_KNOWN_AS}`);
  return response.status === 200;
}

export const SECOND = 1000;
export const HOUR = 3600 * SECOND;
export const DAY = 24 * HOUR;
