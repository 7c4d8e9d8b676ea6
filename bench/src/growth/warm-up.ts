import { processResidentBytes } from '../child.ts';
import { BENCH_ADMIN_TOKEN } from '../servers/admin-token.ts';
import type { KeptSecrets } from './fill.ts';
import { createProbe, expectOk } from './probe.ts';

/** What a warm-up did, for the report. */
export interface WarmUp {
  requests: number;
  /** The child's resident memory before and after, where /proc tells (Linux). */
  rssBefore?: number;
  rssAfter?: number;
}

/** Requests between two readings of the child's memory. */
const BATCH = 250;
/** A batch that grew the child's memory by less than this: its caches are full. A filling 64 MiB cache grew it by about 10 MiB a batch. */
const SETTLED_BYTES = 1 << 20;
const MAX_REQUESTS = 20_000;
/** Without /proc: what filled the default 64 MiB cache at a million registrations here (about 2,500), with a margin. */
const BLIND_REQUESTS = 4_000;

/**
 * Before its timed rounds, each demo child serves reads of registrations the rounds will not use,
 * until its memory stops growing: the service is then as one that has served for a while, not one
 * that has just started.
 *
 * Why: a demo starts with SQLite's page cache empty, and each page it reads for the first time takes
 * a new slot, memory the process has never touched, which costs a page fault (about 15 µs on this VM:
 * a cold row read 32 µs with new slots, 17 µs once the cache was full, docs/decisions.md). A store of
 * a thousand registrations is smaller than the cache and loads whole in the first rounds; at a
 * million, every round of a just-started demo read new pages into new slots, and the rounds measured
 * the cache filling up (about 16,000 pages) rather than the cost of the data's size.
 *
 * The reads are the operator's search, a page of 50 registrations created before a time in the middle
 * half of a gap between two kept registrations (the rounds use only kept ones). On the large store a
 * gap holds thousands of registrations, so the warm-up reads none of the rows the rounds read nor
 * the leaves that hold them (the inner pages of the B-trees it shares, as any busy service would); on
 * the small one a gap is narrower than a page, and it reads everything, which a store that small
 * holds in memory after the first rounds anyway.
 */
export async function warmUp(child: { url: string; pid: number }, kept: readonly KeptSecrets[]): Promise<WarmUp> {
  const times = warmUpTimes(kept);
  const probe = createProbe(child.url);
  const headers = { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` };
  const rssBefore = processResidentBytes(child.pid);
  let rss = rssBefore;
  let requests = 0;
  try {
    while (requests < MAX_REQUESTS) {
      for (let i = 0; i < BATCH; i++, requests++) {
        const to = new Date(times(requests)).toISOString();
        expectOk('warm-up page', await probe.send({ path: `/admin/api/registrations?limit=50&to=${encodeURIComponent(to)}`, headers }));
      }
      const now = processResidentBytes(child.pid);
      if (now === undefined || rss === undefined) {
        if (requests >= BLIND_REQUESTS) break;
        continue;
      }
      const grew = now - rss;
      rss = now;
      if (grew < SETTLED_BYTES) break;
    }
  } finally {
    probe.close();
  }
  return { requests, rssBefore, rssAfter: rss };
}

/**
 * The `to` of the warm-up's n-th page: in the middle half of one of the gaps between consecutive
 * kept registrations (by creation time), the gaps taken in turn and the place in each spread by the
 * golden ratio, so that successive visits to a gap read different pages.
 */
export function warmUpTimes(kept: readonly KeptSecrets[]): (n: number) => number {
  const created = kept.map((k) => k.createdAt).sort((a, b) => a - b);
  if (created.length < 2) throw new Error('the warm-up needs at least two kept registrations to read between');
  const gaps = created.slice(1).map((end, i) => ({ start: created[i]!, width: end - created[i]! }));
  return (n) => {
    const gap = gaps[n % gaps.length]!;
    const place = 0.25 + 0.5 * ((Math.floor(n / gaps.length) * 0.618_033_988_75) % 1);
    return Math.floor(gap.start + place * gap.width);
  };
}
