/**
 * Taking and freeing the host locks of a task. Several hosts (a batch, a
 * retry) are all taken or none: on the first busy host the ones taken are
 * freed again and the busy one is named.
 */
import type { HostConfig } from '../config.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { TaskDeps } from './deps.js';

/** Lock `host` for `taskId`; a lock left by a task that has ended is taken over. */
async function claimHost(deps: TaskDeps, host: HostConfig, taskId: number): Promise<void> {
  for (;;) {
    const got = await deps.locks.acquire(host.id, taskId);
    if (got.ok) return;
    // A holder not stored yet is being created right now: busy. One that has ended
    // left its lock behind (it died before freeing it): take it over.
    const holder = await deps.store.get(got.holder);
    if (!holder || holder.record.task.status === 'RUNNING') {
      throw new CodedError(
        ErrorCode.hostBusy,
        `an agent operation already runs on host ${host.id} (${host.name}): task ${got.holder}`,
        'hostId',
      );
    }
    if (await deps.locks.replace(host.id, taskId, got.revision)) return;
  }
}

export async function claimHosts(deps: TaskDeps, hosts: readonly HostConfig[], taskId: number): Promise<void> {
  const taken: HostConfig[] = [];
  try {
    for (const host of hosts) {
      await claimHost(deps, host, taskId);
      taken.push(host);
    }
  } catch (err) {
    await releaseHosts(
      deps,
      taken.map((h) => h.id),
      taskId,
    );
    throw err;
  }
}

export async function releaseHosts(deps: TaskDeps, hostIds: Iterable<number>, taskId: number): Promise<void> {
  for (const hostId of new Set(hostIds)) await deps.locks.release(hostId, taskId);
}
