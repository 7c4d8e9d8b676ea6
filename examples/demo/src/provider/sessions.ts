import { createHash, randomBytes } from 'node:crypto';
import { table, type Store } from '@authmd/service/store';
import { findUserByEmail, findUserById, type DemoUser } from './users.ts';

/**
 * Sign-in sessions of the demo provider, shared by the JSON API (Bearer `session_token`) and the page
 * (the same token in an HttpOnly cookie). Stored by hash only; they last 24 h, like the sample's.
 */
export type SessionRow = { id: string; user_id: string; auth_time: number; created_at: number; expires_at: number };

export const sessions = table<SessionRow>({
  name: 'demo_provider_sessions',
  key: 'id',
  columns: { id: 'text', user_id: 'text', auth_time: 'integer', created_at: 'integer', expires_at: 'integer' },
  expiresAt: 'expires_at',
});

export const SESSION_TTL_MS = 86_400_000;

export interface Session {
  user: DemoUser;
  /** Epoch seconds of the sign-in: the ID-JAG's `auth_time`. */
  authTime: number;
}

const hashOf = (token: string): string => createHash('sha256').update(token).digest('base64url');

export class Sessions {
  constructor(
    private readonly store: Store,
    private readonly clock: () => number,
  ) {}

  /** Signs a seeded user in (email only: it is a demo). Undefined for an unknown address. */
  async signIn(email: string): Promise<{ token: string; session: Session } | undefined> {
    const user = findUserByEmail(email);
    if (!user) return undefined;
    const now = this.clock();
    const token = `pst_${randomBytes(24).toString('base64url')}`;
    const authTime = Math.floor(now / 1000);
    await this.store.insert(sessions, { id: hashOf(token), user_id: user.id, auth_time: authTime, created_at: now, expires_at: now + SESSION_TTL_MS });
    return { token, session: { user, authTime } };
  }

  async lookup(token: string | undefined): Promise<Session | undefined> {
    if (!token) return undefined;
    const row = await this.store.get(sessions, hashOf(token));
    if (!row || row.expires_at <= this.clock()) return undefined;
    const user = findUserById(row.user_id);
    return user ? { user, authTime: row.auth_time } : undefined;
  }

  async signOut(token: string | undefined): Promise<void> {
    if (token) await this.store.delete(sessions, hashOf(token));
  }
}
