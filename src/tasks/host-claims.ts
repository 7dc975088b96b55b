/**
 * Taking and freeing the host locks of a task. Several hosts (a batch, a
 * retry) are all taken or none: on the first busy host the ones taken are
 * freed again and the busy one is named.
 */
import type { HostConfig } from '../config.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { TaskDeps } from './deps.js';

/**
 * Whether the task holding a lock is gone: it has ended (it died before
 * freeing the host), or it was never stored and the lock is older than the
 * lease (its creator died in between). A holder still RUNNING, or one being
 * created right now, keeps the host however long it takes.
 */
export async function holderIsGone(deps: TaskDeps, holder: number, lockedAt: number): Promise<boolean> {
  const stored = await deps.store.get(holder);
  if (stored) return stored.record.task.status !== 'RUNNING';
  return Date.now() - lockedAt > deps.config.executor.leaseSeconds * 1000;
}

/** Lock `host` for `taskId`, taking over a lock whose holder is gone. */
async function claimHost(deps: TaskDeps, host: HostConfig, taskId: number): Promise<void> {
  for (;;) {
    const got = await deps.locks.acquire(host.id, taskId);
    if (got.ok) return;
    if (!(await holderIsGone(deps, got.holder, got.at))) {
      throw new CodedError(
        ErrorCode.hostBusy,
        `an agent operation already runs on host ${host.id} (${host.name}): task ${got.holder}`,
        'hostId',
      );
    }
    if (await deps.locks.replace(host.id, taskId, got.revision)) return;
  }
}

/** Lock round trips in flight at once for one task (a fleet's hosts are claimed side by side). */
const CLAIMS_AT_ONCE = 32;

async function eachHost<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<PromiseSettledResult<void>[]> {
  const results: PromiseSettledResult<void>[] = [];
  for (let i = 0; i < items.length; i += CLAIMS_AT_ONCE) {
    results.push(...(await Promise.allSettled(items.slice(i, i + CLAIMS_AT_ONCE).map(fn))));
  }
  return results;
}

export async function claimHosts(deps: TaskDeps, hosts: readonly HostConfig[], taskId: number): Promise<void> {
  const results = await eachHost(hosts, (host) => claimHost(deps, host, taskId));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!failed) return;
  await releaseHosts(
    deps,
    hosts.filter((_, i) => results[i]?.status === 'fulfilled').map((h) => h.id),
    taskId,
  );
  throw failed.reason;
}

export async function releaseHosts(deps: TaskDeps, hostIds: Iterable<number>, taskId: number): Promise<void> {
  const failed = (await eachHost([...new Set(hostIds)], (hostId) => deps.locks.release(hostId, taskId))).find(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failed) throw failed.reason;
}
