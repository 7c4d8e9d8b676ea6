import { paths } from '@authmd/protocol';
import { AuthmdPagesHuman } from '../../../packages/conformance/src/human/authmd-pages.ts';
import { registrationRequest, tokenRequest } from '../replicas.ts';
import { BENCH_ADMIN_TOKEN } from '../servers/admin-token.ts';
import type { KeptSecrets } from './fill.ts';
import { createProbe, expectOk, percentile, type Probe } from './probe.ts';

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
}

const EMAIL = 'growth@bench.example';

/** A running demo and the registrations of its fill kept for the rounds. */
export interface Target {
  base: string;
  kept: readonly KeptSecrets[];
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
 */
export async function measureOperations(targets: readonly Target[], rounds: { warmup: number; samples: number }): Promise<OperationStats[][]> {
  const needed = rounds.warmup + rounds.samples;
  for (const { kept } of targets) {
    if (kept.length < needed) throw new Error(`the growth scenario kept ${kept.length} registrations of a fill, ${needed} rounds need one each`);
  }
  const runs = targets.map((target) => ({ ...target, probe: createProbe(target.base), human: new AuthmdPagesHuman(target.base), times: new Map<Operation, number[]>(OPERATIONS.map((op) => [op, []])) }));
  try {
    for (let round = 0; round < needed; round++) {
      const turn = round % 2 === 0 ? runs : [...runs].reverse();
      for (const run of turn) {
        const record = (op: Operation, ms: number) => round >= rounds.warmup && run.times.get(op)!.push(ms);
        await measureRound(run.probe, run.human, run.kept[round]!, record);
      }
    }
  } finally {
    for (const run of runs) run.probe.close();
  }
  return runs.map(({ times }) =>
    OPERATIONS.map((operation) => {
      const values = times.get(operation)!;
      return { operation, samples: values.length, p50Ms: percentile(values, 0.5), p90Ms: percentile(values, 0.9), p99Ms: percentile(values, 0.99) };
    }),
  );
}

async function measureRound(probe: Probe, human: AuthmdPagesHuman, secrets: KeptSecrets, record: (op: Operation, ms: number) => void): Promise<void> {
  const json = { 'content-type': 'application/json' };
  const registered = expectOk('anonymous registration', await probe.send(registrationRequest));
  const exchanged = await probe.send(tokenRequest(registered.identity.assertion));
  expectOk('exchange', exchanged);
  record('exchange', exchanged.ms);

  const called = await probe.send({ path: '/api/notes', headers: { authorization: `Bearer ${secrets.accessToken}` } });
  expectOk(`API call with the access token of registration ${secrets.index} of the fill`, called);
  record('API call', called.ms);

  const started = await probe.send({ method: 'POST', path: paths.claim, headers: json, body: JSON.stringify({ type: 'service_auth', claim_token: secrets.claimToken, login_hint: EMAIL }) });
  const attempt = expectOk(`claim start of registration ${secrets.index} of the fill`, started);
  record('claim start', started.ms);
  const verificationUri = attempt.claim?.attempt?.verification_uri ?? attempt.attempt?.verification_uri;
  if (typeof verificationUri !== 'string') throw new Error(`claim start: no verification_uri in ${started.body.slice(0, 300)}`);

  const code = await human.readBack(verificationUri, EMAIL);
  const completed = await probe.send({ method: 'POST', path: paths.claimComplete, headers: json, body: JSON.stringify({ claim_token: secrets.claimToken, user_code: code }) });
  expectOk('claim completion', completed);
  record('claim completion', completed.ms);

  const admin = { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` };
  const searches: [Operation, string][] = [
    ['admin first page', '/admin/api/registrations?limit=50'],
    // Up to and including that registration's millisecond, so that the page is never empty.
    ['admin deep page', `/admin/api/registrations?limit=50&to=${encodeURIComponent(new Date(secrets.createdAt + 1).toISOString())}`],
    ['admin by email', `/admin/api/registrations?email=${encodeURIComponent(`person-${secrets.index}@bench.example`)}`],
  ];
  for (const [operation, path] of searches) {
    const answer = await probe.send({ path, headers: admin });
    const found = expectOk(operation, answer);
    if (!Array.isArray(found.registrations) || found.registrations.length === 0) throw new Error(`${operation}: no registrations in ${answer.body.slice(0, 300)}`);
    record(operation, answer.ms);
  }
}
