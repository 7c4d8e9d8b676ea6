export interface FreshnessBounds {
  floorMs: number;
  ceilingMs: number;
  /** When the response says nothing about caching. */
  defaultMs: number;
}

/**
 * How long a fetched document may be reused: its `max-age` less its `Age`, held within the
 * operator's bounds. `no-store` and `no-cache` get the floor rather than a fetch per use: the floor
 * is the most often a remote party may make the service fetch. `Expires` and `s-maxage` are ignored.
 */
export function freshnessMs(headers: Record<string, string>, bounds: FreshnessBounds): number {
  const clamp = (ms: number) => Math.min(bounds.ceilingMs, Math.max(bounds.floorMs, ms));
  const directives = new Map<string, string>();
  for (const part of (headers['cache-control'] ?? '').split(',')) {
    const [name = '', value = ''] = part.split('=', 2).map((s) => s.trim());
    if (name) directives.set(name.toLowerCase(), value.replace(/^"(.*)"$/, '$1'));
  }
  if (directives.has('no-store') || directives.has('no-cache')) return bounds.floorMs;
  const maxAge = seconds(directives.get('max-age'));
  if (maxAge === undefined) return clamp(bounds.defaultMs);
  return clamp((maxAge - (seconds(headers['age']) ?? 0)) * 1000);
}

function seconds(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,10}$/.test(value) ? Number(value) : undefined;
}
