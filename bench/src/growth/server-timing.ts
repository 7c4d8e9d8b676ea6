import { percentile } from './probe.ts';

/**
 * What the demo child times itself (BENCH_DEMO_SERVER_TIMING=1, demo-server.ts) and the growth
 * section reads next to its client's times: a request's route is its method, its path and the names
 * of its query parameters, sorted (`GET /admin/api/registrations?limit&to`), so that the admin
 * search's three kinds of page are told apart without their values.
 */
export function routeKey(method: string | undefined, url: string | undefined): string {
  let target: URL;
  try {
    target = new URL(url ?? '/', 'http://route.invalid');
  } catch {
    return `${method ?? 'GET'} (unparsable target)`;
  }
  const names = [...new Set(target.searchParams.keys())].sort();
  return `${method ?? 'GET'} ${target.pathname}${names.length ? `?${names.join('&')}` : ''}`;
}

/** Microseconds per route, as the child answers them (in the order the answers were ended). */
export type ServerMicros = Record<string, number[]>;

/** How many requests of each route the child had timed: taken after the warm-up, so that it can be left out. */
export function timedSoFar(micros: ServerMicros | undefined): Map<string, number> {
  return new Map(Object.entries(micros ?? {}).map(([route, list]) => [route, list.length]));
}

/** The p50, in milliseconds, of a route's requests after the first `skip`; undefined when none were timed. */
export function serverP50Ms(micros: ServerMicros | undefined, route: string, skip: number): number | undefined {
  const timed = micros?.[route]?.slice(skip);
  return timed?.length ? percentile(timed, 0.5) / 1000 : undefined;
}
