/**
 * Failed HTTP Basic sign-ins throttled per user and per client address (SPEC §3; issue 10,
 * item 6), with an injected clock: src/http/sign-in-throttle.ts. And the bound on password
 * checks in flight: src/http/work-slots.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config.js';
import { addressKey, createSignInThrottle, REMEMBER_PAIR_MS } from '../../src/http/sign-in-throttle.js';
import { createWorkSlots } from '../../src/http/work-slots.js';

/** The defaults of `access.signIn`, as the service uses them. */
const DEFAULTS = parseConfig({}, {}, 'test', '/').access.signIn;
const LIMITS = { perUser: DEFAULTS.perUser, perAddress: DEFAULTS.perAddress, windowMs: DEFAULTS.windowSeconds * 1000 };

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const throttleAt = (c: ReturnType<typeof clock>, maxKeys?: number) =>
  createSignInThrottle({ now: c.now, limits: LIMITS, ...(maxKeys ? { maxKeys } : {}) });

/** `n` failed sign-ins: admitted, then left counted (no `succeeded`). */
function fail(throttle: ReturnType<typeof createSignInThrottle>, user: string, address: string, n = 1): void {
  for (let i = 0; i < n; i++) {
    const a = throttle.admit(user, address);
    assert.equal(a.admitted, true, `failure ${i + 1} of ${n} for ${user} from ${address} is admitted`);
  }
}

describe('sign-in throttle', () => {
  test('the defaults: 10 failures per user, 30 per address, per minute; a sign-in’s address remembered a day', () => {
    assert.deepEqual(DEFAULTS, { perUser: 10, perAddress: 30, windowSeconds: 60 });
    assert.equal(REMEMBER_PAIR_MS, 24 * 3600_000);
  });

  test('a user: the 11th failure within a minute is refused, from any address, with the seconds to wait', () => {
    const c = clock();
    const t = throttleAt(c);
    for (let i = 0; i < 10; i++) fail(t, 'alice', `10.0.0.${i}`);
    const refused = t.admit('alice', '10.0.0.99');
    assert.deepEqual(refused, { admitted: false, limitedBy: 'user', retryAfterSeconds: 6 });
    assert.equal(t.admit('bob', '10.0.0.99').admitted, true, 'another user is not held');
  });

  test('failures decay: one more is admitted every 6 s, all ten after a minute', () => {
    const c = clock();
    const t = throttleAt(c);
    fail(t, 'alice', '10.0.0.1', 10);
    c.advance(5_999);
    assert.deepEqual(t.admit('alice', '10.0.0.2'), { admitted: false, limitedBy: 'user', retryAfterSeconds: 1 });
    c.advance(1);
    fail(t, 'alice', '10.0.0.2');
    assert.equal(t.admit('alice', '10.0.0.3').admitted, false);
    c.advance(60_000);
    fail(t, 'alice', '10.0.0.4', 10);
    assert.equal(t.admit('alice', '10.0.0.4').admitted, false);
  });

  test('an address: the 31st failure within a minute is refused, whatever the user names; another address is not held', () => {
    const c = clock();
    const t = throttleAt(c);
    for (let i = 0; i < 30; i++) fail(t, `user-${i}`, '192.0.2.7');
    assert.deepEqual(t.admit('someone-else', '192.0.2.7'), {
      admitted: false,
      limitedBy: 'address',
      retryAfterSeconds: 2,
    });
    assert.equal(t.admit('someone-else', '192.0.2.8').admitted, true);
  });

  test('a sign-in being checked counts until it succeeds: a burst cannot get past the limit in flight', () => {
    const c = clock();
    const t = throttleAt(c);
    for (let i = 0; i < 10; i++) assert.equal(t.admit('alice', '10.0.0.1').admitted, true);
    assert.equal(t.admit('alice', '10.0.0.1').admitted, false, 'ten checks in flight already');
    t.succeeded('alice', '10.0.0.1');
    assert.equal(t.admit('alice', '10.0.0.1').admitted, true, 'the one that succeeded no longer counts');
  });

  test('a check that never ran (refused as busy) is handed back', () => {
    const c = clock();
    const t = throttleAt(c);
    fail(t, 'alice', '10.0.0.1', 9);
    assert.equal(t.admit('alice', '10.0.0.1').admitted, true);
    t.notChecked('alice', '10.0.0.1');
    assert.equal(t.admit('alice', '10.0.0.1').admitted, true);
    assert.equal(t.admit('alice', '10.0.0.1').admitted, false);
  });

  test('someone guessing a user’s password elsewhere does not lock the user out where they signed in before', () => {
    const c = clock();
    const t = throttleAt(c);
    assert.equal(t.admit('alice', '10.0.0.1').admitted, true);
    t.succeeded('alice', '10.0.0.1');
    c.advance(3600_000);
    for (let i = 0; i < 10; i++) fail(t, 'alice', `203.0.113.${i}`);
    assert.equal(t.admit('alice', '203.0.113.50').admitted, false, 'a new address is held by the user limit');
    assert.equal(t.admit('alice', '10.0.0.1').admitted, true, 'alice at her own address is not');
  });

  test('an address shared with a noisy neighbour (NAT, proxy) still lets in the users who signed in from it', () => {
    const c = clock();
    const t = throttleAt(c);
    t.admit('alice', '198.51.100.1');
    t.succeeded('alice', '198.51.100.1');
    for (let i = 0; i < 30; i++) fail(t, `guess-${i}`, '198.51.100.1');
    assert.equal(t.admit('carol', '198.51.100.1').admitted, false, 'a user new to the address is held');
    assert.equal(t.admit('alice', '198.51.100.1').admitted, true, 'alice is not');
  });

  test('a user at an address they signed in from has a limit of their own there: 10 failures a minute', () => {
    const c = clock();
    const t = throttleAt(c);
    t.admit('alice', '10.0.0.1');
    t.succeeded('alice', '10.0.0.1');
    fail(t, 'alice', '10.0.0.1', 10);
    assert.deepEqual(t.admit('alice', '10.0.0.1'), {
      admitted: false,
      limitedBy: 'user at this address',
      retryAfterSeconds: 6,
    });
    assert.equal(t.admit('alice', '10.0.0.2').admitted, false, 'those failures count for the user everywhere');
  });

  test('an address is remembered for a user for a day after their last sign-in there', () => {
    const c = clock();
    const t = throttleAt(c);
    t.admit('alice', '10.0.0.1');
    t.succeeded('alice', '10.0.0.1');
    c.advance(REMEMBER_PAIR_MS);
    fail(t, 'alice', '203.0.113.1', 10);
    assert.equal(t.admit('alice', '10.0.0.1').admitted, false, 'a day later, 10.0.0.1 is an address like any other');
  });

  test('a name longer than any user’s is held by its first 64 characters (no table grows by what a client sends)', () => {
    const c = clock();
    const t = throttleAt(c);
    const long = (tail: string) => `${'n'.repeat(64)}${tail.repeat(8000)}`;
    for (let i = 0; i < 10; i++) fail(t, long(String(i)), `10.0.0.${i}`);
    assert.deepEqual(t.admit(long('x'), '10.0.0.50'), { admitted: false, limitedBy: 'user', retryAfterSeconds: 6 });
    assert.equal(t.admit('n'.repeat(64), '10.0.0.50').admitted, true, 'the 64-character name is a name of its own');
  });

  test('memory is bounded: a flood of names and addresses keeps at most maxKeys of each', () => {
    const c = clock();
    const t = throttleAt(c, 100);
    for (let i = 0; i < 1000; i++) {
      t.admit(`user-${i}`, `10.0.${i >> 8}.${i & 255}`);
      t.succeeded(`user-${i}`, `10.0.${i >> 8}.${i & 255}`);
    }
    const s = t.size();
    assert.ok(s.users <= 100 && s.addresses <= 100 && s.pairs <= 100, JSON.stringify(s));
  });
});

describe('addressKey', () => {
  const cases: Array<[string | undefined, string]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:10.1.2.3', '10.1.2.3'],
    // IPv6: one holder gets a whole /64, so that is one address here
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::ffff', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:aaaa::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['not an address', 'not an address'],
    [undefined, 'unknown'],
  ];
  for (const [address, key] of cases) {
    test(String(address), () => assert.equal(addressKey(address), key));
  }
});

describe('work slots', () => {
  /** A piece of work that ends when told. */
  function gate() {
    let open!: () => void;
    const opened = new Promise<void>((r) => {
      open = r;
    });
    return { open, work: () => opened.then(() => 'done') };
  }

  test('runs at most `running` at once, queues `waiting` more, and refuses the rest at once', async () => {
    const slots = createWorkSlots({ running: 2, waiting: 3 });
    const gates = Array.from({ length: 6 }, gate);
    const started: number[] = [];
    const results = gates.map((g, i) =>
      slots.run(() => {
        started.push(i);
        return g.work();
      }),
    );
    assert.deepEqual(started, [0, 1], 'two run');
    assert.equal(results[5], 'busy', 'the sixth is refused: two running, three waiting');
    assert.deepEqual(slots.load(), { running: 2, waiting: 3 });
    gates[0]!.open();
    await results[0];
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1, 2], 'the first waiting one runs when a slot frees');
    for (const g of gates) g.open();
    assert.deepEqual(await Promise.all(results.slice(0, 5)), ['done', 'done', 'done', 'done', 'done']);
    assert.deepEqual(slots.load(), { running: 0, waiting: 0 });
  });

  test('a piece of work that fails frees its slot', async () => {
    const slots = createWorkSlots({ running: 1, waiting: 0 });
    const failing = slots.run(() => Promise.reject(new Error('boom')));
    assert.notEqual(failing, 'busy');
    await assert.rejects(failing as Promise<unknown>, /boom/);
    assert.equal(await slots.run(() => Promise.resolve(7)), 7);
  });
});
