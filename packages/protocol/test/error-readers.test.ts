import { describe, expect, it } from 'vitest';
import { dialects, protocolError, ProtocolError, readErrorBody, readSetErrorBody, SetDeliveryError, wireCode, type ErrorCode } from '@authmd/protocol';

const wire = (body: unknown): unknown => JSON.parse(JSON.stringify(body));

describe('error bodies read back (readErrorBody ∘ ProtocolError.toBody)', () => {
  const errors: [ErrorCode, ProtocolError][] = [
    ['invalid_request', protocolError('invalid_request', 'login_hint: is required.')],
    ['rate_limit_exceeded', protocolError('rate_limit_exceeded', 'Too many registrations.', { extra: { retry_after: 30 } })],
    ['login_required', protocolError('login_required', 'auth_time is too old.', { reason: 'auth_time_too_old', extra: { max_age: 3600 }, detail: 'never sent' })],
    ['already_claimed', new ProtocolError('already_claimed', 'Done already, "é"')],
  ];
  for (const [code, error] of errors) {
    for (const dialect of dialects) {
      it(`${code} in ${dialect}: the dialect's spelling, the description, the reason and the extras`, () => {
        expect(readErrorBody(wire(error.toBody(dialect)))).toEqual({
          ok: true,
          value: { error: wireCode(code, dialect), description: error.description, ...(error.reason ? { reason: error.reason } : {}), extra: error.extra },
        });
      });
    }
  }

  it('a step-up 401 keeps its registration envelope among the extras', () => {
    const body = { error: 'interaction_required', message: 'Confirm the link.', claim_token: 'clm_1', claim: { token: 'clm_1' } };
    expect(readErrorBody(body)).toEqual({ ok: true, value: { error: 'interaction_required', description: 'Confirm the link.', extra: { claim_token: 'clm_1', claim: { token: 'clm_1' } } } });
  });

  it('an RFC 6749 body without auth.md\'s message reads its error_description', () => {
    expect(readErrorBody({ error: 'invalid_grant', error_description: 'Expired.' })).toEqual({ ok: true, value: { error: 'invalid_grant', description: 'Expired.', extra: {} } });
    expect(readErrorBody({ error: 'slow_down' })).toEqual({ ok: true, value: { error: 'slow_down', extra: {} } });
  });

  it('refuses a body without an error code, or with mistyped members', () => {
    expect(readErrorBody({ message: 'Something went wrong.' })).toEqual({ ok: false, message: 'error: is required' });
    expect(readErrorBody({ error: 404 })).toEqual({ ok: false, message: 'error: must be a string' });
    expect(readErrorBody({ error: 'invalid_request', error_description: { en: 'x' } })).toEqual({ ok: false, message: 'error_description: must be a string' });
    for (const body of [null, undefined, '<h1>Bad Gateway</h1>', [], 502]) expect(readErrorBody(body)).toEqual({ ok: false, message: 'body: must be a JSON object' });
  });
});

describe('SET delivery refusals read back (readSetErrorBody ∘ SetDeliveryError.toBody)', () => {
  it('round trip', () => {
    const error = new SetDeliveryError('invalid_issuer', 'The SET issuer is not trusted.');
    expect(readSetErrorBody(wire(error.toBody()))).toEqual({ ok: true, value: { err: 'invalid_issuer', description: 'The SET issuer is not trusted.' } });
  });

  it('refuses what RFC 8935 §2.3 requires and is not there', () => {
    expect(readSetErrorBody({ err: 'invalid_key' })).toEqual({ ok: false, message: 'description: is required' });
    expect(readSetErrorBody({ error: 'invalid_key', description: 'x' })).toEqual({ ok: false, message: 'err: is required' });
    expect(readSetErrorBody('invalid_key')).toEqual({ ok: false, message: 'body: must be a JSON object' });
  });
});
