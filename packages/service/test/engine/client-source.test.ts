import { describe, expect, it } from 'vitest';
import { clientSource } from '../../src/engine/client-source.ts';

/** What a per-client sign-in limit counts (issue 10): an IPv4 address, or the /64 of an IPv6 one. */

describe('clientSource', () => {
  it('is the /64 of any IPv6 spelling, the IPv4 address itself, and IPv4 for IPv4-mapped peers', () => {
    expect(clientSource('192.0.2.1')).toBe('192.0.2.1');
    expect(clientSource('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientSource('2001:0DB8:0001:0002::ffff')).toBe('2001:db8:1:2::/64');
    expect(clientSource('2001:db8:1:2::')).toBe('2001:db8:1:2::/64');
    expect(clientSource('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientSource('::')).toBe('0:0:0:0::/64');
    expect(clientSource('::1')).toBe('0:0:0:0::/64');
    expect(clientSource('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientSource('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(clientSource('::FFFF:c000:201')).toBe('192.0.2.1');
    expect(clientSource('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
  });

  it('keeps anything that is not an IP address as given (a host-supplied value), trimmed', () => {
    expect(clientSource(' not-an-address ')).toBe('not-an-address');
    expect(clientSource('2001:db8::1::2')).toBe('2001:db8::1::2');
  });
});
