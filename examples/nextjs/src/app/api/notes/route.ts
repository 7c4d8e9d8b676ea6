import type { Guard } from '@authmd/service';
import { authmd } from '../../../lib/authmd.ts';

/** The notes API, protected by auth.md: a guard per method, given the route handler's Request. */

const notes: { text: string; by: string }[] = [];

// Made on the first request (not when `next build` loads this module), then kept: a guard caches tokens.
let guards: Promise<{ read: Guard; write: Guard }> | undefined;
function guard(which: 'read' | 'write'): Promise<Guard> {
  guards ??= authmd().then((service) => ({ read: service.protect({ scopes: ['notes.read'] }), write: service.protect({ scopes: ['notes.write'] }) }));
  return guards.then((made) => made[which]);
}

export const dynamic = 'force-dynamic';

export async function GET(request: Request): Promise<Response> {
  const access = await (await guard('read'))(request);
  if (!access.ok) return access.response;
  return Response.json({ notes });
}

export async function POST(request: Request): Promise<Response> {
  const access = await (await guard('write'))(request);
  if (!access.ok) return access.response;
  const body = (await request.json().catch(() => ({}))) as { text?: unknown };
  notes.push({ text: typeof body.text === 'string' ? body.text : '', by: access.principal.registrationId });
  return Response.json({ note: notes.at(-1) }, { status: 201 });
}
