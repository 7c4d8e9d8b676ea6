import { describe, expect, it, vi } from 'vitest';
import { decodeJwt } from '@authmd/core/keys';
import { ProtocolError } from '@authmd/protocol';
import { exchangeAssertion } from '../../src/engine/exchange.ts';
import { registerAnonymous } from '../../src/engine/registrations.ts';
import { VerifiedAssertions } from '../../src/engine/verified-assertions.ts';
import { registrations } from '../../src/schema.ts';
import { engineContext } from './engine-context.ts';

// Counts the signature checks node:crypto is asked for (the service's own assertions are checked there).
const crypto = vi.hoisted(() => ({ verify: undefined as unknown as ReturnType<typeof vi.fn> }));
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  crypto.verify = vi.fn(original.verify);
  return { ...original, verify: crypto.verify };
});

/**
 * An identity assertion's signature is checked once per assertion and process, not at every exchange
 * (issue 13: an ES256 verification was most of an exchange's CPU). What is remembered is only that
 * these exact bytes verified; every other check still runs at every exchange.
 */
async function registered() {
  const ctx = await engineContext();
  const { identity } = await registerAnonymous(ctx, { clientIp: '192.0.2.1' });
  return { ctx, assertion: identity!.assertion };
}

async function refusal(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return error.reason;
  }
}

describe('verified identity assertions', () => {
  it('an assertion minted by this process is exchanged without a signature check', async () => {
    const { ctx, assertion } = await registered();
    crypto.verify.mockClear();
    for (let i = 0; i < 3; i++) expect((await exchangeAssertion(ctx, { assertion })).accessToken).toMatch(/^at_/);
    expect(crypto.verify).not.toHaveBeenCalled();
  });

  it('one minted elsewhere (another replica, or before a restart) is checked at its first exchange only', async () => {
    const { ctx, assertion } = await registered();
    ctx.verifiedAssertions = new VerifiedAssertions(ctx.clock);
    crypto.verify.mockClear();
    for (let i = 0; i < 3; i++) await exchangeAssertion(ctx, { assertion });
    expect(crypto.verify).toHaveBeenCalledTimes(1);
  });

  it('the same header and claims with another signature are still refused', async () => {
    const { ctx, assertion } = await registered();
    await exchangeAssertion(ctx, { assertion });
    const [header, payload, signature] = assertion.split('.');
    const flipped = `${signature!.slice(0, -2)}${signature!.endsWith('AA') ? 'AB' : 'AA'}`;
    expect(await refusal(exchangeAssertion(ctx, { assertion: `${header}.${payload}.${flipped}` }))).toBe('bad_signature');
  });

  it('a remembered assertion still expires, and a superseded one is still refused', async () => {
    const { ctx, assertion } = await registered();
    await exchangeAssertion(ctx, { assertion });
    ctx.clock.advance(ctx.config.lifetimes.assertionMs + ctx.config.clockSkewMs + 1_000);
    expect(await refusal(exchangeAssertion(ctx, { assertion }))).toBe('expired');

    const other = await registered();
    await exchangeAssertion(other.ctx, { assertion: other.assertion });
    const id = decodeJwt(other.assertion).payload.sub as string;
    const row = (await other.ctx.store.get(registrations, id))!;
    await other.ctx.store.update(registrations, id, { generation: row.generation + 1 });
    expect(await refusal(exchangeAssertion(other.ctx, { assertion: other.assertion }))).toBe('superseded');
  });

  it('keeps at most its bound, dropping the older half at once, and does not answer for what expired', () => {
    let now = 1_000;
    const known = new VerifiedAssertions(() => now, 4);
    const parts = (name: string) => ({ header: { kid: name }, payload: { sub: name }, signingInput: name, signature: Buffer.from(name) });
    for (const name of ['a', 'b', 'c', 'd', 'e']) known.remember(name, parts(name), 5_000);
    expect(['a', 'b', 'c', 'd', 'e'].map((name) => known.get(name)?.payload.sub)).toEqual([undefined, undefined, 'c', 'd', 'e']);
    known.remember('short', parts('short'), 2_000);
    expect(known.get('short')).toBeDefined();
    now = 2_000;
    expect(known.get('short')).toBeUndefined();
    expect(known.get('e')).toBeDefined();
    expect(known.get('never seen')).toBeUndefined();
  });

  it('keeps what decoding the minted assertion gives, and no caller can change it', async () => {
    const { ctx, assertion } = await registered();
    const kept = ctx.verifiedAssertions.get(assertion)!;
    expect(kept).toEqual(decodeJwt(assertion));
    expect(() => {
      (kept.payload as Record<string, unknown>).gen = 99;
    }).toThrow(TypeError);
  });
});
