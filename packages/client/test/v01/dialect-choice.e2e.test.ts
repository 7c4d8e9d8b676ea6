import { describe, expect, it } from 'vitest';
import { AgentClient, type ReadyResult } from '../../src/index.ts';
import { E2E_TIMEOUT, recordingFetch, statusOf } from '../e2e/support.ts';
import { startClosedAfterTest } from './support.ts';

/** issue 12: the client speaks the newest dialect a service advertises. */
describe('choosing the dialect', () => {
  it(
    'a service speaking current, v0.7 and v0.1: the client chooses current (identity assertion, no v0.1 path)',
    async () => {
      const svc = await startClosedAfterTest();
      const { fetch, sent } = recordingFetch();
      const client = new AgentClient({ fetch, clock: svc.clock });
      const service = await client.discover(svc.base);
      expect(service.dialects).toEqual({ current: true, v07: true, v01: true });
      expect(service.dialect).toBe('current');

      const ready = (await client.authenticate({ url: svc.base })) as ReadyResult;
      expect(ready).toMatchObject({ status: 'ready', registration_type: 'anonymous' });
      expect(ready.credential_type).toBeUndefined();
      expect(sent.map((r) => new URL(r.url).pathname).filter((path) => path.startsWith('/agent'))).toEqual(['/agent/identity']);
      const record = (await client.status())[svc.base]!;
      expect(record.identity?.assertion).toEqual(expect.any(String));
      expect(record.dialect).toBeUndefined();
      expect(record.credential).toBeUndefined();
      expect(await statusOf(await client.fetch(`${svc.base}/api/notes`))).toBe(200);
    },
    E2E_TIMEOUT,
  );

  it(
    'without current, v0.7 is chosen over v0.1',
    async () => {
      const svc = await startClosedAfterTest({ dialects: { current: false, 'v0.7': true, 'v0.1': true } });
      const service = await new AgentClient({ clock: svc.clock }).discover(svc.base);
      expect(service.dialect).toBe('v0.7');
    },
    E2E_TIMEOUT,
  );
});
