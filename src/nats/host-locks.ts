/**
 * One agent operation per host: `host.<id>` → `{taskId, at}` in a bucket with
 * no max age. A lock is never judged by its age alone (time passes while its
 * holder cannot refresh: NATS away, a queue wait, between two steps): it goes
 * when its holder frees it, or is replaced once the holder task has ended —
 * or, for a holder never stored (its creator died between taking the lock and
 * storing the task), once it is older than the lease. Callers judge the holder
 * (they have the task store); this module only takes, replaces and frees.
 */
import type { KV } from 'nats';
import type { AcquireResult, HostLocks, LockIntent } from '../tasks/ports.js';
import { decodeJson, encodeJson, getLive, isCasConflict } from './kv-json.js';

interface LockValue {
  taskId: number;
  at?: number;
  /** Taken by an operation setting its ended task running again (see holderIsGone). */
  reopening?: true;
}

const key = (hostId: number) => `host.${hostId}`;

export function createHostLocks(kv: KV): HostLocks {
  /** Locks this process took or refreshed: host → holder and when (ms). */
  const taken = new Map<number, { taskId: number; at: number; revision: number }>();

  const lockValue = (taskId: number, at: number, intent?: LockIntent): LockValue =>
    intent?.reopening ? { taskId, at, reopening: true } : { taskId, at };

  async function acquire(hostId: number, taskId: number, intent?: LockIntent): Promise<AcquireResult> {
    for (;;) {
      const entry = await getLive(kv, key(hostId));
      const at = Date.now();
      try {
        if (!entry) {
          const revision = await kv.create(key(hostId), encodeJson(lockValue(taskId, at, intent)));
          taken.set(hostId, { taskId, at, revision });
          return { ok: true, revision, fresh: true };
        }
        const value = decodeJson<LockValue>(entry);
        if (value.taskId !== taskId) {
          return {
            ok: false,
            holder: value.taskId,
            revision: entry.revision,
            at: value.at ?? 0,
            reopening: value.reopening === true,
          };
        }
        const revision = await kv.update(key(hostId), encodeJson(lockValue(taskId, at, intent)), entry.revision);
        taken.set(hostId, { taskId, at, revision });
        return { ok: true, revision, fresh: false };
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
  }

  return {
    acquire,
    async hold(hostId, taskId, freshMs) {
      const mine = taken.get(hostId);
      if (mine && mine.taskId === taskId && Date.now() - mine.at < freshMs) {
        return { ok: true, revision: mine.revision, fresh: false };
      }
      // Held by the task already (its creator took it): one read says so. Its
      // age matters only for a holder not stored yet, and this one runs.
      const entry = await getLive(kv, key(hostId));
      if (entry && decodeJson<LockValue>(entry).taskId === taskId) {
        taken.set(hostId, { taskId, at: Date.now(), revision: entry.revision });
        return { ok: true, revision: entry.revision, fresh: false };
      }
      return acquire(hostId, taskId);
    },
    async replace(hostId, taskId, staleRevision, intent) {
      try {
        const at = Date.now();
        const revision = await kv.update(key(hostId), encodeJson(lockValue(taskId, at, intent)), staleRevision);
        taken.set(hostId, { taskId, at, revision });
        return revision;
      } catch (err) {
        if (isCasConflict(err)) return false;
        throw err;
      }
    },
    async release(hostId, taskId, revision) {
      const mine = taken.get(hostId);
      if (mine?.taskId === taskId) taken.delete(hostId);
      // The lock as this process last saw it, still that revision: one delete frees it.
      if (mine?.taskId === taskId && (revision === undefined || revision === mine.revision)) {
        try {
          await kv.delete(key(hostId), { previousSeq: mine.revision });
          return;
        } catch (err) {
          if (!isCasConflict(err)) throw err;
        }
      }
      const entry = await getLive(kv, key(hostId));
      if (!entry || decodeJson<LockValue>(entry).taskId !== taskId) return;
      if (revision !== undefined && entry.revision !== revision) return;
      try {
        await kv.delete(key(hostId), { previousSeq: entry.revision });
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    },
    async lockOf(hostId) {
      const entry = await getLive(kv, key(hostId));
      return entry ? { taskId: decodeJson<LockValue>(entry).taskId, revision: entry.revision } : undefined;
    },
    async holder(hostId) {
      const entry = await getLive(kv, key(hostId));
      return entry ? decodeJson<LockValue>(entry).taskId : undefined;
    },
  };
}
