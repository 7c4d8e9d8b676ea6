import { BlockList, isIP } from 'node:net';

/** Which header the proxies in front of the service append to: the de facto one, or RFC 7239's. */
export type ProxyHeader = 'x-forwarded-for' | 'forwarded';

/**
 * Who may tell the service a client's address. `hops`: that many proxies stand in front of the
 * service, the nearest being the socket peer. `addresses`: the peer and every hop that is in this list
 * is a proxy; the first address outside it is the client.
 */
export type ProxyTrust = { header: ProxyHeader } & ({ hops: number } | { addresses: BlockList });

/**
 * The client's address: the socket peer, or, behind trusted proxies, the address the outermost
 * trusted proxy saw. The walk goes from the peer outwards through the header's entries, right to
 * left, and stops at the first address no trusted proxy stands for. Entries to its left were written
 * by the client and are never read. An entry that is not an address (`unknown`, an obfuscated
 * identifier, garbage) ends the walk at the proxy that wrote it, which is then the address counted.
 */
export function clientAddress(trust: ProxyTrust | undefined, peer: string | undefined, header: (name: string) => string | undefined): string | undefined {
  if (!trust) return peer;
  const entries = forwardedFor(trust.header, header(trust.header));
  // From the service outwards: the socket peer, then the header's entries right to left.
  let client = peer;
  for (let i = 0; isTrustedProxy(trust, i, client); i++) {
    if (i === entries.length) return client; // every hop was a trusted proxy: the outermost's address
    const next = entries[entries.length - 1 - i];
    if (next === undefined) return client; // that proxy wrote something that is not an address
    client = next;
  }
  return client;
}

/** Whether the i-th address from the service (0: the socket peer) is a trusted proxy. */
function isTrustedProxy(trust: ProxyTrust, i: number, address: string | undefined): boolean {
  if ('hops' in trust) return i < trust.hops;
  // An unknown peer (a Web host that gave no address) cannot be matched against a list.
  if (address === undefined) return false;
  return trust.addresses.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The addresses a forwarding header lists, left (the original client) to right (the nearest proxy);
 * an entry that is not an IP address is kept as `undefined`, so that the walk stops there.
 */
export function forwardedFor(header: ProxyHeader, value: string | undefined): (string | undefined)[] {
  if (!value) return [];
  return header === 'forwarded' ? splitOutsideQuotes(value, ',').map(forwardedElementFor) : value.split(',').map(nodeAddress);
}

/** RFC 7239 §4: `for=192.0.2.60;proto=https`, `For="[2001:db8::1]:4711"`; the `for` of one element. */
function forwardedElementFor(element: string): string | undefined {
  for (const pair of splitOutsideQuotes(element, ';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
    const raw = pair.slice(eq + 1).trim();
    return nodeAddress(raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw);
  }
  return undefined;
}

/** An IP address from a node identifier: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, `2001:db8::1`. */
function nodeAddress(text: string): string | undefined {
  const value = text.trim();
  if (isIP(value)) return value;
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(value);
  if (bracketed) return isIP(bracketed[1]!) === 6 ? bracketed[1] : undefined;
  const withPort = /^([\d.]+):\d{1,5}$/.exec(value);
  return withPort && isIP(withPort[1]!) === 4 ? withPort[1] : undefined;
}

/** Splits on `separator` except inside double-quoted strings (RFC 9110 §5.6.4, with backslash escapes). */
function splitOutsideQuotes(value: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === separator) {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts;
}
