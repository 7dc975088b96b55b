/** A subtask's output tail (≤ 64 KiB) and, when it failed, why. */
import type { KV } from 'nats';
import { decodeJson, encodeJson, getLive } from './kv-json.js';

export interface SubtaskLog {
  log: string;
  truncated: boolean;
  exitCode?: number;
  /** Why the subtask failed, in a sentence: "exit code 3", "timed out after 60 s", … */
  error?: string;
}

export interface SubtaskLogs {
  put(taskId: number, subtaskId: number, log: SubtaskLog): Promise<void>;
  get(taskId: number, subtaskId: number): Promise<SubtaskLog | undefined>;
}

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
