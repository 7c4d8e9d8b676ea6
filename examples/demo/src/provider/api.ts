import { grantJson, isProviderError, MALFORMED_PATH, malformedPath, type AgentProvider, type OutboxEntry } from '@authmd/provider';
import { tokenTypes } from '@authmd/protocol';
import { bearerToken, json, jsonError, noContent, readJsonObject } from './http.ts';
import type { Session, Sessions } from './sessions.ts';
import { providerUser, userJson } from './users.ts';

/**
 * The published sample provider's JSON API, so that tools written against it work unchanged:
 * `POST /login {email}`, `POST /grants`, `GET /grants`, `DELETE /grants/:id`, `POST /id-jag`, with
 * the same shapes and statuses. Differences, all additive or safer:
 * - `DELETE /grants/:id` always answers 204 once the grant is gone. The revocation SET is written to a
 *   durable outbox with the deletion, then one delivery attempt is made before the answer (at most
 *   2 s), so that the next request at the service is already refused; when it does not go through, the
 *   outbox retries with backoff until the service accepts it (the sample POSTed it once and answered
 *   500 `revocation_failed`, keeping the grant, when the service was unreachable). The answer says
 *   which in `Revocation-Status`: `delivered`, `queued` (the outbox has it), `failed` (the service
 *   refused it for good) or `none` (the service takes no events). A grant is for one service, so one
 *   SET: `delivered` means every service concerned has it.
 * - A grant's `audience` is the service's issuer as its metadata names it (the sample stored whatever
 *   was sent); an audience that is not an auth.md service is refused with 400 `invalid_audience`.
 * - Grants carry a `status` (`active`, `consumed`, `expired`); `GET /revocations` lists the SETs.
 */
export function sampleApi(provider: AgentProvider, sessions: Sessions): (request: Request, path: string) => Promise<Response | undefined> {
  const authenticated = async (request: Request): Promise<Session | Response> => {
    const token = bearerToken(request);
    if (!token) return unauthorized('Missing Bearer session token.');
    return (await sessions.lookup(token)) ?? unauthorized('Invalid or expired session.');
  };

  return async (request, path) => {
    const method = request.method;
    if (path === '/login') {
      if (method !== 'POST') return notAllowed('POST');
      const body = await readJsonObject(request);
      if (!body || typeof body.email !== 'string' || body.email.trim() === '') return invalid('email: a demo account email address is required.');
      const signedIn = await sessions.signIn(body.email);
      if (!signedIn) return jsonError(401, 'unknown_user', 'No demo account has this email address. Try ada@example.com or grace@example.com.');
      return json(200, { session_token: signedIn.token, user: userJson(signedIn.session.user, signedIn.session.authTime) });
    }

    if (path === '/grants') {
      if (method !== 'GET' && method !== 'POST') return notAllowed('GET, POST');
      const session = await authenticated(request);
      if (session instanceof Response) return session;
      if (method === 'GET') return json(200, { grants: (await provider.grants.list(session.user.id)).map(grantJson) });
      const body = await readJsonObject(request);
      if (!body || typeof body.audience !== 'string') return invalid('audience: the service URL is required.');
      const mode = body.mode ?? 'once';
      if (mode !== 'once' && mode !== 'always') return invalid('mode: must be "once" or "always".');
      if (body.events_uri !== undefined && typeof body.events_uri !== 'string') return invalid('events_uri: must be a URL.');
      return providerCall(async () => {
        const grant = await provider.grants.create(session.user.id, { audience: body.audience as string, mode, eventsUri: body.events_uri as string | undefined });
        return json(201, grantJson(grant));
      });
    }

    const grantPath = /^\/grants\/([^/]+)$/.exec(path);
    if (grantPath) {
      if (method !== 'DELETE') return notAllowed('DELETE');
      const session = await authenticated(request);
      if (session instanceof Response) return session;
      // toNodeListener refuses undecodable paths; this handler may be mounted without it.
      if (malformedPath(grantPath[1]!)) return invalid(MALFORMED_PATH);
      const revoked = await provider.grants.delete(session.user.id, decodeURIComponent(grantPath[1]!));
      if (!revoked) return jsonError(404, 'not_found', 'No such grant.');
      return noContent({ 'Revocation-Status': revoked.delivery });
    }

    if (path === '/revocations') {
      if (method !== 'GET') return notAllowed('GET');
      const session = await authenticated(request);
      if (session instanceof Response) return session;
      return json(200, { revocations: (await provider.outbox.list({ userId: session.user.id })).map(revocationJson) });
    }

    if (path === '/id-jag') {
      if (method !== 'POST') return notAllowed('POST');
      const session = await authenticated(request);
      if (session instanceof Response) return session;
      const body = await readJsonObject(request);
      if (!body || typeof body.audience !== 'string') return invalid('audience: the service URL is required.');
      for (const field of ['resource', 'agent_platform', 'agent_context_id'] as const) {
        if (body[field] !== undefined && typeof body[field] !== 'string') return invalid(`${field}: must be a string.`);
      }
      return providerCall(async () => {
        const minted = await provider.mintIdJag({
          user: providerUser(session.user, session.authTime),
          audience: body.audience as string,
          resource: body.resource as string | undefined,
          agentPlatform: body.agent_platform as string | undefined,
          agentContextId: body.agent_context_id as string | undefined,
        });
        return json(200, { assertion_type: tokenTypes.idJag, assertion: minted.assertion, expires_in: minted.expiresIn });
      });
    }
    return undefined;
  };
}

export function revocationJson(entry: OutboxEntry): Record<string, unknown> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    jti: entry.jti,
    grant_id: entry.grantId,
    audience: entry.audience,
    events_uri: entry.endpoint,
    status: entry.status,
    attempts: entry.attempts,
    created_at: iso(entry.createdAt),
    next_attempt_at: iso(entry.nextAttemptAt),
    last_status: entry.lastStatus,
    last_error: entry.lastError,
  };
}

async function providerCall(call: () => Promise<Response>): Promise<Response> {
  try {
    return await call();
  } catch (error) {
    if (isProviderError(error)) return jsonError(error.status, error.code, error.message);
    throw error;
  }
}

const unauthorized = (message: string): Response => jsonError(401, 'unauthorized', message, { 'WWW-Authenticate': 'Bearer' });
const invalid = (message: string): Response => jsonError(400, 'invalid_request', message);
const notAllowed = (allow: string): Response => jsonError(405, 'method_not_allowed', `Use ${allow} here.`, { Allow: allow });
