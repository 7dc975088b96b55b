/**
 * Taking and freeing the host locks of a task. Several hosts (a batch, a
 * retry) are all taken or none: on the first busy host the ones taken are
 * freed again and the busy one is named. A call frees only what it took
 * itself: a host its task held already (a chain still running) is never
 * freed by a call that fails or loses a race.
 */
import type { HostConfig } from '../config.js';
import { hostsAtRest } from '../core/task-record.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { TaskDeps } from './deps.js';
import type { LockIntent } from './ports.js';

/**
 * Whether the task holding a lock is gone: it has ended (its executor has
 * not freed the host yet, or died before it could), or it was never stored
 * and the lock is older than the lease (its creator died in between). A holder
 * still RUNNING, or one being created right now, keeps the host however long
 * it takes; so does an ended one that a Retry, Skip or Rollback is setting
 * running again (it takes the hosts before it stores its change), for a lease.
 */
export async function holderIsGone(
  deps: TaskDeps,
  lock: { holder: number; at: number; reopening: boolean },
): Promise<boolean> {
  const stored = await deps.store.get(lock.holder);
  const young = Date.now() - lock.at <= deps.config.executor.leaseSeconds * 1000;
  if (!stored) return !young;
  return stored.record.task.status !== 'RUNNING' && !(lock.reopening && young);
}

/** A lock a call took (it was free, or its holder gone), as the call left it. */
export interface Claim {
  hostId: number;
  revision: number;
}

/** Lock `host` for `taskId`, taking over a lock whose holder is gone; the claim if this call took it. */
async function claimHost(
  deps: TaskDeps,
  host: HostConfig,
  taskId: number,
  intent: LockIntent,
): Promise<Claim | undefined> {
  for (;;) {
    const got = await deps.locks.acquire(host.id, taskId, intent);
    if (got.ok) return got.fresh ? { hostId: host.id, revision: got.revision } : undefined;
    if (!(await holderIsGone(deps, got))) throw new HostBusy(host, got.holder);
    const revision = await deps.locks.replace(host.id, taskId, got.revision, intent);
    if (revision !== false) return { hostId: host.id, revision };
  }
}

/** Lock round trips in flight at once for one task (a fleet's hosts are claimed side by side). */
const CLAIMS_AT_ONCE = 256;
/** Busy hosts a refusal names at most. */
const BUSY_NAMED = 20;

/** A host another task holds: the refusal names it and its task. */
class HostBusy extends CodedError {
  constructor(
    readonly host: HostConfig,
    readonly holder: number,
  ) {
    super(
      ErrorCode.hostBusy,
      `an agent operation already runs on host ${host.id} (${host.name}): task ${holder}`,
      'hostId',
    );
  }
}

async function eachHost<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = [];
  for (let i = 0; i < items.length; i += CLAIMS_AT_ONCE) {
    results.push(...(await Promise.allSettled(items.slice(i, i + CLAIMS_AT_ONCE).map(fn))));
  }
  return results;
}

/**
 * Take every host for `taskId` or none; what this call took (the hosts the
 * task held already are not in it). `reopening`: for an operation setting an
 * ended task running again, which keeps the hosts while it stores its change.
 */
export async function claimHosts(
  deps: TaskDeps,
  hosts: readonly HostConfig[],
  taskId: number,
  intent: LockIntent = {},
): Promise<Claim[]> {
  const results = await eachHost(hosts, (host) => claimHost(deps, host, taskId, intent));
  const claims = results.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length === 0) return claims;
  await releaseClaims(deps, claims, taskId);
  const busy = failed.flatMap((r) => (r.reason instanceof HostBusy ? [r.reason] : []));
  if (busy.length < failed.length || busy.length === 1)
    throw (failed.find((r) => !(r.reason instanceof HostBusy)) ?? failed[0])?.reason;
  // A batch: every busy host is named (the first 20), with the task that holds it.
  const named = busy
    .slice(0, BUSY_NAMED)
    .map((b) => `${b.host.id} (${b.host.name}): task ${b.holder}`)
    .join(', ');
  const more = busy.length > BUSY_NAMED ? ` and ${busy.length - BUSY_NAMED} more` : '';
  throw new CodedError(
    ErrorCode.hostBusy,
    `an agent operation already runs on ${busy.length} of the hosts: ${named}${more}`,
    'hostIds',
  );
}

/** Free what a call took, each lock only if nobody touched it since. */
export async function releaseClaims(deps: TaskDeps, claims: readonly Claim[], taskId: number): Promise<void> {
  const failed = (await eachHost(claims, (c) => deps.locks.release(c.hostId, taskId, c.revision))).find(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failed) throw failed.reason;
}

/**
 * Free the hosts an ended task held, unless an operation has set it running
 * there again meanwhile: each lock is read first and the task after, and a
 * lock is freed only if the task as read leaves its host at rest and the lock
 * is still as read. An operation takes its hosts before it stores its change,
 * so a lock it took after the read has another revision (kept), and one it
 * took before has its change seen in the task (kept) — unless the change was
 * stored in the instant between the two reads.
 */
export async function releaseIfAtRest(deps: TaskDeps, taskId: number, hostIds: Iterable<number>): Promise<void> {
  const held: Claim[] = [];
  for (const hostId of new Set(hostIds)) {
    const lock = await deps.locks.lockOf(hostId);
    if (lock?.taskId === taskId) held.push({ hostId, revision: lock.revision });
  }
  if (held.length === 0) return;
  const stored = await deps.store.get(taskId);
  const atRest = new Set(stored ? hostsAtRest(stored.record) : held.map((c) => c.hostId));
  await releaseClaims(
    deps,
    held.filter((c) => atRest.has(c.hostId)),
    taskId,
  );
}

export async function releaseHosts(deps: TaskDeps, hostIds: Iterable<number>, taskId: number): Promise<void> {
  const failed = (await eachHost([...new Set(hostIds)], (hostId) => deps.locks.release(hostId, taskId))).find(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failed) throw failed.reason;
}
