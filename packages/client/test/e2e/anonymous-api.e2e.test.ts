import { describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/index.ts';
import { E2E_TIMEOUT, exchanges, notePost, recordingFetch, recordingPrompt, registrations, startE2eDemo, statusOf } from './support.ts';

/** Issue 5, "Done when": anonymous → API, against the real demo over HTTP. */
describe('anonymous → API', () => {
  it(
    'client.fetch discovers the service from the 401, registers anonymously, and GETs; a POST is refused before a claim',
    async () => {
      const demo = await startE2eDemo();
      const { fetch, sent } = recordingFetch();
      const prompt = recordingPrompt();
      const client = new AgentClient({ fetch, prompt });

      const listed = await client.fetch(demo.api);
      expect(listed.status).toBe(200);
      expect(await listed.json()).toEqual({ notes: [] });

      // The path it took: the bare request, its 401, PRM, AS metadata, one anonymous registration, one exchange, the retry with a bearer.
      const paths = sent.map((r) => `${r.method} ${new URL(r.url).pathname}`);
      expect(paths).toEqual([
        'GET /api/notes',
        'GET /.well-known/oauth-protected-resource/api/notes',
        'GET /.well-known/oauth-authorization-server',
        'POST /agent/identity',
        'POST /oauth2/token',
        'GET /api/notes',
      ]);
      expect(sent[0]!.authorization).toBeNull();
      expect(registrations(sent).map((r) => r.body)).toEqual([{ type: 'anonymous' }]);
      expect(sent.at(-1)!.authorization).toMatch(/^Bearer \S+$/);
      expect(demo.logger.audit('registration.created')).toHaveLength(1);
      expect(prompt.shown, 'an anonymous registration needs no human').toEqual([]);

      const status = await client.status();
      expect(Object.keys(status)).toEqual([demo.url]);
      expect(status[demo.url]).toMatchObject({ registration_type: 'anonymous', claimed: false, access_token: { scope: 'notes.read' } });
      expect(demo.logger.audit('registration.created')[0]!.registration_id).toBe(status[demo.url]!.registration_id);

      // Pre-claim scopes: writing is forbidden (403, not 401: no re-exchange, no new registration).
      expect(await statusOf(await client.fetch(demo.api, notePost('hello')))).toBe(403);
      // A second read reuses the live access token.
      expect(await statusOf(await client.fetch(demo.api))).toBe(200);
      expect(exchanges(sent)).toHaveLength(1);
      expect(registrations(sent)).toHaveLength(1);
    },
    E2E_TIMEOUT,
  );
});
