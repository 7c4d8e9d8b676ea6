import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { SafeFetchError } from './fetch-error.ts';
import { guardSocket, networkError, refusal, vettedLookup, type AddressPolicy, type Resolver } from './vetting.ts';

export { SafeFetchError, type SafeFetchErrorCode } from './fetch-error.ts';

export interface SafeFetchOptions {
  /** Development only: allow loopback addresses, and plain http to loopback hosts. */
  allowLoopback?: boolean;
  /** For the whole exchange: lookup, connect, TLS, headers and body. */
  timeoutMs?: number;
  maxBytes?: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export interface SafeResponse {
  status: number;
  /** Lowercased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

export type Fetcher = (url: string, options?: SafeFetchOptions) => Promise<SafeResponse>;

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_BYTES = 65_536;

/**
 * A fetcher for URLs that remote parties name (JWKS, CIMD, metadata): https only, special-use
 * addresses refused both when the name is resolved and once the socket is connected, no redirects,
 * a total timeout and a body cap. `resolve` replaces DNS, for tests.
 */
export function createSafeFetch(resolve?: Resolver): Fetcher {
  return (url, options = {}) => {
    try {
      return exchange(target(url, options.allowLoopback ?? false), options, resolve);
    } catch (error) {
      return Promise.reject(error);
    }
  };
}

export const safeFetch: Fetcher = createSafeFetch();

interface Target {
  url: URL;
  host: string;
  policy: AddressPolicy;
  /** Scheme, host and port: what messages name (paths and queries may carry things worth not logging). */
  origin: string;
}

function target(raw: string, allowLoopback: boolean): Target {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SafeFetchError('invalid_url', 'not a valid absolute URL');
  }
  if (url.username || url.password) throw new SafeFetchError('invalid_url', `${url.origin} URL carries credentials`);
  let policy: AddressPolicy;
  if (url.protocol === 'https:') policy = allowLoopback ? 'public-or-loopback' : 'public';
  else if (url.protocol === 'http:' && allowLoopback) policy = 'loopback-only';
  else if (url.protocol === 'http:') throw new SafeFetchError('insecure_url', `${url.origin} is not https`);
  else throw new SafeFetchError('invalid_url', `${url.protocol} URLs are not fetched, only https`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  // An IP literal is never looked up, so it is judged here, before any connection.
  if (isIP(host)) {
    const refused = refusal(host, policy, url.host);
    if (refused) throw refused;
  }
  return { url, host, policy, origin: url.origin };
}

function exchange(target: Target, options: SafeFetchOptions, resolve: Resolver | undefined): Promise<SafeResponse> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const { url, origin } = target;
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));

  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    const fail = (error: SafeFetchError) =>
      settle(() => {
        reject(error);
        req.destroy();
      });

    const timer = setTimeout(() => fail(new SafeFetchError('timeout', `${origin} did not answer within ${timeoutMs} ms`)), timeoutMs);
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)({
      protocol: url.protocol,
      hostname: target.host,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      method: options.method ?? 'GET',
      headers,
      agent: false,
      lookup: vettedLookup(target.policy, resolve),
    });

    req.on('socket', (socket: Socket) => guardSocket(socket, target.policy));
    req.on('error', (error) => fail(error instanceof SafeFetchError ? error : networkError(origin, error)));
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        return fail(new SafeFetchError('redirect', `${origin} answered ${status}; redirects are not followed`));
      }
      const tooLarge = () => new SafeFetchError('too_large', `${origin} sent more than ${maxBytes} bytes`);
      if (Number(res.headers['content-length']) > maxBytes) return fail(tooLarge());
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) fail(tooLarge());
        else chunks.push(chunk);
      });
      res.on('end', () => settle(() => resolvePromise({ status, headers: flatten(res.headers), body: Buffer.concat(chunks) })));
      res.on('error', (error) => fail(networkError(origin, error)));
      res.on('close', () => fail(new SafeFetchError('network', `${origin} closed the connection before the body ended`)));
    });
    req.end(options.body);
  });
}

function flatten(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}
