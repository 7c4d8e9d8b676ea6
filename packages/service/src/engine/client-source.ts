import { isIPv4, isIPv6 } from 'node:net';

/**
 * The "source" a per-client limit counts, from the request's client IP:
 * - an IPv4 address as it is;
 * - an IPv6 address by its /64 prefix (`2001:db8:1:2::/64`): a subscriber, often a single host, gets
 *   a whole /64 and may use any address in it, so counting addresses would give it 2^64 budgets;
 * - an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, how a dual-stack socket reports an IPv4 peer)
 *   as the IPv4 address, so one client is one source whichever way the socket spells it;
 * - anything else (a host-supplied value that is not an IP) as given, trimmed.
 * A zone index (`fe80::1%eth0`) is ignored.
 */
export function clientSource(clientIp: string): string {
  const ip = clientIp.trim();
  if (isIPv4(ip)) return ip;
  const address = ip.replace(/%.*$/, '');
  if (!isIPv6(address)) return ip;
  const groups = ipv6Groups(address);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail converted). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const before = head ? head.split(':') : [];
  const after = rest ? rest.split(':') : [];
  const middle = rest === undefined ? [] : Array<string>(8 - before.length - after.length).fill('0');
  return [...before, ...middle, ...after].map((group) => parseInt(group, 16));
}
