import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * Special-use addresses (RFC 6890 and the IANA special-purpose registries): nothing the service
 * fetches on a remote party's say-so may live there (standards.md A8, A15; RFC 9728 §7.7).
 */
const SPECIAL_IPV4: [string, number][] = [
  ['0.0.0.0', 8], // "this network"; 0.0.0.0 itself reaches the local host
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata endpoints
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, includes 255.255.255.255
];

/**
 * IPv6 outside 2000::/3 is not global unicast at all (::, ::1, 100::/64, fc00::/7, fe80::/10,
 * ff00::/8, IPv4-compatible and SIIT forms, local-use NAT64 64:ff9b:1::/48, ...), so the whole
 * complement is blocked; the mapped and NAT64 forms are judged by their IPv4 address before that.
 */
const SPECIAL_IPV6: [string, number][] = [
  ['::', 3],
  ['4000::', 2],
  ['8000::', 1],
  ['2001::', 23], // IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
];

const special4 = blockList(SPECIAL_IPV4, 'ipv4');
const special6 = blockList(SPECIAL_IPV6, 'ipv6');
const loopback4 = blockList([['127.0.0.0', 8]], 'ipv4');

/**
 * Whether `address` is special-use, so must not be connected to. Anything that is not a plain IP
 * address (a name, a zone-scoped address, garbage) counts as special: it cannot be vouched for.
 * With `allowLoopback`, 127/8 and ::1 (and IPv6 forms embedding 127/8) are allowed, nothing else.
 */
export function isSpecialUse(address: string, options: { allowLoopback?: boolean } = {}): boolean {
  const ip = unbracket(address);
  if (isIPv4(ip)) return special4.check(ip, 'ipv4') && !(options.allowLoopback && loopback4.check(ip, 'ipv4'));
  if (!isIPv6(ip) || ip.includes('%')) return true;
  const groups = ipv6Groups(ip);
  const embedded = embeddedIPv4(groups);
  if (embedded !== undefined) return isSpecialUse(embedded, options);
  if (isIPv6Loopback(groups)) return !options.allowLoopback;
  return special6.check(ip, 'ipv6');
}

/** Whether `address` is a loopback address: 127/8, ::1, or an IPv6 form embedding 127/8. */
export function isLoopback(address: string): boolean {
  return isSpecialUse(address) && !isSpecialUse(address, { allowLoopback: true });
}

function blockList(ranges: [string, number][], type: 'ipv4' | 'ipv6'): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of ranges) list.addSubnet(network, prefix, type);
  return list;
}

function unbracket(address: string): string {
  return address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
}

/** The eight 16-bit groups of a valid IPv6 address (a trailing dotted quad becomes two groups). */
function ipv6Groups(ip: string): number[] {
  const lastColon = ip.lastIndexOf(':');
  const tail = ip.slice(lastColon + 1);
  let text = ip;
  if (tail.includes('.')) {
    const [a, b, c, d] = tail.split('.').map(Number) as [number, number, number, number];
    text = `${ip.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** The IPv4 address inside an IPv4-mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address. */
function embeddedIPv4(g: number[]): string | undefined {
  const zero = (from: number, to: number) => g.slice(from, to).every((group) => group === 0);
  if (zero(0, 5) && g[5] === 0xffff) return dotted(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return dotted(g[6]!, g[7]!);
  if (g[0] === 0x2002) return dotted(g[1]!, g[2]!);
  return undefined;
}

function isIPv6Loopback(g: number[]): boolean {
  return g.slice(0, 7).every((group) => group === 0) && g[7] === 1;
}

function dotted(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}
