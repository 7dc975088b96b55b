/**
 * What a batch's Slack thread gets, and when (SPEC §10): counts from the
 * progress bitmaps, the canary's outcome once its hosts are at rest, failed
 * hosts named at most every 10 s and each once, what is left named by the end
 * reply, and the parent's updates coalesced to one every 2 s.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { emptyBits, type Progress, withBits } from '../../src/core/task-layout.js';
import {
  afterPosts,
  BATCH_UPDATE_MS,
  type BatchPosts,
  batchCounts,
  batchView,
  canaryOutcome,
  duePosts,
  FAILURE_REPLY_MS,
  NAMED_AT_ONCE,
  NO_POSTS,
  postsChanged,
  setBits,
  updateDelay,
} from '../../src/slack/batch-thread.js';

const bits = (n: number, on: readonly number[]) => withBits(emptyBits(n), new Map(on.map((i) => [i, true] as const)));

/** A batch of `hosts`: `opened` chains may start, `rested` are at rest, `failed` of them failed. */
function progress(hosts: number, opened: number, rested: readonly number[], failed: readonly number[] = []): Progress {
  return { opened, rested: bits(hosts, rested), failed: bits(hosts, failed) };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const T = 1_000_000;

describe('counts from the progress', () => {
  test('every host counted once: succeeded, failed, running, waiting', () => {
    assert.deepEqual(batchCounts(10, progress(10, 6, [0, 1, 2, 3], [1, 3])), {
      successful: 2,
      failed: 2,
      running: 2,
      pending: 4,
    });
    assert.deepEqual(batchCounts(10, undefined), { successful: 0, failed: 0, running: 0, pending: 10 });
    assert.deepEqual(batchCounts(5, progress(5, 5, range(0, 5), [4])), {
      successful: 4,
      failed: 1,
      running: 0,
      pending: 0,
    });
  });

  test('set bits in order, with a limit and an exception', () => {
    const b = bits(5000, [3, 4, 17, 4999]);
    assert.deepEqual(setBits(b), [3, 4, 17, 4999]);
    assert.deepEqual(setBits(b, 2), [3, 4]);
    assert.deepEqual(setBits(b, 10, bits(5000, [4])), [3, 17, 4999]);
  });
});

describe('the canary', () => {
  test('no outcome while a canary host runs, or without a canary', () => {
    assert.equal(canaryOutcome(3, 10, progress(10, 3, [0, 1])), undefined);
    assert.equal(canaryOutcome(undefined, 10, progress(10, 10, range(0, 10))), undefined);
    assert.equal(canaryOutcome(0, 10, progress(10, 10, range(0, 10))), undefined);
  });
  test('passed when every canary host succeeded; failed naming those that failed', () => {
    assert.deepEqual(canaryOutcome(3, 10, progress(10, 10, [0, 1, 2, 5], [5])), { outcome: 'passed', failed: [] });
    assert.deepEqual(canaryOutcome(3, 10, progress(10, 3, [0, 1, 2], [1])), { outcome: 'failed', failed: [1] });
    assert.deepEqual(canaryOutcome(30, 2, progress(2, 2, [0, 1])), { outcome: 'passed', failed: [] });
  });
  test('posted once, while running or with the end; its failed hosts are not named again', () => {
    const p = progress(10, 3, [0, 1, 2], [1]);
    const s = { running: true, ending: false, now: T, hosts: 10, canary: 3, progress: p };
    const due = duePosts({ ...s, posts: NO_POSTS });
    assert.deepEqual(due.canary, { outcome: 'failed', failed: [1], canary: 3 });
    assert.deepEqual(due.name, [], 'named in the canary reply');
    const posts = afterPosts(NO_POSTS, p, due, T, false);
    assert.equal(posts.canary, 'failed');
    assert.equal(duePosts({ ...s, posts }).canary, undefined);
    assert.equal(duePosts({ ...s, running: false, ending: true, posts: NO_POSTS }).canary?.outcome, 'failed');
  });
});

describe('failed hosts named in replies', () => {
  const hosts = 200;
  const base = { running: true, ending: false, hosts, canary: undefined };

  test('the first failures at once; later ones wait 10 s after the last reply, then all go in one', () => {
    const p1 = progress(hosts, 50, range(0, 20), [4, 9]);
    const first = duePosts({ ...base, now: T, progress: p1, posts: NO_POSTS });
    assert.deepEqual(first.name, [4, 9]);
    const posts = afterPosts(NO_POSTS, p1, first, T, false);
    assert.equal(posts.namedAt, T);

    const p2 = progress(hosts, 80, range(0, 60), [4, 9, 30, 31, 55]);
    assert.deepEqual(duePosts({ ...base, now: T + 3000, progress: p2, posts }).name, [], 'too soon');
    assert.deepEqual(
      duePosts({ ...base, now: T + FAILURE_REPLY_MS, progress: p2, posts }).name,
      [30, 31, 55],
      'each named once',
    );
  });

  test('nothing new to name: no reply, and nothing to record', () => {
    const p = progress(hosts, 50, range(0, 20), [4]);
    const posts = afterPosts(NO_POSTS, p, duePosts({ ...base, now: T, progress: p, posts: NO_POSTS }), T, false);
    const again = duePosts({ ...base, now: T + 60_000, progress: p, posts });
    assert.deepEqual(again, { name: [], more: 0 });
    assert.equal(postsChanged(posts, afterPosts(posts, p, again, T + 60_000, false)), false);
  });

  test('a host retried since it was named is named again when it fails again', () => {
    const failedOnce = progress(hosts, 50, [0, 1], [1]);
    const posts = afterPosts(
      NO_POSTS,
      failedOnce,
      duePosts({ ...base, now: T, progress: failedOnce, posts: NO_POSTS }),
      T,
      false,
    );
    const retried = progress(hosts, 50, [0], []);
    const pruned = afterPosts(
      posts,
      retried,
      duePosts({ ...base, now: T + 1, progress: retried, posts }),
      T + 1,
      false,
    );
    const failedAgain = progress(hosts, 50, [0, 1], [1]);
    assert.deepEqual(duePosts({ ...base, now: T + FAILURE_REPLY_MS, progress: failedAgain, posts: pruned }).name, [1]);
  });

  test('an ended batch gets no reply but its end; the end names what is left, however recent the last reply', () => {
    const p = progress(hosts, hosts, range(0, hosts), [3, 150, 151]);
    const posts: BatchPosts = { named: bits(hosts, [3]), namedAt: T };
    assert.deepEqual(duePosts({ ...base, running: false, now: T + 1, progress: p, posts }), { name: [], more: 0 });
    const end = duePosts({ ...base, running: false, ending: true, now: T + 1, progress: p, posts });
    assert.deepEqual(end, { name: [150, 151], more: 0 });
    const after = afterPosts(posts, p, end, T + 1, true);
    assert.deepEqual(setBits(after.named), [3, 150, 151]);
  });

  test('thousands failing at once: one reply names a bounded number, the end counts the rest', () => {
    const n = 5000;
    const p = progress(n, n, range(0, n), range(0, 3000));
    const due = duePosts({ ...base, hosts: n, now: T, progress: p, posts: NO_POSTS });
    assert.equal(due.name.length, NAMED_AT_ONCE);
    const end = duePosts({ ...base, hosts: n, running: false, ending: true, now: T, progress: p, posts: NO_POSTS });
    assert.equal(end.name.length, NAMED_AT_ONCE);
    assert.equal(end.more, 3000 - NAMED_AT_ONCE);
    assert.equal(setBits(afterPosts(NO_POSTS, p, end, T, true).named).length, 3000);
  });
});

describe('the parent', () => {
  test('updates coalesce: the next waits 2 s after the last', () => {
    assert.equal(updateDelay(T, T + 500), BATCH_UPDATE_MS - 500);
    assert.equal(updateDelay(T, T + 5000), 0);
    assert.equal(updateDelay(0, T), 0, 'never updated: at once');
  });

  test('its view: counts, times, reason, selector and paused from the head', () => {
    const task = {
      id: 7,
      name: 'Batch restart OCP agent',
      status: 'RUNNING' as const,
      startTime: '2026-12-03T10:00:00.000+00:00',
      creator: 'api:ops',
      context: { parallel: true, stringMap: { reason: 'upgrade', selector: 'zone=z1', paused: 'true' }, listMap: {} },
    } as unknown as Parameters<typeof batchView>[0]['task'];
    const v = batchView({ task, hosts: 4, progress: progress(4, 4, [0, 1], [1]) }, [], 'api:ops', T);
    assert.deepEqual(v.counts, { successful: 1, failed: 1, running: 2, pending: 0 });
    assert.equal(v.startedAt, Date.parse('2026-12-03T10:00:00Z'));
    assert.equal(v.finishedAt, undefined);
    assert.equal(v.reason, 'upgrade');
    assert.equal(v.selector, 'zone=z1');
    assert.equal(v.paused, true);
  });
});
