import { randomUUID } from 'node:crypto';
import type { Principal } from '@authmd/service';

/** One note, as the API returns it. */
export interface Note {
  id: string;
  text: string;
  createdAt: string;
}

export const MAX_NOTE_CHARS = 1000;

/**
 * Whose notes a caller sees: the user who claimed the registration when there is one (so every
 * agent of that user shares them), otherwise the registration itself.
 */
export function ownerOf(principal: Principal): string {
  return principal.userId ?? principal.registrationId;
}

/**
 * The notes of every owner, in memory: they are gone when the process stops (registrations and
 * tokens are in SQLite and survive). Bounded, so that a demo left running cannot grow without end.
 */
export class NotesStore {
  private readonly byOwner = new Map<string, Note[]>();
  private total = 0;

  constructor(private readonly limits: { perOwner: number; total: number } = { perOwner: 100, total: 10_000 }) {}

  list(owner: string): Note[] {
    return this.byOwner.get(owner)?.map((note) => ({ ...note })) ?? [];
  }

  /** Adds a note; undefined when the owner, or the whole store, is full. */
  add(owner: string, text: string, now = Date.now()): Note | undefined {
    const notes = this.byOwner.get(owner) ?? [];
    if (notes.length >= this.limits.perOwner || this.total >= this.limits.total) return undefined;
    const note: Note = { id: `note_${randomUUID()}`, text, createdAt: new Date(now).toISOString() };
    notes.push(note);
    this.byOwner.set(owner, notes);
    this.total += 1;
    return { ...note };
  }
}
