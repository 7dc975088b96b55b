/**
 * One agent operation per host: `host.<id>` in a bucket whose max age is the
 * lease, so a dead holder cannot leave the lock behind; the live holder
 * refreshes it while it works.
 */
import type { KV } from 'nats';
import { decodeJson, encodeJson, getLive, isCasConflict } from './kv-json.js';

export type AcquireResult = { ok: true } | { ok: false; holder: number; revision: number };

export interface HostLocks {
  /** Take the host for `taskId`; already ours counts as taken (and refreshes it). */
  acquire(hostId: number, taskId: number): Promise<AcquireResult>;
  /**
   * As acquire, but a lock this process took or refreshed for `taskId` less
   * than `freshMs` ago counts as held without a round trip: it cannot have
   * lapsed (its max age is longer) and only its holder frees it.
   */
  hold(hostId: number, taskId: number, freshMs: number): Promise<AcquireResult>;
  /** Replace a stale holder (one whose task has ended), if it is still that revision. */
  replace(hostId: number, taskId: number, staleRevision: number): Promise<boolean>;
  /** Free the host if `taskId` holds it. */
  release(hostId: number, taskId: number): Promise<void>;
  holder(hostId: number): Promise<number | undefined>;
}

const key = (hostId: number) => `host.${hostId}`;

export function createHostLocks(kv: KV): HostLocks {
  /** Locks this process took or refreshed: host → holder and when (ms). */
  const taken = new Map<number, { taskId: number; at: number }>();

  async function acquire(hostId: number, taskId: number): Promise<AcquireResult> {
    for (;;) {
      const entry = await getLive(kv, key(hostId));
      const at = Date.now();
      try {
        if (!entry) {
          await kv.create(key(hostId), encodeJson({ taskId }));
          taken.set(hostId, { taskId, at });
          return { ok: true };
        }
        const holder = decodeJson<{ taskId: number }>(entry).taskId;
        if (holder !== taskId) return { ok: false, holder, revision: entry.revision };
        await kv.update(key(hostId), encodeJson({ taskId }), entry.revision); // refresh the max age
        taken.set(hostId, { taskId, at });
        return { ok: true };
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
  }

  return {
    acquire,
    async hold(hostId, taskId, freshMs) {
      const mine = taken.get(hostId);
      if (mine && mine.taskId === taskId && Date.now() - mine.at < freshMs) return { ok: true };
      return acquire(hostId, taskId);
    },
    async replace(hostId, taskId, staleRevision) {
      try {
        const at = Date.now();
        await kv.update(key(hostId), encodeJson({ taskId }), staleRevision);
        taken.set(hostId, { taskId, at });
        return true;
      } catch (err) {
        if (isCasConflict(err)) return false;
        throw err;
      }
    },
    async release(hostId, taskId) {
      if (taken.get(hostId)?.taskId === taskId) taken.delete(hostId);
      const entry = await getLive(kv, key(hostId));
      if (!entry || decodeJson<{ taskId: number }>(entry).taskId !== taskId) return;
      try {
        await kv.delete(key(hostId), { previousSeq: entry.revision });
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    },
    async holder(hostId) {
      const entry = await getLive(kv, key(hostId));
      return entry ? decodeJson<{ taskId: number }>(entry).taskId : undefined;
    },
  };
}
