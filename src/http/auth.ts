/**
 * HTTP Basic authentication against access.users (SPEC §6): scrypt with
 * N=16384, r=8, p=1, 64-byte hash, salt used as its decoded bytes; compared in
 * constant time. Roles grant permissions; ADMIN holds every one.
 */
import { createHmac, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import type { Permission } from '../api/operations.js';
import type { Config } from '../config.js';

export interface Principal {
  username: string;
  roles: readonly string[];
}

const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export function hashPassword(password: string, salt: Buffer): string {
  const hash = scryptSync(password, salt, 64, SCRYPT);
  return `scrypt:${salt.toString('base64')}:${hash.toString('base64')}`;
}

/** A dummy hash to spend the same time on unknown users as on known ones. */
const DUMMY = hashPassword('not a password', Buffer.alloc(16, 7));

function verifyPasswordAsync(password: string, stored: string): Promise<boolean> {
  const [scheme, saltB64, hashB64] = stored.split(':');
  if (scheme !== 'scrypt' || !saltB64 || !hashB64) return Promise.resolve(false);
  const expected = Buffer.from(hashB64, 'base64');
  return new Promise((resolve) => {
    scrypt(password, Buffer.from(saltB64, 'base64'), expected.length || 64, SCRYPT, (err, actual) => {
      resolve(!err && expected.length === actual.length && timingSafeEqual(expected, actual));
    });
  });
}

export type Authenticate = (header: string | undefined) => Promise<Principal | undefined>;

/** How long a verified Authorization header is trusted without running scrypt again (ms). */
const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 1000;

/**
 * scrypt costs ~50 ms of CPU by design. It runs off the event loop (libuv's
 * pool), and a header that verified is remembered for a minute under an HMAC
 * with a key made at start-up, so no password is kept and a busy client does
 * not pay scrypt per request. Failures are never cached.
 */
export function createAuthenticator(config: Config): Authenticate {
  const key = randomBytes(32);
  const cache = new Map<string, { principal: Principal; until: number }>();
  return async (header) => {
    const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? ''); // the scheme is case-insensitive (RFC 9110)
    if (!m) return undefined;
    const tag = createHmac('sha256', key)
      .update(m[1] as string)
      .digest('base64');
    const hit = cache.get(tag);
    if (hit && hit.until > Date.now()) return hit.principal;
    const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const username = decoded.slice(0, colon);
    const user = config.access.users.find((u) => u.username === username);
    const ok = await verifyPasswordAsync(decoded.slice(colon + 1), user?.passwordHash ?? DUMMY);
    if (!user || !ok) return undefined;
    const principal = { username: user.username, roles: user.roles };
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(tag, { principal, until: Date.now() + CACHE_TTL_MS });
    return principal;
  };
}

export function allows(principal: Principal, permission: Permission): boolean {
  return principal.roles.includes('ADMIN') || principal.roles.includes(permission);
}
