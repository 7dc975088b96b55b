/**
 * HTTP Basic authentication against access.users (SPEC §6): scrypt with
 * N=16384, r=8, p=1, 64-byte hash, salt used as its decoded bytes; compared in
 * constant time. Roles grant permissions; ADMIN holds every one. Failed sign-ins
 * are throttled per user and per client address (SPEC §3, sign-in-throttle.ts).
 */
import { createHmac, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import type { Permission } from '../api/operations.js';
import type { Config } from '../config.js';
import { CodedError, ErrorCode, TooManySignInsError } from '../errors.js';
import { addressKey, createSignInThrottle } from './sign-in-throttle.js';
import { createWorkSlots } from './work-slots.js';

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

/**
 * The principal of an Authorization header from a client address; throws a CodedError with
 * 30000: missing or wrong credentials (401), or TooManySignInsError (429).
 */
export type Authenticate = (header: string | undefined, clientAddress: string | undefined) => Promise<Principal>;

/** How long a verified Authorization header is trusted without running scrypt again, since its last use (ms). */
const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 1000;

/**
 * Password checks (scrypt, ~50 ms of CPU and 16 MiB each) at once, and waiting: 2 and 16. Two
 * of libuv's four threads stay free for DNS look-ups (SSH hosts, Slack), file I/O and zlib;
 * a check that finds the line full is refused at once (429, try again in 1 s).
 */
const CHECKS = { running: 2, waiting: 16 };

const unauthorized = () =>
  new CodedError(ErrorCode.unauthorized, 'missing or wrong credentials: use HTTP Basic authentication');

/**
 * scrypt costs ~50 ms of CPU by design. It runs off the event loop (libuv's
 * pool, at most CHECKS.running at once), and a header that verified is
 * remembered under an HMAC with a key made at start-up, so no password is kept
 * and a busy client does not pay scrypt per request: for a minute after its last
 * use (the users are fixed while the process runs, so there is nothing to go
 * stale). A remembered header is never throttled. Failures are never remembered;
 * they are counted per user and per address, and past the limits a sign-in is
 * refused before its password is checked.
 */
export function createAuthenticator(config: Config, now: () => number = Date.now): Authenticate {
  const key = randomBytes(32);
  const cache = new Map<string, { principal: Principal; until: number }>();
  const { perUser, perAddress, windowSeconds } = config.access.signIn;
  const throttle = createSignInThrottle({ now, limits: { perUser, perAddress, windowMs: windowSeconds * 1000 } });
  const checks = createWorkSlots(CHECKS);
  return async (header, clientAddress) => {
    const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? ''); // the scheme is case-insensitive (RFC 9110)
    if (!m) throw unauthorized();
    const tag = createHmac('sha256', key)
      .update(m[1] as string)
      .digest('base64');
    const hit = cache.get(tag);
    if (hit && hit.until > now()) {
      cache.delete(tag); // re-inserted last: the oldest in use goes first when the cache is full
      cache.set(tag, { principal: hit.principal, until: now() + CACHE_TTL_MS });
      return hit.principal;
    }
    const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw unauthorized();
    const username = decoded.slice(0, colon);
    const address = addressKey(clientAddress);
    const admission = throttle.admit(username, address);
    if (!admission.admitted) {
      const who = {
        user: 'for this user',
        address: 'from this address',
        'user at this address': 'for this user from this address',
      }[admission.limitedBy];
      throw new TooManySignInsError(
        `too many failed sign-ins ${who}; try again in ${admission.retryAfterSeconds} s`,
        admission.retryAfterSeconds,
      );
    }
    const user = config.access.users.find((u) => u.username === username);
    const checked = checks.run(() => verifyPasswordAsync(decoded.slice(colon + 1), user?.passwordHash ?? DUMMY));
    if (checked === 'busy') {
      throttle.notChecked(username, address);
      throw new TooManySignInsError('too many sign-ins being checked at once; try again in 1 s', 1);
    }
    if (!(await checked) || !user) throw unauthorized();
    throttle.succeeded(username, address);
    const principal = { username: user.username, roles: user.roles };
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(tag, { principal, until: now() + CACHE_TTL_MS });
    return principal;
  };
}

export function allows(principal: Principal, permission: Permission): boolean {
  return principal.roles.includes('ADMIN') || principal.roles.includes(permission);
}
