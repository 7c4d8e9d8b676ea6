import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { processCpuSeconds, processWrites, type ServerChild } from '../src/child.ts';
import { combineSlices, measurePaired, type LoadResult } from '../src/load.ts';

/** A real HTTP server in this process, as a ServerChild, that remembers when each request came and what it carried. */
async function recordingServer(name: string, arrivals: { name: string; body: string }[]): Promise<ServerChild & { server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      arrivals.push({ name, body });
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as { port: number };
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    pid: process.pid,
    cpuSeconds: () => processCpuSeconds(process.pid),
    writes: () => processWrites(process.pid),
    stats: async () => undefined,
    stop: () => new Promise<void>((closed) => server.close(() => closed())),
  };
}

// Slices of one second (autocannon's shortest: it stops at a one-second sample); no warm-up but where one is tested.
const settings = { seconds: 2, warmupSeconds: 0, connections: 2, pipelining: 1 };
const servers: ServerChild[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

describe('measurePaired: a scenario in slices alternating with its ceiling', () => {
  it('warms both up, then runs ceiling, scenario, scenario, ceiling (ABBA), and combines each side', async () => {
    const arrivals: { name: string; body: string }[] = [];
    const ceiling = await recordingServer('ceiling', arrivals);
    const scenario = await recordingServer('scenario', arrivals);
    servers.push(ceiling, scenario);

    const paired = await measurePaired({ server: ceiling, request: { path: '/' } }, { server: scenario, request: { path: '/' } }, { ...settings, warmupSeconds: 1 }, 2);

    // The order in which the servers were loaded, as runs of one name: the warm-ups (ceiling, then
    // scenario), then the rounds C S | S C, where the two scenario slices meet.
    const runs = arrivals.map((a) => a.name).filter((name, i, all) => i === 0 || all[i - 1] !== name);
    expect(runs).toEqual(['ceiling', 'scenario', 'ceiling', 'scenario', 'ceiling']);
    expect(paired.slices.ceiling).toHaveLength(2);
    expect(paired.slices.scenario).toHaveLength(2);
    expect(paired.ceiling.requestsPerSecond).toBeCloseTo(paired.slices.ceiling.reduce((a, b) => a + b, 0) / 2, 6);
    expect(paired.scenario.total2xx).toBeGreaterThan(0);
    expect(paired.scenario.non2xx).toBe(0);
    const measured = arrivals.filter((a) => a.name === 'scenario').length;
    expect(paired.scenario.total2xx).toBeLessThanOrEqual(measured); // the warm-up's requests are not counted
  });

  it('sends a rotation of bodies on where the last slice stopped, so that each body goes once', async () => {
    const arrivals: { name: string; body: string }[] = [];
    const ceiling = await recordingServer('ceiling', arrivals);
    const scenario = await recordingServer('scenario', arrivals);
    servers.push(ceiling, scenario);
    const bodies = Array.from({ length: 200_000 }, (_, i) => `{"n":${i}}`);

    const paired = await measurePaired({ server: ceiling, request: { path: '/' } }, { server: scenario, request: { method: 'POST', path: '/', bodies } }, settings, 2);

    const sent = arrivals.filter((a) => a.name === 'scenario').map((a) => a.body);
    expect(sent.length).toBeGreaterThan(100);
    expect(new Set(sent).size).toBe(sent.length); // with the rotation restarted per slice, the first bodies came twice
    expect(paired.scenario.bodiesReused).toBe(false);
  });

  it('says so when the bodies ran out and some were sent again', async () => {
    const arrivals: { name: string; body: string }[] = [];
    const ceiling = await recordingServer('ceiling', arrivals);
    const scenario = await recordingServer('scenario', arrivals);
    servers.push(ceiling, scenario);
    const bodies = ['{"n":0}', '{"n":1}', '{"n":2}'];

    const paired = await measurePaired({ server: ceiling, request: { path: '/' } }, { server: scenario, request: { method: 'POST', path: '/', bodies } }, { ...settings, seconds: 1 }, 1);

    expect(paired.scenario.bodiesReused).toBe(true);
  });
});

describe('combineSlices', () => {
  const slice = (over: Partial<LoadResult>): LoadResult => ({
    requestsPerSecond: 0,
    p50Ms: 0,
    p99Ms: 0,
    total2xx: 0,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    statusCodes: {},
    serverCpu: undefined,
    serverWrites: undefined,
    loadCpu: 0,
    othersCpu: undefined,
    steal: undefined,
    ...over,
  });

  it('averages rates and shares, sums counts, weighs p50 and writes by requests, keeps the highest p99', () => {
    const combined = combineSlices([
      slice({ requestsPerSecond: 100, p50Ms: 1, p99Ms: 5, total2xx: 90, non2xx: 10, errors: 1, timeouts: 2, statusCodes: { 200: 90, 400: 10 }, serverCpu: 0.5, serverWrites: { bytesPerRequest: 10, callsPerRequest: 1 }, loadCpu: 0.2, othersCpu: 0.1, steal: 0 }),
      slice({ requestsPerSecond: 300, p50Ms: 3, p99Ms: 9, total2xx: 300, non2xx: 0, errors: 0, timeouts: 1, statusCodes: { 200: 300 }, serverCpu: 1.5, serverWrites: { bytesPerRequest: 20, callsPerRequest: 3 }, loadCpu: 0.4, othersCpu: 0.3, steal: 0.02 }),
    ]);
    expect(combined.requestsPerSecond).toBe(200);
    expect(combined.serverCpu).toBe(1);
    expect(combined.loadCpu).toBeCloseTo(0.3, 10);
    expect(combined.othersCpu).toBeCloseTo(0.2, 10);
    expect(combined.steal).toBeCloseTo(0.01, 10);
    expect(combined.p50Ms).toBeCloseTo((1 * 100 + 3 * 300) / 400, 10);
    expect(combined.p99Ms).toBe(9);
    expect(combined).toMatchObject({ total2xx: 390, non2xx: 10, errors: 1, timeouts: 3, statusCodes: { 200: 390, 400: 10 } });
    expect(combined.serverWrites!.bytesPerRequest).toBeCloseTo((10 * 100 + 20 * 300) / 400, 10);
    expect(combined.serverWrites!.callsPerRequest).toBeCloseTo((1 * 100 + 3 * 300) / 400, 10);
    expect(combined.bodiesReused).toBeUndefined();
  });

  it('leaves a measure out when any slice lacks it, and reports bodies reused when any slice did', () => {
    const combined = combineSlices([
      slice({ total2xx: 1, serverCpu: 1, othersCpu: 0.1, bodiesReused: false }),
      slice({ total2xx: 1, serverCpu: undefined, othersCpu: undefined, bodiesReused: true, serverWrites: { bytesPerRequest: 1, callsPerRequest: 1 } }),
    ]);
    expect(combined.serverCpu).toBeUndefined();
    expect(combined.othersCpu).toBeUndefined();
    expect(combined.serverWrites).toBeUndefined();
    expect(combined.bodiesReused).toBe(true);
  });
});
