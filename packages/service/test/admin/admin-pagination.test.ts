import { describe, expect, it } from 'vitest';
import type { Store } from '@authmd/core/store';
import { registrations, type RegistrationRow } from '../../src/schema.ts';
import { servicePerTest, sharedStore } from '../support/harness.ts';
import { registrationRow } from '../../src/schema.ts';

/**
 * The admin API's search at 100,000 registrations (issue 15): pages are read from ordered indexes
 * from where the previous one ended, so a page deep in the table, a page of one person among them
 * and a filter that matches nothing all answer from a bounded read, with every row in order once.
 * (How long each takes is measured by `npm run bench`, not asserted here.)
 */
const start = servicePerTest();
const ROWS = 100_000;
const TOKEN = 'operator-token-0123456789abcdefghijklmnopqrstuvwxyz';
const T0 = Date.UTC(2026, 0, 1);

type Json = Record<string, any>;

function row(i: number, extra: Partial<RegistrationRow> = {}): RegistrationRow {
  // Two registrations per millisecond: pages must break ties by id.
  return registrationRow({ id: `reg_${String(i).padStart(7, '0')}`, type: 'anonymous', created_at: T0 + Math.floor(i / 2), claim_expires_at: T0 + 365 * 86_400_000, client_ip: '203.0.113.7', ...extra });
}

/** 100,000 registrations, three of them service_auth for needle@example.com, spread through the table. */
async function fill(store: Store): Promise<string[]> {
  const needles = [7, 50_001, 99_998];
  for (let from = 0; from < ROWS; from += 5000) {
    await store.transaction(async (tx) => {
      for (let i = from; i < from + 5000; i++) {
        await tx.append(registrations, needles.includes(i) ? row(i, { type: 'service_auth', login_hint: 'needle@example.com' }) : row(i));
      }
    });
  }
  return needles.map((i) => row(i).id).reverse();
}

async function list(base: string, query: string): Promise<Json> {
  const response = await fetch(`${base}/admin/api/registrations?${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(response.status, query).toBe(200);
  return response.json();
}

describe.each(['sqlite', 'postgres'] as const)('the admin search over 100,000 registrations on %s', (backend) => {
  it('pages newest first from the top and from deep in the table, finds one person, and bounds a filter that matches nothing', { timeout: 120_000 }, async () => {
    const open = await sharedStore(backend);
    const store = open();
    await store.migrate([registrations]);
    const needles = await fill(store);
    await store.close();
    const svc = await start({ store: open(), admin: { apiTokens: [{ operator: 'ops', token: TOKEN }] } });

    const first = await list(svc.base, 'limit=100');
    expect(first.registrations.map((r: Json) => r.id)).toEqual(Array.from({ length: 100 }, (_, k) => row(ROWS - 1 - k).id));

    // Deep in the table: the 100 registrations before the 1,000th, then the next pages from its cursor.
    const deep = await list(svc.base, `limit=100&to=${new Date(T0 + 500).toISOString()}`);
    expect(deep.registrations.map((r: Json) => r.id)).toEqual(Array.from({ length: 100 }, (_, k) => row(999 - k).id));
    const walked: string[] = deep.registrations.map((r: Json) => r.id);
    let cursor: string | undefined = deep.next_cursor;
    while (cursor) {
      const next = await list(svc.base, `limit=100&to=${new Date(T0 + 500).toISOString()}&cursor=${cursor}`);
      walked.push(...next.registrations.map((r: Json) => r.id));
      cursor = next.next_cursor;
    }
    expect(walked).toEqual(Array.from({ length: 1000 }, (_, k) => row(999 - k).id));

    const needle = await list(svc.base, 'email=needle%40example.com');
    expect(needle.registrations.map((r: Json) => r.id)).toEqual(needles);
    expect(needle.next_cursor).toBeUndefined();

    // No registration is claimed: the filter reads a bounded number of rows and says where to go on.
    const none = await list(svc.base, 'state=claimed&limit=100');
    expect(none.registrations).toEqual([]);
    expect(typeof none.next_cursor).toBe('string');
    const onward = await list(svc.base, `state=claimed&limit=100&cursor=${none.next_cursor}`);
    expect(onward.registrations).toEqual([]);
    expect(onward.next_cursor).not.toBe(none.next_cursor);
  });
});
