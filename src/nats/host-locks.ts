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
  /** Replace a stale holder (one whose task has ended), if it is still that revision. */
  replace(hostId: number, taskId: number, staleRevision: number): Promise<boolean>;
  /** Free the host if `taskId` holds it. */
  release(hostId: number, taskId: number): Promise<void>;
  holder(hostId: number): Promise<number | undefined>;
}

const key = (hostId: number) => `host.${hostId}`;

export function createHostLocks(kv: KV): HostLocks {
  async function acquire(hostId: number, taskId: number): Promise<AcquireResult> {
    for (;;) {
      const entry = await getLive(kv, key(hostId));
      try {
        if (!entry) {
          await kv.create(key(hostId), encodeJson({ taskId }));
          return { ok: true };
        }
        const holder = decodeJson<{ taskId: number }>(entry).taskId;
        if (holder !== taskId) return { ok: false, holder, revision: entry.revision };
        await kv.update(key(hostId), encodeJson({ taskId }), entry.revision); // refresh the max age
        return { ok: true };
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
  }

  return {
    acquire,
    async replace(hostId, taskId, staleRevision) {
      try {
        await kv.update(key(hostId), encodeJson({ taskId }), staleRevision);
        return true;
      } catch (err) {
        if (isCasConflict(err)) return false;
        throw err;
      }
    },
    async release(hostId, taskId) {
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
