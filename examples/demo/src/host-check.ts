import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from './respond.ts';

/**
 * DNS rebinding: a web page on evil.example re-points its name at 127.0.0.1, and the browser then
 * lets it read the demo's answers as its own (the sign-in codes of /dev/mailbox.json included). Such
 * requests name evil.example in Host, so the demo's servers answer only their own host:port.
 */

const HOST = /^(?:\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/i;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** `value` as `new URL(...).host` gives it (lower case, default port dropped), or undefined when it is no host. */
function canonicalHost(value: string): string | undefined {
  const trimmed = value.trim();
  if (!HOST.test(trimmed)) return undefined;
  try {
    return new URL(`http://${trimmed}`).host;
  } catch {
    return undefined;
  }
}

/**
 * The Host values a server answers: the host:port of each URL it is reached at (its public URL, the
 * address it listens on), plus `localhost:<port>` when it listens on loopback. A rebinding page cannot
 * use `localhost`: the name never resolves to anything of the attacker's.
 */
export function ownHosts(urls: string[], listening: { host: string; port: number }): Set<string> {
  const hosts = new Set(urls.map((url) => new URL(url).host));
  if (LOOPBACK.has(listening.host)) hosts.add(`localhost:${listening.port}`);
  return hosts;
}

/**
 * True when the request's Host is one of `allowed`. A request without Host passes: browsers always
 * send it (node:http itself refuses an HTTP/1.1 request without it), and rebinding needs a browser.
 */
export function isOwnHost(req: IncomingMessage, allowed: ReadonlySet<string>): boolean {
  const header = req.headers.host;
  if (header === undefined) return true;
  const host = canonicalHost(header);
  return host !== undefined && allowed.has(host);
}

/** 421 Misdirected Request, in the service's JSON error style. */
export function refuseMisdirected(res: ServerResponse, allowed: ReadonlySet<string>): void {
  sendError(res, 421, 'misdirected_request', `This server answers only at ${[...allowed].join(', ')}, not at the host this request named.`);
}
