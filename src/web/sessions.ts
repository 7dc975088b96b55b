/**
 * The web page's sessions (SPEC §12): after a sign-in against access.users,
 * the browser holds only a random session id in an HttpOnly cookie; the user,
 * their roles, the session's CSRF token and its end live here, in this
 * process's memory. A session ends at its time (`web.sessionMinutes` after the
 * sign-in) or when its user signs out; a process restart signs everyone out.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Principal } from '../http/auth.js';

export interface Session {
  id: string;
  principal: Principal;
  /** Sent back in the `x-csrf-token` header on every change the page asks for. */
  csrfToken: string;
  /** Epoch ms. */
  expiresAt: number;
}

export interface Sessions {
  create(principal: Principal): Session;
  /** The live session of an id; undefined when unknown or expired. */
  get(id: string | undefined): Session | undefined;
  delete(id: string): void;
  readonly size: number;
}

/** Most sessions kept at once: past it, the oldest go first (each took a correct password). */
const MAX_SESSIONS = 10_000;

const token = () => randomBytes(32).toString('base64url');

export function createSessions(opts: { ttlMs: number; now?: () => number }): Sessions {
  const now = opts.now ?? Date.now;
  // Insertion order is creation order: the oldest first.
  const byId = new Map<string, Session>();
  const sweep = () => {
    const t = now();
    for (const [id, s] of byId) if (s.expiresAt <= t) byId.delete(id);
    while (byId.size >= MAX_SESSIONS) byId.delete(byId.keys().next().value as string);
  };
  return {
    create(principal) {
      sweep();
      const session = { id: token(), principal, csrfToken: token(), expiresAt: now() + opts.ttlMs };
      byId.set(session.id, session);
      return session;
    },
    get(id) {
      if (id === undefined) return undefined;
      const s = byId.get(id);
      if (!s) return undefined;
      if (s.expiresAt <= now()) {
        byId.delete(id);
        return undefined;
      }
      return s;
    },
    delete(id) {
      byId.delete(id);
    },
    get size() {
      return byId.size;
    },
  };
}

/** Whether `given` is the session's CSRF token, compared in constant time. */
export function csrfMatches(session: Session, given: string | undefined): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(session.csrfToken);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The value of cookie `name` in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
