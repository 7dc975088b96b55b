/** Subtask logs in KV: `log.<taskId>.<subtaskId>`, the latest run's. */
import type { KV } from 'nats';
import type { SubtaskLog, SubtaskLogs } from '../tasks/ports.js';
import { decodeJson, encodeJson, getLive } from './kv-json.js';

export function createSubtaskLogs(kv: KV): SubtaskLogs {
  const key = (t: number, s: number) => `log.${t}.${s}`;
  return {
    async put(taskId, subtaskId, log) {
      await kv.put(key(taskId, subtaskId), encodeJson(log));
    },
    async get(taskId, subtaskId) {
      const e = await getLive(kv, key(taskId, subtaskId));
      return e ? decodeJson<SubtaskLog>(e) : undefined;
    },
  };
}
