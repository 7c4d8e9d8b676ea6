import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig, type ServiceOptions } from '../../src/config.ts';
import { clientAddress, forwardedFor, type ProxyTrust } from '../../src/http/client-address.ts';

/** trustProxy: which address the per-IP limits count, behind which proxies (issue 14, "Client IP"). */

function trust(trustProxy: ServiceOptions['trustProxy'], proxyHeader?: ServiceOptions['proxyHeader']): ProxyTrust | undefined {
  return resolveConfig({ issuer: 'https://notes.example.com', scopes: { preClaim: [], postClaim: ['notes.read'] }, trustProxy, proxyHeader }).proxyTrust;
}

const headers =
  (given: Record<string, string>) =>
  (name: string): string | undefined =>
    given[name];

describe('without trustProxy', () => {
  it('the socket peer is the client, whatever the forwarding headers say', () => {
    expect(trust(undefined)).toBeUndefined();
    expect(trust(0)).toBeUndefined();
    expect(clientAddress(trust(undefined), '198.51.100.7', headers({ 'x-forwarded-for': '203.0.113.1', forwarded: 'for=203.0.113.2' }))).toBe('198.51.100.7');
  });
});

describe('a number of proxies', () => {
  const xff = (value: string) => headers({ 'x-forwarded-for': value });

  it('one proxy: the last X-Forwarded-For entry, the address that proxy saw; entries the client wrote itself are ignored', () => {
    expect(clientAddress(trust(1), '10.0.0.2', xff('203.0.113.1'))).toBe('203.0.113.1');
    expect(clientAddress(trust(1), '10.0.0.2', xff('6.6.6.6, 203.0.113.1'))).toBe('203.0.113.1');
  });

  it('two proxies: the entry one further left', () => {
    expect(clientAddress(trust(2), '10.0.0.2', xff('6.6.6.6, 203.0.113.1, 10.0.0.9'))).toBe('203.0.113.1');
  });

  it('fewer entries than proxies: the leftmost, which a trusted proxy wrote; no header: the peer', () => {
    expect(clientAddress(trust(3), '10.0.0.2', xff('203.0.113.1'))).toBe('203.0.113.1');
    expect(clientAddress(trust(1), '10.0.0.2', headers({}))).toBe('10.0.0.2');
  });

  it('repeated headers, joined by the host with commas, read as one list', () => {
    expect(clientAddress(trust(1), '10.0.0.2', xff('6.6.6.6, 203.0.113.1'))).toBe('203.0.113.1');
  });

  it('no peer (a Web host that gave no address): the proxies are counted from the header alone', () => {
    expect(clientAddress(trust(1), undefined, xff('6.6.6.6, 203.0.113.1'))).toBe('203.0.113.1');
    expect(clientAddress(trust(1), undefined, headers({}))).toBeUndefined();
  });

  it('an entry that is not an address ends the walk at the proxy that wrote it', () => {
    expect(clientAddress(trust(1), '10.0.0.2', xff('203.0.113.1, garbage'))).toBe('10.0.0.2');
    expect(clientAddress(trust(2), '10.0.0.2', xff('unknown, 10.0.0.9'))).toBe('10.0.0.9');
  });

  it('ports and brackets are removed; IPv6 is kept as an address', () => {
    expect(forwardedFor('x-forwarded-for', '203.0.113.1:4711, [2001:db8::1]:443, 2001:db8::2, [2001:db8::3]')).toEqual([
      '203.0.113.1',
      '2001:db8::1',
      '2001:db8::2',
      '2001:db8::3',
    ]);
    expect(forwardedFor('x-forwarded-for', '1.2.3.4.5, 999.1.1.1, [203.0.113.1], ::ffff:zz, ')).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('the header the proxies do not use is ignored: a client cannot forge its address through it', () => {
    expect(clientAddress(trust(1), '10.0.0.2', headers({ forwarded: 'for=6.6.6.6' }))).toBe('10.0.0.2');
    expect(clientAddress(trust(1, 'forwarded'), '10.0.0.2', headers({ 'x-forwarded-for': '6.6.6.6' }))).toBe('10.0.0.2');
  });
});

describe('a list of proxy addresses', () => {
  const xff = (value: string) => headers({ 'x-forwarded-for': value });

  it('the first address from the right that is not a listed proxy is the client', () => {
    const proxies = trust(['10.0.0.0/8', '192.0.2.10']);
    expect(clientAddress(proxies, '10.1.2.3', xff('6.6.6.6, 203.0.113.1, 192.0.2.10, 10.0.0.9'))).toBe('203.0.113.1');
  });

  it('a peer that is not a listed proxy is the client: its forwarding header is never read', () => {
    expect(clientAddress(trust(['10.0.0.0/8']), '198.51.100.7', xff('203.0.113.1'))).toBe('198.51.100.7');
  });

  it('an IPv4 proxy matches when the socket reports it IPv4-mapped; IPv6 ranges match', () => {
    expect(clientAddress(trust(['127.0.0.1']), '::ffff:127.0.0.1', xff('203.0.113.1'))).toBe('203.0.113.1');
    expect(clientAddress(trust(['2001:db8::/32']), '2001:db8:5::1', xff('2001:db8:ffff::1, 2a00::1'))).toBe('2a00::1');
  });

  it('only proxies all the way: the leftmost address', () => {
    expect(clientAddress(trust(['10.0.0.0/8']), '10.0.0.1', xff('10.0.0.3, 10.0.0.2'))).toBe('10.0.0.3');
  });

  it('no peer: no address, since a list cannot vouch for an unknown sender', () => {
    expect(clientAddress(trust(['10.0.0.0/8']), undefined, xff('203.0.113.1'))).toBeUndefined();
  });
});

describe('RFC 7239 Forwarded', () => {
  const forwarded = (value: string) => headers({ forwarded: value });

  it('reads the for= of each element, quoted or not, with ports and IPv6 brackets, case-insensitively', () => {
    expect(forwardedFor('forwarded', 'for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711", for="198.51.100.1:80"')).toEqual([
      '192.0.2.60',
      '2001:db8:cafe::17',
      '198.51.100.1',
    ]);
  });

  it('a comma or semicolon inside a quoted value does not split it; unknown, obfuscated and missing for= are not addresses', () => {
    expect(forwardedFor('forwarded', 'for="_a,b";by=x, for=unknown, proto=https, for=_hidden')).toEqual([undefined, undefined, undefined, undefined]);
    expect(forwardedFor('forwarded', 'by="a;b";for=203.0.113.9')).toEqual(['203.0.113.9']);
  });

  it('behind one proxy: the element it appended', () => {
    expect(clientAddress(trust(1, 'forwarded'), '10.0.0.2', forwarded('for=6.6.6.6, for="[2001:db8::7]:1234"'))).toBe('2001:db8::7');
  });
});

describe('configuration', () => {
  it.each([
    [-1, /whole number from 0 to 32/],
    [1.5, /whole number from 0 to 32/],
    [33, /whole number from 0 to 32/],
    [[], /non-empty list/],
    [['10.0.0.0/33'], /"10.0.0.0\/33" is not an IP address or CIDR range/],
    [['2001:db8::/129'], /is not an IP address or CIDR range/],
    [['proxy.internal'], /"proxy.internal" is not an IP address or CIDR range/],
    [['10.0.0.0/8/1'], /is not an IP address or CIDR range/],
    [['10.0.0.0/'], /is not an IP address or CIDR range/],
    [[42], /"42" is not an IP address or CIDR range/],
  ] as [ServiceOptions['trustProxy'], RegExp][])('refuses trustProxy %j with a message that says what is expected', (value, message) => {
    expect(() => trust(value)).toThrow(ConfigError);
    expect(() => trust(value)).toThrow(message);
  });

  it('refuses an unknown proxyHeader', () => {
    expect(() => trust(1, 'x-real-ip' as never)).toThrow(/proxyHeader: "x-real-ip" is not one of x-forwarded-for, forwarded/);
  });
});
