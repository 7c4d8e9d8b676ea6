import type { Keyring } from '@authmd/core/keys';
import { wellKnown, wellKnownUrl } from '@authmd/protocol';

/** The provider's public documents: JWKS, RFC 8414 metadata and its client ID metadata document. */

export const JWKS_PATH = '/.well-known/jwks.json';
export const CIMD_PATH = '/agent-auth.json';

const cacheHeaders = { 'Cache-Control': 'public, max-age=300', 'X-Content-Type-Options': 'nosniff' };

export interface DocumentUrls {
  issuer: string;
  jwksUri: string;
  cimdUrl: string;
  metadataUrl: string;
}

export function documentUrls(issuer: string): DocumentUrls {
  return {
    issuer,
    jwksUri: issuer + JWKS_PATH,
    cimdUrl: issuer + CIMD_PATH,
    metadataUrl: wellKnownUrl(issuer, wellKnown.authorizationServer),
  };
}

/**
 * RFC 8414 metadata, minimal and honest: the provider mints ID-JAGs on behalf of its own signed-in
 * users and has no authorization or token endpoint for others, so it lists none.
 */
export function authorizationServerMetadata(urls: DocumentUrls): Record<string, unknown> {
  return {
    issuer: urls.issuer,
    jwks_uri: urls.jwksUri,
    // REQUIRED by RFC 8414 §2; there is no authorization endpoint, so no response type is offered.
    response_types_supported: [],
    grant_types_supported: [],
  };
}

/** The client ID metadata document (draft-ietf-oauth-client-id-metadata-document): public keys only, no secret. */
export function clientMetadataDocument(urls: DocumentUrls, clientId: string, clientName: string): Record<string, unknown> {
  return {
    client_id: clientId,
    client_name: clientName,
    client_uri: urls.issuer,
    jwks_uri: urls.jwksUri,
    token_endpoint_auth_method: 'private_key_jwt',
    grant_types: ['urn:ietf:params:oauth:grant-type:jwt-bearer'],
  };
}

export type DocumentRoutes = Map<string, () => Response>;

/** The document routes by path, relative to the issuer's origin. */
export function documentRoutes(urls: DocumentUrls, keyring: Keyring, clientId: string, clientName: string): DocumentRoutes {
  const json = (body: () => string) => () => new Response(body(), { status: 200, headers: { 'Content-Type': 'application/json', ...cacheHeaders } });
  const routes: DocumentRoutes = new Map();
  routes.set(new URL(urls.jwksUri).pathname, json(() => keyring.jwks()));
  routes.set(new URL(urls.metadataUrl).pathname, json(() => JSON.stringify(authorizationServerMetadata(urls))));
  // The CIMD document is served only when the client_id is this provider's own document URL.
  if (clientId === urls.cimdUrl) routes.set(new URL(urls.cimdUrl).pathname, json(() => JSON.stringify(clientMetadataDocument(urls, clientId, clientName))));
  return routes;
}

export function documentHandler(routes: DocumentRoutes): (request: Request) => Promise<Response> {
  return async (request) => {
    const route = routes.get(new URL(request.url).pathname);
    if (!route) return jsonError(404, 'not_found', 'There is nothing here.');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return jsonError(405, 'method_not_allowed', 'Only GET is served here.', { Allow: 'GET, HEAD' });
    }
    const response = route();
    return request.method === 'HEAD' ? new Response(null, { status: response.status, headers: response.headers }) : response;
  };
}

export function jsonError(status: number, error: string, description: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error, error_description: description, message: description }), {
    status,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers },
  });
}
