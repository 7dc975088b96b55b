/**
 * Where ordered delivery records its place, per task, in a KV bucket of the
 * notifier's own (the Slack notifier: ocp_slack, key task.<id>, and a batch's
 * chains at task.<id>.c.<idx>), by compare-and-set; and what the Slack notifier
 * posted in a batch's thread on its own (task.<id>.posts).
 */
import type { KV } from 'nats';
import type { DeliveryState, DeliveryStates } from '../notify/ports.js';
import type { BatchPosts } from '../slack/batch-thread.js';
import type { BatchPostsStore } from '../slack/ports.js';
import { decodeJson, encodeJson, getLive, isCasConflict } from './kv-json.js';

export function createDeliveryStates<T extends object>(kv: KV): DeliveryStates<T> {
  const key = (taskId: number) => `task.${taskId}`;
  /** A batch's chain: its events have a sequence of their own. */
  const chainKey = (taskId: number, chain: number) => `task.${taskId}.c.${chain}`;
  return {
    async get(taskId) {
      const entry = await getLive(kv, key(taskId));
      return entry ? { state: decodeJson<DeliveryState<T>>(entry), revision: entry.revision } : undefined;
    },
    async save(taskId, state, revision) {
      try {
        if (revision === undefined) return await kv.create(key(taskId), encodeJson(state));
        return await kv.update(key(taskId), encodeJson(state), revision);
      } catch (err) {
        if (isCasConflict(err)) return undefined;
        throw err;
      }
    },
    async getChain(taskId, chain) {
      const entry = await getLive(kv, chainKey(taskId, chain));
      return entry ? { lastSeq: decodeJson<{ lastSeq: number }>(entry).lastSeq, revision: entry.revision } : undefined;
    },
    async saveChain(taskId, chain, lastSeq, revision) {
      try {
        const value = encodeJson({ lastSeq });
        if (revision === undefined) return await kv.create(chainKey(taskId, chain), value);
        return await kv.update(chainKey(taskId, chain), value, revision);
      } catch (err) {
        if (isCasConflict(err)) return undefined;
        throw err;
      }
    },
  };
}

/**
 * What the Slack notifier posted in a batch's thread besides the events it was
 * handed (the canary's outcome, the failed hosts named): ocp_slack, key
 * task.<id>.posts, by compare-and-set, so a restarted notifier posts none of
 * it again.
 */
export function createBatchPostsStore(kv: KV): BatchPostsStore {
  const key = (taskId: number) => `task.${taskId}.posts`;
  return {
    async get(taskId) {
      const entry = await getLive(kv, key(taskId));
      return entry ? { posts: decodeJson<BatchPosts>(entry), revision: entry.revision } : undefined;
    },
    async save(taskId, posts, revision) {
      try {
        if (revision === undefined) return await kv.create(key(taskId), encodeJson(posts));
        return await kv.update(key(taskId), encodeJson(posts), revision);
      } catch (err) {
        if (isCasConflict(err)) return undefined;
        throw err;
      }
    },
  };
}
