/**
 * HTTP Basic authentication against access.users (SPEC §6): scrypt with
 * N=16384, r=8, p=1, 64-byte hash, salt used as its decoded bytes; compared in
 * constant time. Roles grant permissions; ADMIN holds every one.
 */
import { scryptSync, timingSafeEqual } from 'node:crypto';
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

export function verifyPassword(password: string, stored: string): boolean {
  const [scheme, saltB64, hashB64] = stored.split(':');
  if (scheme !== 'scrypt' || !saltB64 || !hashB64) return false;
  const expected = Buffer.from(hashB64, 'base64');
  const actual = scryptSync(password, Buffer.from(saltB64, 'base64'), expected.length || 64, SCRYPT);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** A dummy hash to spend the same time on unknown users as on known ones. */
const DUMMY = hashPassword('not a password', Buffer.alloc(16, 7));

export function authenticate(config: Config, header: string | undefined): Principal | undefined {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  const user = config.access.users.find((u) => u.username === username);
  const ok = verifyPassword(password, user?.passwordHash ?? DUMMY);
  return user && ok ? { username: user.username, roles: user.roles } : undefined;
}

export function allows(principal: Principal, permission: Permission): boolean {
  return principal.roles.includes('ADMIN') || principal.roles.includes(permission);
}
