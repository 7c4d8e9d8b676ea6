import { DuplicateKeyError } from '@authmd/core/store';
import { ProtocolError } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { retryOnConcurrentLink } from '../../src/engine/delegations.ts';

/**
 * A first ID-JAG that loses a race with a twin (another request made the account's user or link
 * first) matches again; the rounds are bounded, so no sequence of events keeps a request going round.
 */
describe('matching again after a concurrent link', () => {
  it('runs the match again after a duplicate key, and answers what the next round finds', async () => {
    let rounds = 0;
    const answer = await retryOnConcurrentLink(async () => {
      rounds++;
      if (rounds < 3) throw new DuplicateKeyError('delegations', 'key');
      return 'matched';
    });
    expect({ answer, rounds }).toEqual({ answer: 'matched', rounds: 3 });
  });

  it('gives up after three rounds with a 503 that says to retry in a second with a new ID-JAG', async () => {
    let rounds = 0;
    const failure = await retryOnConcurrentLink(async () => {
      rounds++;
      throw new DuplicateKeyError('users', 'email');
    }).catch((error: unknown) => error);
    expect(rounds).toBe(3);
    expect(failure).toBeInstanceOf(ProtocolError);
    const error = failure as ProtocolError;
    expect({ code: error.code, status: error.status, reason: error.reason, retryAfter: error.headers['Retry-After'] }).toEqual({
      code: 'temporarily_unavailable',
      status: 503,
      reason: 'link_contended',
      retryAfter: '1',
    });
    expect(error.description).toMatch(/new ID-JAG/);
  });

  it('passes any other failure on at once', async () => {
    let rounds = 0;
    const refusal = new ProtocolError('invalid_request', 'no', { reason: 'revoked' });
    await expect(
      retryOnConcurrentLink(async () => {
        rounds++;
        throw refusal;
      }),
    ).rejects.toBe(refusal);
    expect(rounds).toBe(1);
  });
});
