import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeRefusal, type AuthmdService } from '@authmd/service';
import { MAX_NOTE_CHARS, NotesStore, ownerOf } from './notes.ts';
import { collectBody } from '@authmd/service';
import { mediaType, sendError, sendJson } from './respond.ts';

export const NOTES_PATH = '/api/notes';
export const MAX_NOTE_BODY_BYTES = 16 * 1024;

/**
 * The sample API behind auth.md: `GET /api/notes` (notes.read) lists the caller's notes,
 * `POST /api/notes` (notes.write) adds one. The bearer token is checked straight from the
 * Authorization header (no Web Request is built): this is the path the benchmark measures.
 */
export function notesApi(service: AuthmdService, notes: NotesStore) {
  const read = service.protect({ scopes: ['notes.read'] });
  const write = service.protect({ scopes: ['notes.write'] });

  const list = async (req: IncomingMessage, res: ServerResponse) => {
    const outcome = await read.check(req.headers.authorization);
    if (!outcome.ok) return writeRefusal(res, outcome.refusal);
    sendJson(res, 200, { notes: notes.list(ownerOf(outcome.principal)) });
  };

  const add = async (req: IncomingMessage, res: ServerResponse) => {
    const outcome = await write.check(req.headers.authorization);
    if (!outcome.ok) return writeRefusal(res, outcome.refusal);
    const parsed = await readNote(req);
    if (!parsed.ok) {
      // A body we stopped reading cannot be skipped on a kept-alive connection: close it.
      const headers: Record<string, string> = parsed.status === 413 ? { Connection: 'close' } : {};
      return sendError(res, parsed.status, parsed.error, parsed.description, headers);
    }
    const note = notes.add(ownerOf(outcome.principal), parsed.text);
    if (!note) return sendError(res, 409, 'notes_full', 'This demo keeps at most 100 notes per owner (and 10,000 in all), in memory.');
    sendJson(res, 201, { note });
  };

  return (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method === 'GET' || req.method === 'HEAD') return list(req, res);
    if (req.method === 'POST') return add(req, res);
    sendError(res, 405, 'method_not_allowed', `${req.method} is not allowed here; use GET or POST.`, { Allow: 'GET, HEAD, POST' });
    return Promise.resolve();
  };
}

type ParsedNote = { ok: true; text: string } | { ok: false; status: 400 | 413; error: string; description: string };

/** `{"text": "..."}`: JSON, at most 16 KiB, text 1–1000 characters once trimmed. */
async function readNote(req: IncomingMessage): Promise<ParsedNote> {
  const bad = (description: string): ParsedNote => ({ ok: false, status: 400, error: 'invalid_request', description });
  if (mediaType(req) !== 'application/json') return bad('Content-Type: must be application/json.');
  const body = await collectBody(req, MAX_NOTE_BODY_BYTES);
  if (body === 'too_large') {
    return { ok: false, status: 413, error: 'payload_too_large', description: `The request body exceeds ${MAX_NOTE_BODY_BYTES} bytes.` };
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return bad('body: is not valid UTF-8 JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('body: must be a JSON object like {"text": "..."}.');
  const text = (value as { text?: unknown }).text;
  if (typeof text !== 'string') return bad('text: is required and must be a string.');
  const trimmed = text.trim();
  if (trimmed === '') return bad('text: must not be empty.');
  if ([...trimmed].length > MAX_NOTE_CHARS) return bad(`text: must be at most ${MAX_NOTE_CHARS} characters.`);
  return { ok: true, text: trimmed };
}
