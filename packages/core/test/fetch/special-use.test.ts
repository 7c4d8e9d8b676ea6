import { describe, expect, it } from 'vitest';
import { isLoopback, isSpecialUse } from '../../src/fetch/special-use.ts';

const special = [
  // IPv4, one address per range and the edges of a few
  '0.0.0.0',
  '0.255.255.255',
  '10.0.0.1',
  '10.255.255.255',
  '100.64.0.1',
  '100.127.255.255',
  '169.254.169.254',
  '172.16.0.1',
  '172.31.255.255',
  '192.0.0.9',
  '192.0.2.1',
  '192.88.99.1',
  '192.168.1.1',
  '198.18.0.1',
  '198.19.255.255',
  '198.51.100.7',
  '203.0.113.7',
  '224.0.0.1',
  '239.255.255.250',
  '240.0.0.1',
  '255.255.255.255',
  // IPv6
  '::',
  '100::1',
  '2001::1', // Teredo, in 2001::/23
  '2001:1ff:ffff::1',
  '2001:db8::1',
  'fc00::1',
  'fd12:3456:789a::1',
  'fe80::1',
  'febf::1',
  'ff02::1',
  '::ffff:10.0.0.1', // mapped
  '::ffff:a9fe:a9fe', // mapped 169.254.169.254, hex form
  '::ffff:192.168.0.1',
  '64:ff9b::10.0.0.1', // NAT64
  '64:ff9b::a9fe:a9fe',
  '2002:a00:1::1', // 6to4 of 10.0.0.1
  '2002:c0a8:101::', // 6to4 of 192.168.1.1
  '::10.0.0.1', // IPv4-compatible (deprecated): not global unicast
  '64:ff9b:1::1', // local-use NAT64
  // not addresses at all
  'localhost',
  'example.com',
  '',
  'fe80::1%eth0',
  '127.1',
];

const loopback = ['127.0.0.1', '127.255.255.254', '::1', '[::1]', '::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::127.0.0.1', '2002:7f00:1::'];

const publicAddresses = [
  '93.184.216.34',
  '8.8.8.8',
  '1.1.1.1',
  '100.63.255.255', // just below 100.64/10
  '100.128.0.0', // just above it
  '172.15.255.255',
  '172.32.0.0',
  '192.0.1.1',
  '198.17.255.255',
  '198.20.0.0',
  '223.255.255.255',
  '2606:2800:220:1:248:1893:25c8:1946',
  '2001:4860:4860::8888',
  '2001:200::1', // just past 2001::/23
  '::ffff:93.184.216.34',
  '::ffff:5db8:d822',
  '64:ff9b::93.184.216.34',
  '2002:5db8:d822::1', // 6to4 of 93.184.216.34
  '[2606:2800:220:1:248:1893:25c8:1946]',
];

describe('isSpecialUse', () => {
  it.each(special)('refuses %s, with or without allowLoopback', (address) => {
    expect(isSpecialUse(address)).toBe(true);
    expect(isSpecialUse(address, { allowLoopback: true })).toBe(true);
    expect(isLoopback(address)).toBe(false);
  });

  it.each(loopback)('refuses loopback %s unless allowLoopback', (address) => {
    expect(isSpecialUse(address)).toBe(true);
    expect(isSpecialUse(address, { allowLoopback: true })).toBe(false);
    expect(isLoopback(address)).toBe(true);
  });

  it.each(publicAddresses)('allows public %s', (address) => {
    expect(isSpecialUse(address)).toBe(false);
    expect(isSpecialUse(address, { allowLoopback: true })).toBe(false);
    expect(isLoopback(address)).toBe(false);
  });
});
