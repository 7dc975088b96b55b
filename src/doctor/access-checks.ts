/**
 * The doctor's look at `access.users` (SPEC §3, §6): each password hash is one
 * the service can check (`scrypt:<salt base64>:<hash base64>`, a salt of 16
 * bytes or more, a 64-byte hash), and someone can sign in at all. Pure.
 */
import type { Config } from '../config.js';
import { type Finding, finding } from './report.js';

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;
const REMEDY = 'Make the hash again with `ocp-chatops hash-password` and paste it as passwordHash.';

/** Why a stored hash cannot be right; undefined when it is well-formed. */
export function hashProblem(stored: string): string | undefined {
  const parts = stored.split(':');
  if (parts.length !== 3 || parts[0] !== 'scrypt') return 'is not "scrypt:<salt base64>:<hash base64>"';
  const [, salt = '', hash = ''] = parts;
  if (!B64.test(salt) || salt.length % 4 !== 0) return 'has a salt that is not base64';
  if (!B64.test(hash) || hash.length % 4 !== 0) return 'has a hash that is not base64';
  const saltBytes = Buffer.from(salt, 'base64').length;
  if (saltBytes < 16) return `has a salt of ${saltBytes} bytes; it takes 16 or more`;
  const hashBytes = Buffer.from(hash, 'base64').length;
  if (hashBytes !== 64) return `has a hash of ${hashBytes} bytes; scrypt's is 64`;
  return undefined;
}

export function checkAccess(config: Config): Finding[] {
  const users = config.access.users;
  if (users.length === 0) {
    return [
      finding(
        'http users',
        'users',
        'warn',
        'access.users is empty: the HTTP API, and the ocp-chatops CLI, refuse everyone',
        'Add a user under access.users with a hash from `ocp-chatops hash-password`.',
      ),
    ];
  }
  return users.map((u) => {
    const problem = hashProblem(u.passwordHash);
    return problem
      ? finding(`http user ${u.username}`, 'password hash', 'fail', `passwordHash ${problem}`, REMEDY)
      : finding(`http user ${u.username}`, 'password hash', 'ok', `scrypt; roles ${u.roles.join(', ')}`);
  });
}
