/** The request log in KV: `req.<requestId>` → its entry, in ocp_requests (aged out after retention.tasks). */
import type { KV } from 'nats';
import { withCurrentOrigin } from '../contracts/origin.js';
import type { RequestEntry, RequestLog } from '../tasks/ports.js';
import { decodeJson, encodeJson, getLive, isCasConflict } from './kv-json.js';

const key = (requestId: string) => `req.${requestId}`;

export function createRequestLog(kv: KV): RequestLog {
  return {
    async get(requestId) {
      const e = await getLive(kv, key(requestId));
      return e ? withCurrentOrigin(decodeJson<RequestEntry>(e)) : undefined;
    },
    async reserve(requestId, entry) {
      try {
        await kv.create(key(requestId), encodeJson(entry));
        return true;
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        return false;
      }
    },
    async settle(requestId, entry) {
      await kv.put(key(requestId), encodeJson(entry));
    },
    async forget(requestId) {
      await kv.delete(key(requestId));
    },
  };
}
