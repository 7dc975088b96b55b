/**
 * Ids unique across tasks, processes and restarts: a counter in KV, reserved
 * by compare-and-set in blocks, so one round trip serves many ids.
 */
import { randomBytes } from 'node:crypto';
import type { KV } from 'nats';
import type { IdAllocator } from '../tasks/ports.js';
import { decodeJson, encodeJson, getLive, isCasConflict } from './kv-json.js';

/**
 * A random name for this store, made once when the id bucket is new. Ids start
 * again at 1 if the store is ever wiped; run keys on hosts carry this name so a
 * new task can never mistake an old run's files on a host for its own.
 */
export async function storeEpoch(kv: KV): Promise<string> {
  const candidate = randomBytes(4).toString('hex');
  try {
    await kv.create('epoch', encodeJson(candidate));
    return candidate;
  } catch (err) {
    if (!isCasConflict(err)) throw err;
    const entry = await getLive(kv, 'epoch');
    if (!entry) throw err;
    return decodeJson<string>(entry);
  }
}

const KEY = 'next';

export function createIdAllocator(kv: KV, blockSize = 1000): IdAllocator {
  let next = 0;
  let end = 0; // exclusive
  let queue: Promise<unknown> = Promise.resolve();

  async function reserve(atLeast: number): Promise<void> {
    const size = Math.max(blockSize, atLeast);
    for (;;) {
      const entry = await getLive(kv, KEY);
      const start = entry ? decodeJson<number>(entry) : 1;
      try {
        if (entry) await kv.update(KEY, encodeJson(start + size), entry.revision);
        else await kv.create(KEY, encodeJson(start + size));
        next = start;
        end = start + size;
        return;
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
    }
  }

  return {
    take(count) {
      // Serialise callers in this process so a block is never handed out twice.
      const result = queue.then(async () => {
        if (end - next < count) await reserve(count);
        const ids = Array.from({ length: count }, (_, i) => next + i);
        next += count;
        return ids;
      });
      queue = result.catch(() => undefined);
      return result;
    },
    skipPast(id) {
      const result = queue.then(async () => {
        next = end = 0; // this process's block may lie below too
        for (;;) {
          const entry = await getLive(kv, KEY);
          const start = entry ? decodeJson<number>(entry) : 1;
          if (start > id) return;
          try {
            if (entry) await kv.update(KEY, encodeJson(id + 1), entry.revision);
            else await kv.create(KEY, encodeJson(id + 1));
            return;
          } catch (err) {
            if (!isCasConflict(err)) throw err;
          }
        }
      });
      queue = result.catch(() => undefined);
      return result;
    },
  };
}
