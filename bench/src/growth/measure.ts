import { paths } from '@authmd/protocol';
import { AuthmdPagesHuman } from '../../../packages/conformance/src/human/authmd-pages.ts';
import { registrationRequest, tokenRequest } from '../replicas.ts';
import { BENCH_ADMIN_TOKEN } from '../servers/admin-token.ts';
import type { ChildStats } from '../child.ts';
import type { KeptSecrets } from './fill.ts';
import { createProbe, expectOk, percentile, type Probe, type ProbeRequest } from './probe.ts';
import { routeKey, serverP50Ms, timedSoFar } from './server-timing.ts';

/**
 * The requests whose cost must not grow with the number of registrations: four of the agent's and
 * the person's (issue 13), three of the operator's admin search (issue 15).
 */
export const OPERATIONS = ['exchange', 'API call', 'claim start', 'claim completion', 'admin first page', 'admin deep page', 'admin by email'] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface OperationStats {
  operation: Operation;
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** The p50 of the same requests as the server timed them itself (BENCH_DEMO_SERVER_TIMING), when it did. */
  serverP50Ms?: number;
}

const EMAIL = 'growth@bench.example';

/** A running demo and the registrations of its fill kept for the rounds. */
export interface Target {
  base: string;
  kept: readonly KeptSecrets[];
  /** The demo child's counters, with its own request times when it keeps them (BENCH_DEMO_SERVER_TIMING=1). */
  stats?: () => Promise<ChildStats | undefined>;
}

/**
 * `warmup + samples` rounds, one request at a time on one connection per target; each round:
 * - exchange: the identity assertion of an anonymous registration made just before (untimed);
 * - API call: the access token of a registration of the fill, used for the first time (so the
 *   service looks it up in the store, not in its cache);
 * - claim start: that registration's claim token, the read-back ceremony (current dialect);
 * - the person (authmd's pages over HTTP, untimed) signs in once, authorizes, reads the code;
 * - claim completion: the code at `/complete`;
 * - the admin search (issue 15): its first page, the page that starts at that registration's
 *   created_at (deep in the index of a large fill), and the registrations of its person by email.
 * Each round takes its own kept registration (`kept`, spread over the whole fill). With several
 * targets (the same service on a small and on a large store) the rounds alternate between them, in
 * turns whose order changes every round, so that whatever else the machine does falls on all alike.
 * Where a target's child times its requests itself, each operation's p50 in the server comes too.
 */
export async function measureOperations(targets: readonly Target[], rounds: { warmup: number; samples: number }): Promise<OperationStats[][]> {
  const needed = rounds.warmup + rounds.samples;
  for (const { kept } of targets) {
    if (kept.length < needed) throw new Error(`the growth scenario kept ${kept.length} registrations of a fill, ${needed} rounds need one each`);
  }
  const runs = targets.map((target) => ({
    ...target,
    probe: createProbe(target.base),
    human: new AuthmdPagesHuman(target.base),
    times: new Map<Operation, number[]>(OPERATIONS.map((op) => [op, []])),
    /** The route each operation's request took (server-timing.ts), learnt from the requests themselves. */
    routes: new Map<Operation, string>(),
    /** Requests the server had timed by the end of the warm-up, by route. */
    warmedUp: new Map<string, number>(),
  }));
  try {
    for (let round = 0; round < needed; round++) {
      if (round === rounds.warmup) for (const run of runs) run.warmedUp = timedSoFar((await run.stats?.())?.serverMicros);
      const turn = round % 2 === 0 ? runs : [...runs].reverse();
      for (const run of turn) {
        const record = (op: Operation, request: ProbeRequest, ms: number) => {
          run.routes.set(op, routeKey(request.method, request.path));
          if (round >= rounds.warmup) run.times.get(op)!.push(ms);
        };
        await measureRound(run.probe, run.human, run.kept[round]!, record);
      }
    }
    return await Promise.all(
      runs.map(async (run) => {
        const serverMicros = (await run.stats?.())?.serverMicros;
        return OPERATIONS.map((operation): OperationStats => {
          const values = run.times.get(operation)!;
          const route = run.routes.get(operation)!;
          const serverP50 = serverP50Ms(serverMicros, route, run.warmedUp.get(route) ?? 0);
          return {
            operation,
            samples: values.length,
            p50Ms: percentile(values, 0.5),
            p90Ms: percentile(values, 0.9),
            p99Ms: percentile(values, 0.99),
            ...(serverP50 === undefined ? {} : { serverP50Ms: serverP50 }),
          };
        });
      }),
    );
  } finally {
    for (const run of runs) run.probe.close();
  }
}

async function measureRound(probe: Probe, human: AuthmdPagesHuman, secrets: KeptSecrets, record: (op: Operation, request: ProbeRequest, ms: number) => void): Promise<void> {
  /** Sends an operation's request and records its time; the answer must be 200. */
  const timed = async (operation: Operation, request: ProbeRequest, what: string = operation) => {
    const answer = await probe.send(request);
    const body = expectOk(what, answer);
    record(operation, request, answer.ms);
    return { answer, body };
  };
  const json = { 'content-type': 'application/json' };
  const registered = expectOk('anonymous registration', await probe.send(registrationRequest));
  await timed('exchange', tokenRequest(registered.identity.assertion));
  await timed('API call', { path: '/api/notes', headers: { authorization: `Bearer ${secrets.accessToken}` } }, `API call with the access token of registration ${secrets.index} of the fill`);

  const started = await timed(
    'claim start',
    { method: 'POST', path: paths.claim, headers: json, body: JSON.stringify({ type: 'service_auth', claim_token: secrets.claimToken, login_hint: EMAIL }) },
    `claim start of registration ${secrets.index} of the fill`,
  );
  const verificationUri = started.body.claim?.attempt?.verification_uri ?? started.body.attempt?.verification_uri;
  if (typeof verificationUri !== 'string') throw new Error(`claim start: no verification_uri in ${started.answer.body.slice(0, 300)}`);

  const code = await human.readBack(verificationUri, EMAIL);
  await timed('claim completion', { method: 'POST', path: paths.claimComplete, headers: json, body: JSON.stringify({ claim_token: secrets.claimToken, user_code: code }) });

  const admin = { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` };
  const searches: [Operation, string][] = [
    ['admin first page', '/admin/api/registrations?limit=50'],
    // Up to and including that registration's millisecond, so that the page is never empty.
    ['admin deep page', `/admin/api/registrations?limit=50&to=${encodeURIComponent(new Date(secrets.createdAt + 1).toISOString())}`],
    ['admin by email', `/admin/api/registrations?email=${encodeURIComponent(`person-${secrets.index}@bench.example`)}`],
  ];
  for (const [operation, path] of searches) {
    const { answer, body } = await timed(operation, { path, headers: admin });
    if (!Array.isArray(body.registrations) || body.registrations.length === 0) throw new Error(`${operation}: no registrations in ${answer.body.slice(0, 300)}`);
  }
}
