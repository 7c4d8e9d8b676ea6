/** Timestamps on the wire are ISO-8601 UTC strings with milliseconds. */
export function iso(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

/** Whole seconds from `now` until `epochMs`, never negative. */
export function secondsUntil(epochMs: number, now: number): number {
  return Math.max(0, Math.floor((epochMs - now) / 1000));
}
