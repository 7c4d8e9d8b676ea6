/**
 * The MCP face of the agent client: the official auth.md client's three tools (protocol-reference
 * §6.1) — `authmd_authenticate`, `authmd_complete_claim`, `authmd_fetch` — with its names, arguments
 * and results, plus `authmd_wait_for_claim` for the type-in direction (the human types the agent's
 * code on the page; nothing comes back to the chat, so the agent must poll to learn the outcome).
 *
 * Results are JSON text. Failures are tool errors (`isError: true`) whose text is JSON
 * `{error, message, status}`: `error` the protocol (or client) code, `message` a sentence saying what
 * to do next, `status` the HTTP status when there was an answer, else null.
 *
 * Nothing here writes to stdout (that is the transport's); the optional `log` gets one line per tool
 * call with the tool, the issuer and the outcome — never a token, a code or a claim link.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { AgentClient } from '../client.ts';
import { AuthmdClientError } from '../errors.ts';
import { CredentialStoreCorruptError, CredentialStoreLockTimeoutError } from '../store/index.ts';
import type { AuthResult, ClaimRequiredResult, Handoff, ReadyResult } from '../types.ts';

export const MCP_SERVER_NAME = '@authmd/client';
export const MCP_SERVER_VERSION = '0.1.0';

export interface McpServerOptions {
  client: AgentClient;
  /** One line per tool call (tool, issuer, outcome); secrets never reach it. Default: silent. */
  log?: (line: string) => void;
  /** Default for `authmd_wait_for_claim`'s `timeout_seconds`. Default 40 (MCP hosts often give a tool call 60 s). */
  waitTimeoutSeconds?: number;
}

/** What `authmd_authenticate` answers when a human must act (the official shape, plus `user_code` for type-in). */
export type McpClaimRequired = Omit<ClaimRequiredResult, 'handoff'> & { /** v0.1: the address the service emailed the code to. */ emailed_to?: string };

/** What `authmd_wait_for_claim` answers when the human has not confirmed yet. */
export interface McpClaimPending extends Omit<McpClaimRequired, 'status'> {
  status: 'claim_pending';
}

export interface McpFetchResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface McpToolError {
  error: string;
  message: string;
  status: number | null;
}

const issuerArg = z.string().min(1).describe("The service's authorization server issuer URL (its base URL, e.g. https://api.example.com)");
const resourceArg = z.string().optional().describe('RFC 8707 resource URI to pin the access token to (default: the resource the service advertises)');

export function createMcpServer(options: McpServerOptions): McpServer {
  const { client } = options;
  const log = options.log ?? (() => undefined);
  const defaultWait = options.waitTimeoutSeconds ?? 40;
  const waiting = new Set<string>();
  const server = new McpServer({ name: MCP_SERVER_NAME, version: MCP_SERVER_VERSION });

  /** Runs a tool: its value as JSON text, or its failure as a JSON tool error; one log line either way. */
  const run = async (tool: string, issuerArgument: string, body: () => Promise<unknown>): Promise<CallToolResult> => {
    const issuer = issuerArgument.replace(/[\u0000-\u001f\u007f]/g, ' ');
    try {
      const value = await body();
      log(`${tool} ${issuer}: ${outcomeOf(value)}`);
      return { content: [{ type: 'text', text: JSON.stringify(value, null, 2) }] };
    } catch (error) {
      const payload = toolError(error);
      log(`${tool} ${issuer}: error ${payload.error}${payload.status === null ? '' : ` (${payload.status})`}`);
      return { isError: true, content: [{ type: 'text', text: JSON.stringify(payload, null, 2) }] };
    }
  };

  server.registerTool(
    'authmd_authenticate',
    {
      title: 'Authenticate to an auth.md service',
      description: [
        'Get an access token for a service that supports auth.md agent registration (an API that answers 401 with auth.md discovery).',
        'Reuses stored credentials for the issuer when it can; otherwise registers with the lightest method available:',
        'identity_assertion when an ID-JAG is given, service_auth when the user\'s email is given, anonymous otherwise.',
        'Giving an email for a service where this agent is registered anonymously links that registration to the user.',
        'Returns {status:"ready", access_token, ...} — or {status:"claim_required", verification_uri, ...} when the user must confirm in a browser:',
        'then show the user the verification_uri (and follow "instructions"): after they sign in and press Authorize, the page shows a code;',
        'ask them for it and call authmd_complete_claim. If a user_code is returned, the user may instead type it on the page; then call authmd_wait_for_claim.',
        'A service that speaks only the v0.1 dialect emails the user a 6-digit code instead (verification_uri is then mailto:, and emailed_to names the address): ask them for the code in that email and call authmd_complete_claim.',
        'Do not call authmd_authenticate again while a claim is pending: that replaces the link.',
        'You usually do not need the access_token yourself: authmd_fetch adds it to requests.',
      ].join(' '),
      inputSchema: {
        issuer: issuerArg,
        email: z.string().optional().describe("The user's email: registers as that user (service_auth), or claims an anonymous registration for them"),
        resource: resourceArg,
        id_jag: z.string().optional().describe('A pre-minted ID-JAG (JWT) for this service, for identity_assertion registration'),
        force_reregister: z.boolean().optional().describe('Ignore stored credentials and register anew (only when the stored registration is unusable)'),
      },
      annotations: { openWorldHint: true },
    },
    ({ issuer, email, resource, id_jag, force_reregister }) =>
      run('authmd_authenticate', issuer, async () =>
        presentAuth(
          await client.authenticate({
            issuer,
            ...(email ? { email } : {}),
            ...(resource ? { resource } : {}),
            ...(id_jag ? { idJag: id_jag } : {}),
            ...(force_reregister ? { forceReregister: true } : {}),
          }),
        ),
      ),
  );

  server.registerTool(
    'authmd_complete_claim',
    {
      title: 'Complete an auth.md claim with the code the user read back',
      description: [
        'Finish a claim started by authmd_authenticate (status "claim_required"): the user opened the verification_uri, signed in,',
        'pressed Authorize, and told you the code the page then showed (or, on a v0.1 service, the code in the email the service sent them). Pass that code as user_code.',
        'Returns {status:"ready", access_token, ..., claimed:true}. On an invalid_user_code error ask the user to check the code (tries are limited);',
        'On claim_not_completed (the answer to the code was lost before the claim completed) call this tool again with the same code;',
        'on code_resent (v0.1: the code expired, a new one was emailed) ask the user for the code in the new email;',
        'on claim_answer_lost, no_pending_claim or an expired claim call authmd_authenticate again (with the email) for a new link.',
      ].join(' '),
      inputSchema: {
        issuer: issuerArg,
        user_code: z.string().min(1).describe('The code the claim page showed the user after Authorize'),
        resource: resourceArg,
      },
      annotations: { openWorldHint: true },
    },
    ({ issuer, user_code, resource }) =>
      run('authmd_complete_claim', issuer, async () => presentReady(await client.completeClaim(issuer, user_code, resource ? { resource } : {}))),
  );

  server.registerTool(
    'authmd_fetch',
    {
      title: 'Make an authenticated request to an auth.md service',
      description: [
        "Send an HTTP request to the service's API with this agent's credentials: the bearer token is added (registering or refreshing first when needed),",
        'and a 401 is recovered from once. Returns {status, headers, body} with the body as text (JSON stays a string).',
        'A body that is JSON is sent as application/json unless a Content-Type header is given.',
        'A 403 usually means the registration lacks a scope (e.g. it is anonymous): call authmd_authenticate with the user\'s email to link it to them.',
        'A claim_required error means the user must confirm first (while they do, it keeps answering with the same link): follow its message.',
      ].join(' '),
      inputSchema: {
        issuer: issuerArg,
        url: z.string().min(1).describe('Absolute URL to request'),
        method: z.string().optional().describe('HTTP method (default GET)'),
        headers: z.record(z.string(), z.string()).optional().describe('Extra request headers (Authorization is set for you)'),
        body: z.string().optional().describe('Request body, as text'),
        resource: resourceArg,
      },
      annotations: { openWorldHint: true },
    },
    ({ issuer, url, method, headers, body, resource }) =>
      run('authmd_fetch', issuer, async () => {
        const target = absoluteUrl(url);
        const verb = (method ?? 'GET').trim().toUpperCase();
        if (body !== undefined && (verb === 'GET' || verb === 'HEAD')) {
          throw new AuthmdClientError('invalid_request', `A ${verb} request cannot have a body: use POST, PUT or PATCH, or leave the body out.`);
        }
        // Binds the issuer to its origin, so a same-origin API gets this issuer's token straight away.
        const service = await client.discover(issuer);
        await refuseWhileClaimPending(client, service.issuer);
        const sent = new Headers(headers);
        if (body !== undefined && !sent.has('content-type') && isJson(body)) sent.set('content-type', 'application/json');
        const response = await client.fetch(target, { method: verb, headers: sent, ...(body !== undefined ? { body } : {}) }, resource ? { resource } : {});
        const result: McpFetchResult = { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
        return result;
      }),
  );

  server.registerTool(
    'authmd_wait_for_claim',
    {
      title: 'Wait for the user to type the code on the claim page',
      description: [
        'Type-in direction of a claim: after authmd_authenticate returned claim_required with a user_code, and the user was told to open the',
        'verification_uri and type that code there, call this to learn the outcome (it polls the service).',
        'Returns {status:"ready", ...} once they have; {status:"claim_pending", ...} if not yet within timeout_seconds (call it again when the user says they are done);',
        'an access_denied error if the user denied the agent. Not needed when the user reads a code back to you: use authmd_complete_claim then.',
      ].join(' '),
      inputSchema: {
        issuer: issuerArg,
        resource: resourceArg,
        timeout_seconds: z.number().int().min(1).max(300).optional().describe(`How long to wait before answering claim_pending (default ${defaultWait}; keep it under your tool-call timeout)`),
      },
      annotations: { openWorldHint: true },
    },
    ({ issuer, resource, timeout_seconds }, extra) =>
      run('authmd_wait_for_claim', issuer, async () => {
        const service = await client.discover(issuer);
        const handoff = client.pendingHandoff(service.issuer);
        if (!handoff) {
          const record = (await client.status())[service.issuer];
          if (record?.claimed) return presentAuth(await client.authenticate({ issuer: service.issuer, ...(resource ? { resource } : {}) }));
          throw new AuthmdClientError('no_pending_claim', `No claim is in progress for ${service.issuer} in this server (claim tokens are kept in memory only). Call authmd_authenticate with the user's email to start one.`);
        }
        if (!handoff.userCode) {
          const where = handoff.emailedTo ? `the code the service emailed to ${handoff.emailedTo}` : 'the code the page shows after Authorize';
          throw new AuthmdClientError('invalid_request', `${service.issuer} does not offer the type-in direction: ask the user for ${where}, then call authmd_complete_claim.`);
        }
        if (waiting.has(service.issuer)) {
          throw new AuthmdClientError('invalid_request', `Already waiting for the claim at ${service.issuer} in another call; wait for that call to answer.`);
        }
        waiting.add(service.issuer);
        try {
          return await waitBounded(client, service.issuer, resource, (timeout_seconds ?? defaultWait) * 1000, extra.signal);
        } finally {
          waiting.delete(service.issuer);
        }
      }),
  );

  return server;
}

/**
 * While the user is confirming a registration that has no credentials yet (service_auth, or an
 * ID-JAG that needed interaction), a request would register anew and orphan the link they hold:
 * answer claim_required with that link instead.
 */
async function refuseWhileClaimPending(client: AgentClient, issuer: string): Promise<void> {
  const handoff = client.pendingHandoff(issuer);
  if (!handoff || Date.parse(handoff.expiresAt) <= Date.now()) return;
  const record = (await client.status())[issuer];
  if (record?.identity || record?.access_token || record?.credential) return;
  const result: ClaimRequiredResult = {
    status: 'claim_required',
    registration_id: handoff.registrationId,
    verification_uri: handoff.verificationUri,
    attempt_expires_at: handoff.expiresAt,
    instructions: mcpInstructionsFor(handoff),
    handoff,
  };
  throw new AuthmdClientError('claim_required', result.instructions, { body: result });
}

/**
 * Polls for at most `timeoutMs`, then stops the poller and lets it settle (it checks the signal
 * between polls) so that a claim granted by its last poll is not lost: its outcome is the answer.
 */
async function waitBounded(client: AgentClient, issuer: string, resource: string | undefined, timeoutMs: number, cancelled: AbortSignal): Promise<ReadyResult | McpClaimPending> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), timeoutMs);
  const onCancel = () => stop.abort();
  cancelled.addEventListener('abort', onCancel, { once: true });
  try {
    return presentReady(await client.waitForClaim(issuer, { signal: stop.signal, ...(resource ? { resource } : {}) }));
  } catch (error) {
    const handoff = client.pendingHandoff(issuer);
    if (error instanceof AuthmdClientError && error.code === 'aborted' && handoff) {
      return { ...claimFields(handoff), status: 'claim_pending', instructions: `Not confirmed yet. ${mcpInstructionsFor(handoff)}` };
    }
    throw error;
  } finally {
    clearTimeout(timer);
    cancelled.removeEventListener('abort', onCancel);
  }
}

function presentAuth(result: AuthResult): ReadyResult | McpClaimRequired {
  return result.status === 'ready' ? presentReady(result) : presentClaim(result);
}

/** The official ready shape, field for field. */
function presentReady(result: ReadyResult): ReadyResult {
  const { status, access_token, token_type, expires_in, scope, credential_type, registration_id, registration_type, claimed } = result;
  return { status, access_token, token_type, expires_in, ...(scope ? { scope } : {}), ...(credential_type ? { credential_type } : {}), registration_id, registration_type, claimed };
}

function presentClaim(result: ClaimRequiredResult): McpClaimRequired {
  return { status: 'claim_required', ...claimFields(result.handoff), instructions: mcpInstructionsFor(result.handoff) };
}

function claimFields(handoff: Handoff): Omit<McpClaimRequired, 'status' | 'instructions'> {
  return {
    registration_id: handoff.registrationId,
    verification_uri: handoff.verificationUri,
    attempt_expires_at: handoff.expiresAt,
    ...(handoff.userCode ? { user_code: handoff.userCode } : {}),
    ...(handoff.emailedTo ? { emailed_to: handoff.emailedTo } : {}),
  };
}

/** What the model should do, in the terms of these tools. */
export function mcpInstructionsFor(handoff: Handoff): string {
  const issuer = JSON.stringify(handoff.issuer);
  if (handoff.emailedTo) {
    return [
      `The service emailed a 6-digit code to ${handoff.emailedTo}. Ask the user for the code in that email, then call authmd_complete_claim with issuer ${issuer} and user_code set to that code.`,
      `The code works until about ${handoff.expiresAt}. Do not call authmd_authenticate again meanwhile: that sends another email.`,
    ].join(' ');
  }
  const steps = [`Show the user this link and ask them to open it and sign in: ${handoff.verificationUri}`];
  const readBack = handoff.readBack || !handoff.userCode;
  if (readBack) {
    steps.push(`After they press Authorize the page shows a code: ask them for it, then call authmd_complete_claim with issuer ${issuer} and user_code set to that code.`);
  }
  if (handoff.userCode) {
    steps.push(
      `${readBack ? 'Alternatively, tell them' : 'Tell them'} to type the code ${handoff.userCode} on that page; then call authmd_wait_for_claim with issuer ${issuer}.`,
    );
  }
  steps.push(`The link works until ${handoff.expiresAt}. Do not call authmd_authenticate again meanwhile: that replaces the link.`);
  return steps.join(' ');
}

/** Any failure as the official `{error, message, status}`; a needed claim carries its link too. */
export function toolError(error: unknown): McpToolError & Partial<Omit<McpClaimRequired, 'status'>> {
  if (error instanceof AuthmdClientError) {
    const claim = error.code === 'claim_required' ? claimOf(error.details.body) : undefined;
    if (claim) {
      const { status: _status, instructions, ...link } = claim;
      return { error: 'claim_required', message: `The user must confirm this agent first. ${instructions}`, status: 401, ...link };
    }
    return { error: error.code, message: error.message, status: error.details.status ?? (error.code === 'claim_required' ? 401 : null) };
  }
  if (error instanceof CredentialStoreCorruptError) return { error: 'store_corrupt', message: error.message, status: null };
  if (error instanceof CredentialStoreLockTimeoutError) return { error: 'store_locked', message: error.message, status: null };
  const message = error instanceof Error ? error.message : String(error);
  return { error: 'internal_error', message: `The auth.md client failed unexpectedly: ${message}`, status: null };
}

function claimOf(body: unknown): McpClaimRequired | undefined {
  const result = body as Partial<ClaimRequiredResult> | undefined;
  return result?.status === 'claim_required' && result.handoff ? presentClaim(result as ClaimRequiredResult) : undefined;
}

function outcomeOf(value: unknown): string {
  const result = value as { status?: unknown; registration_type?: unknown; claimed?: unknown };
  if (result.status === 'ready') return `ready (${String(result.registration_type)}${result.claimed ? ', claimed' : ''})`;
  return typeof result.status === 'number' ? `HTTP ${result.status}` : String(result.status);
}

function absoluteUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AuthmdClientError('invalid_request', `${JSON.stringify(url)} is not an absolute URL: give the full URL, e.g. https://api.example.com/v1/items.`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new AuthmdClientError('invalid_request', `Only http and https URLs can be fetched, not ${parsed.protocol}.`);
  }
  return parsed.href;
}

function isJson(text: string): boolean {
  const start = text.trimStart()[0];
  if (start !== '{' && start !== '[') return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
