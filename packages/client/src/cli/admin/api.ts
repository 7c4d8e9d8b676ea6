import { readFileSync, statSync } from 'node:fs';
import { AuthmdClientError } from '../../errors.ts';
import { requestJson, type HttpOptions } from '../../http.ts';
import { UsageError } from '../args.ts';

/**
 * The service's admin API (`<issuer><admin.path>/api/…`) for `authmd admin`: one JSON request per
 * call, the operator token as a bearer token, and refusals turned into errors that say what to do.
 */

export type Json = Record<string, any>;

/** How long one call may take; a bulk revocation works through every match before it answers. */
const TIMEOUT_MS = 30_000;
const BULK_TIMEOUT_MS = 300_000;

export interface AdminTarget {
  /** The issuer, without a trailing slash. */
  issuer: string;
  /** `/admin`, or the service's `admin.path`. */
  adminPath: string;
}

export class AdminApi {
  private readonly base: string;

  constructor(
    readonly target: AdminTarget,
    private readonly token: string,
    private readonly fetchImpl: HttpOptions['fetch'] = (input, init) => fetch(input, init),
  ) {
    this.base = `${target.issuer}${target.adminPath}/api`;
  }

  get(path: string, query: Record<string, string | undefined>, what: string): Promise<Json> {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value !== undefined) search.set(name, value);
    const qs = search.toString();
    return this.call(`${path}${qs ? `?${qs}` : ''}`, { method: 'GET' }, what);
  }

  /**
   * An action. It is sent once, and again only when it certainly did not reach the service (a
   * refused connection): a lost answer is reported as such, for the operator to look before acting again.
   */
  post(path: string, body: Json, what: string, options: { long?: boolean } = {}): Promise<Json> {
    return this.call(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }, what, { spends: true, long: options.long });
  }

  private async call(path: string, init: RequestInit & { headers?: Record<string, string> }, what: string, options: { spends?: boolean; long?: boolean } = {}): Promise<Json> {
    const url = this.base + path;
    const http: HttpOptions = { fetch: this.fetchImpl, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)), timeoutMs: options.long ? BULK_TIMEOUT_MS : TIMEOUT_MS };
    const headers = { Accept: 'application/json', Authorization: `Bearer ${this.token}`, ...init.headers };
    const answer = await requestJson(http, url, { ...init, headers }, what, { spends: options.spends });
    if (answer.status >= 200 && answer.status < 300) {
      if (typeof answer.body === 'object' && answer.body !== null && !Array.isArray(answer.body)) return answer.body as Json;
      throw new AuthmdClientError('invalid_response', `${what}: ${url} answered ${answer.status} without a JSON object; is ${this.target.issuer} an auth.md service with its admin API at ${this.target.adminPath}?`, { status: answer.status });
    }
    throw this.refusal(answer.status, answer.body, what, path);
  }

  /** A refusal: the API's own description, then what to do about it. */
  private refusal(status: number, body: unknown, what: string, path: string): AuthmdClientError {
    const object = typeof body === 'object' && body !== null ? (body as Json) : {};
    const code = typeof object.error === 'string' ? object.error : status >= 500 ? 'server_error' : 'unexpected_response';
    const description = typeof object.error_description === 'string' ? object.error_description : undefined;
    const lines = [`${what} failed (${status} ${code})${description ? `: ${description}` : '.'}`];
    const next = this.nextStep(status, code, path);
    if (next) lines.push(next);
    return new AuthmdClientError(code, lines.join(' '), { status, body });
  }

  private nextStep(status: number, code: string, path: string): string | undefined {
    if (status === 401 || code === 'operator_unauthorized') {
      return 'Set AUTHMD_ADMIN_TOKEN (or --token-file) to an operator token of this service (one of its admin.apiTokens).';
    }
    if (code === 'unknown_registration') return "Check the id: 'authmd admin list' shows the registrations.";
    if (status === 404 || status === 405) {
      return `No admin API at ${this.base}${path.split('?')[0]}: check --service (the service's issuer) and --admin-path (the service's admin.path, default /admin), and that the service sets admin.apiTokens.`;
    }
    if (status === 400) return "Check the arguments: 'authmd admin --help'.";
    if (status === 429) return 'Wait and try again.';
    if (status >= 500) return 'The service failed: look at its logs, then try again.';
    return undefined;
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', '[::1]']);

/** `--service`, else AUTHMD_ADMIN_URL: https, or plain http only to this machine (development). */
export function issuerFrom(value: string | undefined, env: NodeJS.ProcessEnv): string {
  const given = value ?? env['AUTHMD_ADMIN_URL'];
  const source = value !== undefined ? '--service' : 'AUTHMD_ADMIN_URL';
  if (given === undefined || given.trim() === '') {
    throw new UsageError("Which service? Pass --service <issuer URL> (e.g. https://auth.example.com), or set AUTHMD_ADMIN_URL.", 'admin');
  }
  const text = given.trim();
  if (!URL.canParse(text) || !['http:', 'https:'].includes(new URL(text).protocol)) {
    throw new UsageError(`${source} "${text}" is not an http(s) URL (the service's issuer, e.g. https://auth.example.com).`, 'admin');
  }
  const url = new URL(text);
  if (url.search || url.hash) throw new UsageError(`${source} "${text}": give the issuer only, without a query or fragment.`, 'admin');
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    throw new UsageError(
      `${source} ${url.origin} is plain http: the operator token would cross the network in clear. Use https (plain http is allowed only to 127.0.0.1, ::1 and localhost, for development).`,
      'admin',
    );
  }
  return text.replace(/\/+$/, '');
}

function isLoopback(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** `--admin-path`, as the service spells `admin.path`: `/admin`, no trailing slash. */
export function adminPathFrom(value: string | undefined): string {
  if (value === undefined) return '/admin';
  const path = value.trim().replace(/\/+$/, '');
  if (!/^(\/[A-Za-z0-9][A-Za-z0-9._-]*)+$/.test(path)) throw new UsageError(`--admin-path "${value}" is not a path such as /admin.`, 'admin');
  return path;
}

/**
 * The operator token: from `--token-file` when given, else AUTHMD_ADMIN_TOKEN. Never from the
 * command line (see `screenArgv`). A file others can read is used, with a warning.
 */
export function tokenFrom(file: string | undefined, env: NodeJS.ProcessEnv, warn: (text: string) => void): string {
  let token: string;
  let source: string;
  if (file !== undefined) {
    source = `--token-file ${file}`;
    try {
      token = readFileSync(file, 'utf8').trim();
      const mode = statSync(file).mode;
      if (process.platform !== 'win32' && (mode & 0o077) !== 0) warn(`authmd: warning: ${file} can be read by other users (mode ${(mode & 0o777).toString(8)}); chmod 600 it.`);
    } catch (error) {
      throw new UsageError(`Cannot read the operator token from ${file}: ${(error as Error).message}`, 'admin');
    }
  } else {
    token = (env['AUTHMD_ADMIN_TOKEN'] ?? '').trim();
    source = 'AUTHMD_ADMIN_TOKEN';
    if (!token) {
      throw new AuthmdClientError(
        'operator_token_missing',
        'No operator token: set AUTHMD_ADMIN_TOKEN to an operator token of this service (one of its admin.apiTokens), or pass --token-file <file>.',
      );
    }
  }
  if (!token) throw new AuthmdClientError('operator_token_missing', `${source} is empty: put an operator token of this service (one of its admin.apiTokens) in it.`);
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new AuthmdClientError('operator_token_invalid', `The token in ${source} has spaces or characters a bearer token cannot have; an operator token is one line of printable characters.`);
  }
  return token;
}

/** `--token` (in any spelling) is refused before anything else: the command line is not a place for secrets. */
export function screenArgv(argv: readonly string[]): void {
  for (const arg of argv) {
    if (arg === '--') return;
    if (arg === '--token' || arg.startsWith('--token=')) {
      throw new UsageError(
        'authmd admin does not take the token on the command line (--token): it would be visible to every user in `ps` and kept in your shell history. Set AUTHMD_ADMIN_TOKEN, or pass --token-file <file> (a file only you can read).',
        'admin',
      );
    }
  }
}
