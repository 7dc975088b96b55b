/** "Run this subtask" messages, deduplicated per subtask run. */
import { type JetStreamClient, headers as natsHeaders } from 'nats';
import type { EnqueueWork } from '../tasks/ports.js';
import { encodeJson } from './kv-json.js';
import { SUBJECTS } from './streams.js';

export function createWorkQueue(js: JetStreamClient): EnqueueWork {
  return async (item, traceId) => {
    const h = natsHeaders();
    h.set('X-Trace-Id', traceId);
    await js.publish(SUBJECTS.work, encodeJson(item), {
      msgID: `work-${item.taskId}-${item.subtaskId}-${item.runTime}`,
      headers: h,
    });
  };
}
