/**
 * What a batch's Slack thread gets, and when (SPEC §10 "Slack, for a batch"):
 * the decisions, pure, that the notifier (notifier.ts) acts on. A batch is
 * seen through its head and its progress bitmaps (core/task-layout.ts) — what
 * is read costs the same whatever the batch's size — and only the failed
 * hosts named are read one by one.
 *
 * 1. The parent is rendered again at most every BATCH_UPDATE_MS however many
 *    events came meanwhile (one chat.update for all of them).
 * 2. The canary's outcome gets one reply, once every canary host is at rest.
 * 3. Failed hosts not named yet get one reply, grouped by error, at most every
 *    FAILURE_REPLY_MS; those left over at the end go into the end reply.
 * 4. What was posted is kept (BatchPosts), so a restarted notifier posts none
 *    of it again; a host retried since it was named drops out, and is named
 *    again if it fails again.
 */
import type { TaskSummaryOf } from '../core/task-layout.js';
import { bitOf, countBits, type Progress } from '../core/task-layout.js';
import type { BatchView, FailedHost } from './render-batch.js';

/** Least time between two updates of a batch's parent (ms). */
export const BATCH_UPDATE_MS = 2000;
/** Least time between two replies naming failed hosts (ms). */
export const FAILURE_REPLY_MS = 10_000;
/** Failed hosts named (and so read) in one reply; the rest wait for the next. */
export const NAMED_AT_ONCE = 200;
/** Failed hosts the parent names. */
export const PARENT_FAILED = 20;

/** What was posted in a batch's thread besides the parent (kept in ocp_slack beside the thread). */
export interface BatchPosts {
  /** The canary's outcome, once its reply was posted. */
  canary?: 'passed' | 'failed';
  /** Chains a reply named as failed (a bitmap as progress keeps them). */
  named: string;
  /** Epoch ms of the last reply naming failed hosts. */
  namedAt?: number;
}

export const NO_POSTS: BatchPosts = { named: '' };

/** Hosts by where their chain is: every host counted once. */
export function batchCounts(hosts: number, p: Progress | undefined): BatchView['counts'] {
  if (!p) return { successful: 0, failed: 0, running: 0, pending: hosts };
  const rested = Math.min(hosts, countBits(p.rested));
  const failed = Math.min(rested, countBits(p.failed));
  const running = Math.max(0, Math.min(hosts, p.opened) - rested);
  return { successful: rested - failed, failed, running, pending: Math.max(0, hosts - rested - running) };
}

/** Indexes of the bits set in `bits` (and not in `except`), in order, at most `limit`. */
export function setBits(bits: string, limit = Number.POSITIVE_INFINITY, except = ''): number[] {
  const found: number[] = [];
  for (let d = 0; d < bits.length && found.length < limit; d++) {
    const on = Number.parseInt(bits[d] ?? '0', 16) & ~Number.parseInt(except[d] ?? '0', 16);
    if (on === 0) continue;
    for (let b = 0; b < 4 && found.length < limit; b++) if ((on >> b) & 1) found.push(d * 4 + b);
  }
  return found;
}

/** `a` without the bits not in `b` (a chain named once and retried since is no longer named). */
function both(a: string, b: string): string {
  let out = '';
  for (let d = 0; d < a.length; d++) {
    out += (Number.parseInt(a[d] ?? '0', 16) & Number.parseInt(b[d] ?? '0', 16)).toString(16);
  }
  return out.replace(/0+$/, '');
}

function withIdx(bits: string, idx: readonly number[]): string {
  const digits = bits.split('');
  for (const i of idx) {
    while (digits.length <= i >> 2) digits.push('0');
    digits[i >> 2] = (Number.parseInt(digits[i >> 2] ?? '0', 16) | (1 << (i & 3))).toString(16);
  }
  return digits.join('');
}

/**
 * The canary's outcome once every canary host (the first `canary` chains) is
 * at rest: passed when none failed. Undefined while one still runs, or when
 * the batch has no canary.
 */
export function canaryOutcome(
  canary: number | undefined,
  hosts: number,
  p: Progress | undefined,
): { outcome: 'passed' | 'failed'; failed: number[] } | undefined {
  if (!p || canary === undefined || !Number.isInteger(canary) || canary <= 0) return undefined;
  const n = Math.min(canary, hosts);
  const failed: number[] = [];
  for (let i = 0; i < n; i++) {
    if (!bitOf(p.rested, i)) return undefined;
    if (bitOf(p.failed, i)) failed.push(i);
  }
  return { outcome: failed.length === 0 ? 'passed' : 'failed', failed };
}

/** What is due in the thread now. */
export interface DuePosts {
  /** Post the canary's outcome (the canary hosts that failed: read them to name them). */
  canary?: { outcome: 'passed' | 'failed'; canary: number; failed: number[] };
  /** Failed chains to name now, grouped by error (read them); empty: no such reply. */
  name: number[];
  /** Failed hosts left unnamed beyond `name` (the end reply counts them). */
  more: number;
}

/**
 * What the thread gets now. While the batch runs: the canary's outcome once
 * known, and the failed hosts not named yet, at most every FAILURE_REPLY_MS.
 * `ending` (the end is being posted): every failed host not named yet goes
 * into the end reply, however recent the last one. An ended batch otherwise
 * gets nothing: its end reply names what is left.
 */
export function duePosts(s: {
  running: boolean;
  ending: boolean;
  now: number;
  hosts: number;
  canary: number | undefined;
  progress: Progress | undefined;
  posts: BatchPosts;
}): DuePosts {
  const none: DuePosts = { name: [], more: 0 };
  if ((!s.running && !s.ending) || !s.progress) return none;
  const c = s.posts.canary === undefined ? canaryOutcome(s.canary, s.hosts, s.progress) : undefined;
  const canary = c && { ...c, canary: Math.min(s.canary as number, s.hosts) };
  // The canary's failed hosts are named in its own reply.
  const named = withIdx(both(s.posts.named, s.progress.failed), canary?.failed ?? []);
  const waiting = countBits(s.progress.failed) - countBits(both(s.progress.failed, named));
  const due = s.ending || s.posts.namedAt === undefined || s.now - s.posts.namedAt >= FAILURE_REPLY_MS;
  const name = due && waiting > 0 ? setBits(s.progress.failed, NAMED_AT_ONCE, named) : [];
  return {
    ...(canary ? { canary } : {}),
    name,
    more: s.ending ? waiting - name.length : 0,
  };
}

/** BatchPosts after what `due` asked for was posted at `now`. */
export function afterPosts(
  posts: BatchPosts,
  progress: Progress,
  due: DuePosts,
  now: number,
  ending: boolean,
): BatchPosts {
  // An end reply names (or counts) every failed host: all of them are done with.
  const named = ending
    ? progress.failed
    : withIdx(both(posts.named, progress.failed), [...(due.canary?.failed ?? []), ...due.name]);
  return {
    ...(posts.canary || due.canary ? { canary: posts.canary ?? due.canary?.outcome } : {}),
    named: named.replace(/0+$/, ''),
    ...(due.name.length > 0 ? { namedAt: now } : posts.namedAt === undefined ? {} : { namedAt: posts.namedAt }),
  };
}

/** Whether `after` says anything `before` did not (nothing to store otherwise). */
export function postsChanged(before: BatchPosts, after: BatchPosts): boolean {
  return (
    before.canary !== after.canary ||
    before.namedAt !== after.namedAt ||
    before.named.replace(/0+$/, '') !== after.named.replace(/0+$/, '')
  );
}

/** Wait before the next update of a parent last updated at `lastUpdate` (coalescing the events meanwhile). */
export function updateDelay(lastUpdate: number, now: number, minMs = BATCH_UPDATE_MS): number {
  return Math.max(0, lastUpdate + minMs - now);
}

const timeOf = (s: string | undefined): number | undefined => {
  const t = s === undefined ? Number.NaN : Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
};

/** The batch as its parent shows it, from its head and progress and the failed hosts read. */
export function batchView(
  b: { task: TaskSummaryOf; hosts: number; progress: Progress | undefined },
  failed: readonly FailedHost[],
  requester: string,
  now: number,
): BatchView {
  const { task } = b;
  const { reason, selector, paused } = task.context.stringMap;
  const finishedAt = task.status === 'RUNNING' ? undefined : timeOf(task.finishTime);
  return {
    taskId: task.id,
    name: task.name,
    status: task.status,
    requester,
    ...(reason ? { reason } : {}),
    startedAt: timeOf(task.startTime) ?? now,
    ...(finishedAt === undefined ? {} : { finishedAt }),
    hosts: b.hosts,
    counts: batchCounts(b.hosts, b.progress),
    failed,
    ...(paused === 'true' ? { paused: true } : {}),
    ...(selector ? { selector } : {}),
  };
}
