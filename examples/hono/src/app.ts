import { serve, type ServerType } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { Hono } from 'hono';
import { authmdHono, honoGuard, type Principal } from '@authmd/service';
import { createNotesService, type NotesApp, type NotesAppOptions } from '../../shared/src/notes-service.ts';

/** A notes API on Hono (here on Node), protected by auth.md: one `use` for the service, a guard per route. */

/** `c.get('authmd')`: who the bearer token speaks for, set by honoGuard. */
type Env = { Variables: { authmd: Principal } };

export async function startNotesApp(options: NotesAppOptions): Promise<NotesApp> {
  const url = `http://127.0.0.1:${options.port}`;
  const service = await createNotesService({ name: 'Notes on Hono', url, database: options.database, trust: options.trust });

  const app = new Hono<Env>();
  // A Web Request carries no peer address: on Node, @hono/node-server's conninfo has it.
  app.use(authmdHono(service, { clientIp: (c) => getConnInfo(c).remote.address }));

  const notes: { text: string; by: string }[] = [];
  app.get('/api/notes', honoGuard(service.protect({ scopes: ['notes.read'] })), (c) => c.json({ notes }));
  app.post('/api/notes', honoGuard(service.protect({ scopes: ['notes.write'] })), async (c) => {
    const body = await c.req.json<{ text?: unknown }>().catch(() => ({}) as { text?: unknown });
    notes.push({ text: typeof body.text === 'string' ? body.text : '', by: c.get('authmd').registrationId });
    return c.json({ note: notes.at(-1) }, 201);
  });

  const server = await new Promise<ServerType>((resolve) => {
    const listening = serve({ fetch: app.fetch, port: options.port, hostname: '127.0.0.1' }, () => resolve(listening));
  });
  return {
    url,
    service,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await service.close();
    },
  };
}
