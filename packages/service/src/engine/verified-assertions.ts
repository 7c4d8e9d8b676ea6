/**
 * Identity assertions whose signature is known good, by their exact text: those this process signed,
 * and those it verified. An agent exchanges the assertion it was just given (at registration, at a
 * refresh), and again while it lives (an hour by default) when its access token runs out; checking
 * the same bytes against the same key always gives the same answer, so an assertion minted here is
 * never checked, and one minted elsewhere once per process (an ES256 verification was most of an
 * exchange's CPU). Only the signature is remembered: the key must still be one this service
 * publishes, and `exp`, `iat`, `aud` and the registration's generation are checked at every exchange
 * as before. Nothing that failed is kept, so an attacker's tokens add nothing; at most `max` are
 * kept, the older half dropped at once when the newer half is full.
 */
import type { JwtParts } from '@authmd/core/keys';

interface Known {
  /** When the assertion expires (epoch ms): it is not answered for after that. */
  expiresAt: number;
  /** Its header and claims, decoded once (frozen: every caller reads the same objects). */
  parts: Readonly<JwtParts>;
}

export class VerifiedAssertions {
  /**
   * The assertion's text → what is known of it, in two generations: when the newer holds half
   * the bound it becomes the older, and the older is dropped whole. Dropping the oldest entry of one
   * Map instead walks over the holes earlier deletions left at its front (2% of a registration's CPU).
   */
  private newer = new Map<string, Known>();
  private older = new Map<string, Known>();

  constructor(
    private readonly clock: () => number,
    private readonly max = 10_000,
  ) {}

  /** The decoded parts of `assertion` when its signature was verified (or made) here and it has not expired. */
  get(assertion: string): Readonly<JwtParts> | undefined {
    const known = this.newer.get(assertion) ?? this.older.get(assertion);
    return known && known.expiresAt > this.clock() ? known.parts : undefined;
  }

  remember(assertion: string, parts: JwtParts, expiresAt: number): void {
    if (this.newer.has(assertion)) return;
    if (this.newer.size >= this.max / 2) {
      this.older = this.newer;
      this.newer = new Map();
    }
    Object.freeze(parts.header);
    Object.freeze(parts.payload);
    this.newer.set(assertion, { expiresAt, parts: Object.freeze(parts) });
  }
}
