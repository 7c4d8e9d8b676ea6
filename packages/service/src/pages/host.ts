/** The Host header as a canonical `host[:port]`: lower case, default port dropped, IP literals normalised. */

/** A registered name, an IPv4 address or a bracketed IPv6 address, then an optional port; nothing else (no userinfo, no path). */
const HOST = /^(?:\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/i;

/** `value` (a Host header or a configured host) in the form `new URL(...).host` gives, or undefined when it is not a host. */
export function canonicalHost(value: string, protocol: string): string | undefined {
  const trimmed = value.trim();
  if (!HOST.test(trimmed)) return undefined;
  try {
    return new URL(`${protocol}//${trimmed}`).host;
  } catch {
    return undefined;
  }
}

/**
 * True when the request's Host is one of `allowed` (canonical hosts). A request without Host passes:
 * every browser sends one (HTTP/1.1 requires it, and node:http refuses HTTP/1.1 requests without it),
 * so its absence means a client that no web page controls, which DNS rebinding needs.
 */
export function hostAllowed(header: string | undefined, allowed: ReadonlySet<string>, protocol: string): boolean {
  if (header === undefined) return true;
  const host = canonicalHost(header, protocol);
  return host !== undefined && allowed.has(host);
}
