import Fastify, { type FastifyInstance } from 'fastify';
import { authmdFastify, fastifyGuard } from '@authmd/service';
import { createNotesService, type NotesApp, type NotesAppOptions } from '../../shared/src/notes-service.ts';

/** A notes API on Fastify, protected by auth.md: the whole integration is `register` and two `preHandler`s. */

export interface FastifyNotesApp extends NotesApp {
  fastify: FastifyInstance;
}

export async function startNotesApp(options: NotesAppOptions): Promise<FastifyNotesApp> {
  const url = `http://127.0.0.1:${options.port}`;

  const service = await createNotesService({ name: 'Notes on Fastify', url, database: options.database, trust: options.trust });
  const fastify = Fastify();
  await fastify.register(authmdFastify(service));

  const notes: { text: string; by: string }[] = [];
  fastify.get('/api/notes', { preHandler: fastifyGuard(service.protect({ scopes: ['notes.read'] })) }, async () => ({ notes }));
  fastify.post<{ Body: { text?: unknown } }>('/api/notes', { preHandler: fastifyGuard(service.protect({ scopes: ['notes.write'] })) }, async (request, reply) => {
    const text = typeof request.body?.text === 'string' ? request.body.text : '';
    notes.push({ text, by: request.authmd!.registrationId });
    return reply.code(201).send({ note: notes.at(-1) });
  });
  await fastify.listen({ port: options.port, host: '127.0.0.1' });

  return {
    url,
    fastify,
    service,
    close: async () => {
      await fastify.close();
      await service.close();
    },
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by fastifyGuard: who the bearer token speaks for. */
    authmd?: import('@authmd/service').Principal;
  }
}
