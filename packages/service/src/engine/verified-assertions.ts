/**
 * Identity assertions whose signature is known good, by their exact text: those this process signed,
 * and those it verified. An agent presents the same assertion at every exchange for as long as it
 * lives (an hour by default), and checking the same bytes against the same key always gives the same
 * answer, so the signature is checked once per assertion and process rather than once per exchange
 * (an ES256 verification was most of an exchange's CPU). Only the signature is remembered: the key
 * must still be one this service publishes, and `exp`, `iat`, `aud` and the registration's generation
 * are checked at every exchange as before. Nothing that failed is kept, so an attacker's tokens add
 * nothing; at most `max` are kept, the oldest dropped first.
 */
export class VerifiedAssertions {
  /** The assertion's text → when it expires (epoch ms); in insertion order, which is the eviction order. */
  private readonly known = new Map<string, number>();

  constructor(
    private readonly clock: () => number,
    private readonly max = 10_000,
  ) {}

  /** Whether `assertion`'s signature was verified (or made) here, and it has not expired. */
  has(assertion: string): boolean {
    const expiresAt = this.known.get(assertion);
    if (expiresAt === undefined) return false;
    if (expiresAt > this.clock()) return true;
    this.known.delete(assertion);
    return false;
  }

  remember(assertion: string, expiresAt: number): void {
    if (this.known.has(assertion)) return;
    if (this.known.size >= this.max) this.known.delete(this.known.keys().next().value!);
    this.known.set(assertion, expiresAt);
  }
}
