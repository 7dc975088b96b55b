/**
 * OpenSSH known_hosts parsing and host key checking.
 *
 * Used as ssh2's `hostVerifier`: a host key is accepted only when a
 * known_hosts line for the host carries exactly the presented key. Unknown,
 * changed and revoked keys are refused — never accepted blindly.
 *
 * Supported (as OpenSSH does): comma-separated host patterns with `*` / `?`
 * wildcards and `!` negation (case-insensitive), `[host]:port` names for
 * non-22 ports, hashed names `|1|<base64 salt>|<base64 HMAC-SHA1(salt, name)>`,
 * the `@revoked` marker. `@cert-authority` lines are ignored (host
 * certificates are not supported). Only public key material is ever handled.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface KnownHostEntry {
  marker?: '@revoked' | '@cert-authority';
  /** Raw host patterns as written; may be hashed (`|1|salt|hash`). */
  patterns: string[];
  keyType: string;
  keyBase64: string;
}

export type HostKeyVerdict = { ok: true } | { ok: false; reason: 'unknown' | 'changed' | 'revoked'; message: string };

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
const HASH_MAGIC = '|1|';

/** Reads the first SSH wire-format string (uint32 length + bytes) of a key blob. */
function readBlobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 256 || 4 + len > blob.length) return undefined;
  const type = blob.subarray(4, 4 + len).toString('latin1');
  return /^[\x21-\x7e]+$/.test(type) ? type : undefined;
}

function decodeBase64Strict(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !BASE64_RE.test(text)) return undefined;
  const buf = Buffer.from(text, 'base64');
  return buf.length > 0 ? buf : undefined;
}

/** `SHA256:` + unpadded base64 of the SHA-256 of the key blob, like `ssh-keygen -l`. */
export function fingerprintSha256(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The name OpenSSH looks up in known_hosts: `host` on port 22, else `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/**
 * Parses known_hosts text. Blank lines, comments and malformed lines
 * (unknown marker, missing fields, invalid base64, blob whose embedded type
 * differs from the key type field, legacy SSH1 RSA lines) are skipped.
 */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/[ \t]+/);
    let marker: KnownHostEntry['marker'];
    let i = 0;
    const first = fields[0];
    if (first?.startsWith('@')) {
      if (first !== '@revoked' && first !== '@cert-authority') continue;
      marker = first;
      i = 1;
    }
    const hostField = fields[i];
    const keyType = fields[i + 1];
    const keyBase64 = fields[i + 2];
    if (hostField === undefined || keyType === undefined || keyBase64 === undefined) continue;
    const patterns = hostField.split(',').filter((p) => p !== '');
    if (patterns.length === 0) continue;
    const blob = decodeBase64Strict(keyBase64);
    if (blob === undefined || readBlobKeyType(blob) !== keyType) continue;
    const entry: KnownHostEntry = { patterns, keyType, keyBase64 };
    if (marker !== undefined) entry.marker = marker;
    entries.push(entry);
  }
  return entries;
}

/** Glob match with `*` (any run) and `?` (one char); iterative with backtracking. */
function globMatch(name: string, pattern: string): boolean {
  let n = 0;
  let p = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    const pc = pattern[p];
    if (pc === '*') {
      starP = p++;
      starN = n;
    } else if (pc !== undefined && (pc === '?' || pc === name[n])) {
      p++;
      n++;
    } else if (starP !== -1) {
      p = starP + 1;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

function hashedMatch(name: string, pattern: string): boolean {
  // |1|<base64 salt>|<base64 hash>
  const rest = pattern.slice(HASH_MAGIC.length);
  const sep = rest.indexOf('|');
  if (sep <= 0) return false;
  const salt = decodeBase64Strict(rest.slice(0, sep));
  const expected = decodeBase64Strict(rest.slice(sep + 1));
  if (salt === undefined || expected === undefined) return false;
  const actual = createHmac('sha1', salt).update(name).digest();
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * OpenSSH match_hostname semantics: a negated pattern that matches excludes
 * the line outright; otherwise the line matches if any positive pattern does.
 */
function entryMatchesName(entry: KnownHostEntry, name: string): boolean {
  let positive = false;
  for (const raw of entry.patterns) {
    if (raw.startsWith(HASH_MAGIC)) {
      if (hashedMatch(name, raw)) positive = true;
      continue;
    }
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (pattern === '') continue;
    if (globMatch(name, pattern)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

function entryHasKey(entry: KnownHostEntry, keyType: string | undefined, key: Buffer): boolean {
  if (keyType === undefined || entry.keyType !== keyType) return false;
  const blob = decodeBase64Strict(entry.keyBase64);
  return blob !== undefined && blob.length === key.length && timingSafeEqual(blob, key);
}

/**
 * Decides whether `key` (the raw SSH public key blob presented by the server)
 * is acceptable for `host`:`port` according to the known_hosts `entries`.
 *
 * A key listed on any `@revoked` line is refused whatever that line's host
 * patterns (stricter than OpenSSH, which only consults revoked lines matching
 * the host). Only plain (unmarked) lines can accept a key.
 */
export function checkHostKey(entries: KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const keyType = readBlobKeyType(key);
  const typeLabel = keyType ?? 'unrecognised key type';
  const fp = fingerprintSha256(key);

  for (const entry of entries) {
    if (entry.marker === '@revoked' && entryHasKey(entry, keyType, key)) {
      return {
        ok: false,
        reason: 'revoked',
        message:
          `The ${typeLabel} host key presented by ${name} (${fp}) is marked @revoked in known_hosts; ` +
          'refusing to connect.',
      };
    }
  }

  let matched = false;
  const knownTypes = new Set<string>();
  for (const entry of entries) {
    if (entry.marker !== undefined) continue; // @cert-authority ignored, @revoked handled above
    if (!entryMatchesName(entry, name)) continue;
    if (entryHasKey(entry, keyType, key)) return { ok: true };
    matched = true;
    knownTypes.add(entry.keyType);
  }

  if (matched) {
    return {
      ok: false,
      reason: 'changed',
      message:
        `WARNING: the host key of ${name} does not match known_hosts — possible man-in-the-middle attack. ` +
        `The server presented a ${typeLabel} key with fingerprint ${fp}; ` +
        `known_hosts lists ${[...knownTypes].join(', ')} key(s) for this host. ` +
        'Refusing to connect; if the host key legitimately changed, update known_hosts after verifying it out of band.',
    };
  }

  return {
    ok: false,
    reason: 'unknown',
    message:
      `Host ${name} is not in known_hosts (presented ${typeLabel} key ${fp}). ` +
      `Verify the fingerprint out of band, then add it to known_hosts, e.g. with \`ssh-keyscan -p ${port} ${host}\`.`,
  };
}
