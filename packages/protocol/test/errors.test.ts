import { describe, expect, it } from 'vitest';
import { asciiDescription, errorCodes, errorSpec, ProtocolError, protocolError, wireCode } from '@authmd/protocol';

const RFC6749_DESCRIPTION = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/;

describe('error catalogue', () => {
  it('every code has a status and a hint that fits in error_description (RFC 6749 §5.2)', () => {
    expect(errorCodes.length).toBeGreaterThan(30);
    for (const code of errorCodes) {
      const { status, hint } = errorSpec(code);
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(hint, code).toMatch(RFC6749_DESCRIPTION);
      expect(hint.length, code).toBeGreaterThan(10);
    }
  });

  it('older dialects keep their own spellings', () => {
    expect(wireCode('already_claimed')).toBe('already_claimed');
    expect(wireCode('already_claimed', 'v0.7')).toBe('claimed_or_in_flight');
    expect(wireCode('already_claimed', 'v0.1')).toBe('previously_claimed');
    expect(wireCode('rate_limit_exceeded', 'v0.7')).toBe('rate_limited');
    expect(wireCode('invalid_grant', 'v0.7')).toBe('invalid_grant');
  });

  it('a protocol error body carries error, error_description, message, reason and extras', () => {
    const error = protocolError('login_required', 'auth_time is too old.', { reason: 'auth_time_too_old', extra: { max_age: 3600 }, detail: 'secret' });
    expect(error.status).toBe(401);
    expect(error.toBody()).toEqual({
      error: 'login_required',
      error_description: `auth_time is too old. ${errorSpec('login_required').hint}`,
      message: `auth_time is too old. ${errorSpec('login_required').hint}`,
      reason: 'auth_time_too_old',
      max_age: 3600,
    });
    expect(JSON.stringify(error.toBody())).not.toContain('secret');
  });

  it('descriptions that echo caller input are made safe', () => {
    expect(asciiDescription('bad "x" \\ é\n')).toBe('bad ?x? ? ??');
    expect(new ProtocolError('invalid_request', 'field "é" is wrong').description).toMatch(RFC6749_DESCRIPTION);
  });
});
