/**
 * Where ordered delivery records its place, per task, in a KV bucket of the
 * notifier's own (the Slack notifier: ocp_slack, key task.<id>), by
 * compare-and-set.
 */
import type { KV } from 'nats';
import type { DeliveryState, DeliveryStates } from '../notify/ports.js';
import { decodeJson, encodeJson, getLive, isCasConflict } from './kv-json.js';

export function createDeliveryStates<T extends object>(kv: KV): DeliveryStates<T> {
  const key = (taskId: number) => `task.${taskId}`;
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
  };
}
