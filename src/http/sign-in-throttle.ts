/**
 * Failed HTTP Basic sign-ins, throttled per user and per client address (SPEC §3). Pure: the
 * clock comes in; nothing here checks a password.
 *
 * Each limit is a leaky bucket: a failure adds one, and the bucket drains at its limit per
 * minute, so "10 a minute" means 10 at once and then one every 6 s. A sign-in is counted when
 * it is admitted, before its password is checked, and handed back if it succeeds: a burst of
 * guesses in flight cannot get past the limit while the first ones are being hashed.
 *
 * Who is held by what (limits from `access.signIn`, src/config.ts: by default 10 failures a
 * minute per user, 30 per address):
 *   - a user and address that signed in successfully together within the last day: only by
 *     a limit of their own (perUser), so someone guessing the user's password from elsewhere,
 *     or a noisy neighbour behind the same NAT or proxy, does not lock them out where they work;
 *   - anyone else: by the user's limit (perUser, whatever address: a guesser spread over many
 *     addresses is held) and by the address's (perAddress, whatever user names it tries).
 * A name that is no user is held like one, so refusals do not tell which names exist. A
 * credential verified within the last minute is never held (src/http/auth.ts remembers it and
 * does not come here).
 */

export interface SignInLimits {
  /** Failures of one user name from any address; also of a user at an address they signed in from. */
  perUser: number;
  /** Failures from one client address (an IPv6 /64), whatever user names it tries. */
  perAddress: number;
  /** Each limit drains fully over this many ms: a limit of 10 lets one more in every windowMs / 10. */
  windowMs: number;
}

/** How long an address is remembered for a user after their last successful sign-in there (ms): a day. */
export const REMEMBER_PAIR_MS = 24 * 3600_000;
/** Entries kept per table (users, addresses, pairs); the oldest goes first. ~200 bytes each. */
export const MAX_KEYS = 10_000;

/**
 * A user name as a table key: at most 65 characters. No user's name is longer than 64
 * (src/config.ts), so longer names, which a header of 16 KiB could hold, share their first 64
 * characters' bucket, and no table grows by the size of what a client sends.
 */
const userKey = (user: string) => (user.length <= 64 ? user : `${user.slice(0, 64)}…`);

export type Admission =
  | { admitted: true }
  | { admitted: false; limitedBy: 'user' | 'address' | 'user at this address'; retryAfterSeconds: number };

export interface SignInThrottle {
  /** Before a password is checked: refused, or admitted and counted as a failure until `succeeded`. */
  admit(user: string, address: string): Admission;
  /** The admitted sign-in was right: it no longer counts, and the address is remembered for the user. */
  succeeded(user: string, address: string): void;
  /** The admitted sign-in was never checked (no slot free): it no longer counts. */
  notChecked(user: string, address: string): void;
  size(): { users: number; addresses: number; pairs: number };
}

interface Bucket {
  level: number;
  at: number;
}

/** A table of leaky buckets of `failures` draining over `perMs`, at most `maxKeys` of them. */
function buckets(limit: { failures: number; perMs: number }, maxKeys: number, now: () => number) {
  const table = new Map<string, Bucket>();
  const level = (key: string): number => {
    const b = table.get(key);
    return b ? Math.max(0, b.level - ((now() - b.at) * limit.failures) / limit.perMs) : 0;
  };
  const set = (key: string, value: number) => {
    table.delete(key); // re-inserted last: the table's order is the order of last use
    if (value > 0) table.set(key, { level: value, at: now() });
    if (table.size > maxKeys) table.delete(table.keys().next().value as string);
  };
  return {
    /** Seconds until one more failure fits; 0 when it fits now. */
    wait(key: string): number {
      const over = level(key) + 1 - limit.failures;
      return over <= 0 ? 0 : Math.max(1, Math.ceil((over * limit.perMs) / limit.failures / 1000));
    },
    add: (key: string) => set(key, level(key) + 1),
    remove: (key: string) => set(key, level(key) - 1),
    get size() {
      return table.size;
    },
  };
}

export function createSignInThrottle(opts: {
  now: () => number;
  limits: SignInLimits;
  maxKeys?: number;
}): SignInThrottle {
  const { now, limits } = opts;
  const maxKeys = opts.maxKeys ?? MAX_KEYS;
  const users = buckets({ failures: limits.perUser, perMs: limits.windowMs }, maxKeys, now);
  const addresses = buckets({ failures: limits.perAddress, perMs: limits.windowMs }, maxKeys, now);
  const pairs = buckets({ failures: limits.perUser, perMs: limits.windowMs }, maxKeys, now);
  /** user and address → when they last signed in together (ms). */
  const known = new Map<string, number>();
  // an address never holds \n, so a key splits back at its last one
  const pairKey = (user: string, address: string) => `${userKey(user)}\n${address}`;
  const isKnown = (pair: string) => {
    const at = known.get(pair);
    if (at === undefined) return false;
    if (now() - at < REMEMBER_PAIR_MS) return true;
    known.delete(pair);
    return false;
  };
  const uncount = (user: string, address: string) => {
    users.remove(userKey(user));
    addresses.remove(address);
    pairs.remove(pairKey(user, address));
  };

  return {
    admit(user, address) {
      const pair = pairKey(user, address);
      if (isKnown(pair)) {
        const wait = pairs.wait(pair);
        if (wait > 0) return { admitted: false, limitedBy: 'user at this address', retryAfterSeconds: wait };
      } else {
        const byUser = users.wait(userKey(user));
        const byAddress = addresses.wait(address);
        if (byUser > 0 || byAddress > 0) {
          return byUser >= byAddress
            ? { admitted: false, limitedBy: 'user', retryAfterSeconds: byUser }
            : { admitted: false, limitedBy: 'address', retryAfterSeconds: byAddress };
        }
      }
      // counted everywhere, so a remembered pair's failures hold the user and address for others too
      users.add(userKey(user));
      addresses.add(address);
      pairs.add(pair);
      return { admitted: true };
    },
    succeeded(user, address) {
      uncount(user, address);
      const pair = pairKey(user, address);
      known.delete(pair);
      known.set(pair, now());
      if (known.size > maxKeys) known.delete(known.keys().next().value as string);
    },
    notChecked: uncount,
    size: () => ({ users: users.size, addresses: addresses.size, pairs: known.size }),
  };
}

/**
 * The address a client is throttled by: IPv4 as it is (also when Node gives it IPv4-mapped,
 * `::ffff:a.b.c.d`); IPv6 by its /64, the least a single holder gets, so that hopping within
 * it does not reset the count.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const bare = address.split('%')[0] as string; // a zone (fe80::1%eth0) is no part of the address
  const groups = (s: string) => (s === '' ? [] : s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])));
  const halves = bare.split('::');
  if (halves.length > 2) return address;
  const left = groups(halves[0] as string);
  const right = halves.length === 2 ? groups(halves[1] as string) : [];
  const zeros = halves.length === 2 ? 8 - left.length - right.length : 0;
  const all = [...left, ...Array.from({ length: Math.max(0, zeros) }, () => '0'), ...right];
  if (all.length !== 8 || !all.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return address;
  return `${all
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
