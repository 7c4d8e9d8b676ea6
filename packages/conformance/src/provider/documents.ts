import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JWK } from 'jose';
import { grantTypes, mediaTypes, wellKnown } from '@authmd/protocol';

/** The test provider's public documents (the same three `@authmd/provider` serves) and the handler that serves them. */

export const CLIENT_NAME = 'authmd conformance test provider';
export const JWKS_PATH = '/.well-known/jwks.json';
export const CIMD_PATH = '/agent-auth.json';

export interface ProviderUrls {
  issuer: string;
  jwksUri: string;
  /** The client ID metadata document's URL, which is also the ID-JAGs' `client_id`. */
  clientId: string;
}

export function providerUrls(issuer: string): ProviderUrls {
  return { issuer, jwksUri: issuer + JWKS_PATH, clientId: issuer + CIMD_PATH };
}

/** Each document by its path; the JWKS holds public keys only. */
export function documents(urls: ProviderUrls, publicJwks: JWK[]): Map<string, Record<string, unknown>> {
  return new Map<string, Record<string, unknown>>([
    // RFC 8414: no authorization or token endpoint, so none is listed; response_types_supported is required.
    [wellKnown.authorizationServer, { issuer: urls.issuer, jwks_uri: urls.jwksUri, response_types_supported: [], grant_types_supported: [] }],
    [JWKS_PATH, { keys: publicJwks }],
    [
      CIMD_PATH,
      {
        client_id: urls.clientId,
        client_name: CLIENT_NAME,
        client_uri: urls.issuer,
        jwks_uri: urls.jwksUri,
        token_endpoint_auth_method: 'private_key_jwt',
        grant_types: [grantTypes.jwtBearer],
      },
    ],
  ]);
}

const servedHeaders = { 'Content-Type': mediaTypes.json, 'Cache-Control': 'public, max-age=300', 'X-Content-Type-Options': 'nosniff' };

/** GET (or HEAD) serves a document; another method on a document is 405; any other path is 404. */
export function documentHandler(routes: Map<string, Record<string, unknown>>): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    const document = routes.get(path);
    if (!document) return sendError(response, 404, 'not_found', 'There is nothing here.');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return sendError(response, 405, 'method_not_allowed', 'Only GET is served here.', { Allow: 'GET, HEAD' });
    }
    response.writeHead(200, servedHeaders);
    response.end(request.method === 'HEAD' ? undefined : JSON.stringify(document));
  };
}

function sendError(response: ServerResponse, status: number, error: string, description: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': mediaTypes.json, 'Cache-Control': 'no-store', ...headers });
  response.end(JSON.stringify({ error, error_description: description }));
}
