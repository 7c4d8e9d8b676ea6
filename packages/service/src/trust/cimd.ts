import { oneLine, isLoopback, type Fetcher } from '@authmd/core/fetch';
import { freshnessMs, type FreshnessBounds } from './cache-control.ts';
import { isObject, publicJwksProblem } from './jwk.ts';

/** An OAuth Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document), as fetched. */
export interface ClientMetadata {
  client_id: string;
  client_name?: string;
  jwks_uri?: string;
  jwks?: { keys: object[] };
  token_endpoint_auth_method?: string;
  [member: string]: unknown;
}

export type CimdErrorReason = 'invalid_client_id' | 'fetch_failed' | 'http_status' | 'invalid_document';

export class CimdError extends Error {
  override readonly name = 'CimdError';

  constructor(
    readonly reason: CimdErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const SECOND = 1_000;
const DAY = 86_400 * SECOND;
/** The draft's recommended limit. */
const MAX_BYTES = 5 * 1024;
const MAX_ENTRIES = 1_000;
const JSON_MEDIA_TYPE = /^application\/(?:[a-z0-9!#$&^_.+-]+\+)?json$/;
const SHARED_SECRET_METHODS = new Set(['client_secret_post', 'client_secret_basic', 'client_secret_jwt']);
const UNSAFE_CHARACTERS = /[\x00-\x20\x7f-\uffff\\]/;

/**
 * Why `value` cannot be a CIMD client_id, in one sentence, or undefined when it can. The raw string
 * is checked, not a parsed URL: parsing would quietly remove dot segments, turn backslashes into
 * slashes and drop empty queries and fragments, and the document must name the string as it came.
 * With `allowLoopback` (development), http is accepted for a loopback host.
 */
export function validateClientIdUrl(value: string, options: { allowLoopback?: boolean } = {}): string | undefined {
  if (UNSAFE_CHARACTERS.test(value)) return 'The client_id URL contains whitespace, control, non-ASCII or backslash characters.';
  const scheme = /^(https?):\/\//.exec(value)?.[1];
  if (scheme === undefined) return 'The client_id URL must start with https://.';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'The client_id is not a valid URL.';
  }
  if (scheme === 'http' && !(options.allowLoopback && (url.hostname === 'localhost' || isLoopback(url.hostname)))) {
    return 'The client_id URL must use https.';
  }
  const rest = value.slice(`${scheme}://`.length);
  if (value.includes('#')) return 'The client_id URL must not have a fragment.';
  if (value.includes('?')) return 'The client_id URL must not have a query.';
  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (authority === '') return 'The client_id URL must have a host.';
  if (authority.includes('@')) return 'The client_id URL must not contain a user name or password.';
  if (path === '' || path === '/') return 'The client_id URL must have a path.';
  const dotSegment = path
    .split('/')
    .map((segment) => segment.replace(/%2e/gi, '.'))
    .some((segment) => segment === '.' || segment === '..');
  if (dotSegment) return 'The client_id URL must not contain "." or ".." path segments.';
  return undefined;
}

export interface CimdResolverOptions {
  fetcher: Fetcher;
  clock: () => number;
  /** Development only: http client_ids on loopback hosts, fetched from loopback. */
  allowLoopback?: boolean;
  /** Bounds on the lifetime the document's `Cache-Control` asks for; no `max-age`, `no-store` or `no-cache` get the floor. */
  floorMs?: number;
  ceilingMs?: number;
  /** How many documents are kept; the least recently used goes first. */
  maxEntries?: number;
}

/**
 * Fetches and checks client metadata documents. Valid documents are cached within the bounds; errors
 * and invalid documents never are. Concurrent resolutions of one URL share a fetch.
 */
export class CimdResolver {
  private readonly entries = new Map<string, { metadata: ClientMetadata; freshUntil: number }>();
  private readonly inflight = new Map<string, Promise<ClientMetadata>>();
  private readonly bounds: FreshnessBounds;

  constructor(private readonly options: CimdResolverOptions) {
    const floorMs = options.floorMs ?? 30 * SECOND;
    this.bounds = { floorMs, ceilingMs: options.ceilingMs ?? DAY, defaultMs: floorMs };
  }

  resolve(clientId: string): Promise<ClientMetadata> {
    const problem = validateClientIdUrl(clientId, { allowLoopback: this.options.allowLoopback ?? false });
    if (problem !== undefined) return Promise.reject(new CimdError('invalid_client_id', problem));
    const entry = this.entries.get(clientId);
    if (entry && this.options.clock() < entry.freshUntil) {
      this.entries.delete(clientId);
      this.entries.set(clientId, entry);
      return Promise.resolve(entry.metadata);
    }
    const pending = this.inflight.get(clientId);
    if (pending) return pending;
    const loading = this.load(clientId).finally(() => this.inflight.delete(clientId));
    this.inflight.set(clientId, loading);
    return loading;
  }

  private async load(clientId: string): Promise<ClientMetadata> {
    let response;
    try {
      response = await this.options.fetcher(clientId, {
        allowLoopback: this.options.allowLoopback ?? false,
        maxBytes: MAX_BYTES,
        headers: { accept: 'application/json' },
      });
    } catch (error) {
      const detail = oneLine(String((error as Error)?.message ?? error));
      throw new CimdError('fetch_failed', `The client metadata document could not be fetched: ${detail}`, { cause: error });
    }
    if (response.status !== 200) throw new CimdError('http_status', `The client metadata document answered ${response.status}, not 200.`);
    const mediaType = (response.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (!JSON_MEDIA_TYPE.test(mediaType)) throw invalid(`its content type is ${JSON.stringify(mediaType)}, not JSON`);
    let document: unknown;
    try {
      document = JSON.parse(response.body.toString('utf8'));
    } catch {
      throw invalid('it is not valid JSON');
    }
    const problem = documentProblem(document, clientId);
    if (problem !== undefined) throw invalid(problem);
    const metadata = document as ClientMetadata;
    this.remember(clientId, metadata, freshnessMs(response.headers, this.bounds));
    return metadata;
  }

  private remember(clientId: string, metadata: ClientMetadata, lifetimeMs: number): void {
    this.entries.delete(clientId);
    this.entries.set(clientId, { metadata, freshUntil: this.options.clock() + lifetimeMs });
    const limit = this.options.maxEntries ?? MAX_ENTRIES;
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= limit) break;
      this.entries.delete(oldest);
    }
  }
}

function invalid(problem: string): CimdError {
  return new CimdError('invalid_document', `The client metadata document is refused: ${problem}.`);
}

/** Why a parsed document is not acceptable client metadata for `clientId`, or undefined. */
function documentProblem(document: unknown, clientId: string): string | undefined {
  if (!isObject(document)) return 'it is not a JSON object';
  // Simple string comparison (RFC 3986 §6.2.1): no case, port or path normalisation.
  if (document.client_id !== clientId) return 'its client_id is not the URL it was fetched from';
  for (const member of ['client_secret', 'client_secret_expires_at']) {
    if (Object.hasOwn(document, member)) return `it contains ${member}`;
  }
  for (const member of ['client_name', 'jwks_uri', 'token_endpoint_auth_method']) {
    if (Object.hasOwn(document, member) && typeof document[member] !== 'string') return `its ${member} is not a string`;
  }
  const method = document.token_endpoint_auth_method;
  if (typeof method === 'string' && (SHARED_SECRET_METHODS.has(method) || method.startsWith('client_secret'))) {
    return `its token_endpoint_auth_method ${method} uses a shared secret`;
  }
  if (Object.hasOwn(document, 'jwks')) {
    // RFC 7591 §2: jwks_uri and jwks must not both be present.
    if (Object.hasOwn(document, 'jwks_uri')) return 'it has both jwks and jwks_uri';
    const jwksProblem = publicJwksProblem(document.jwks);
    if (jwksProblem !== undefined) return `its jwks is not a set of public keys (${jwksProblem})`;
  }
  return undefined;
}
