/** JSON values in KV, and the compare-and-set conflict test. */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { KV, KvEntry } from 'nats';
import { JS_ERR, jetStreamErrCode } from './jetstream-errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Above this, a value is stored gzipped (level 1). */
const GZIP_ABOVE_BYTES = 64 * 1024;

/**
 * JSON, gzipped when large: a fleet's task record (~400 KB at 200 hosts, and
 * rewritten on every change) shrinks ~17× for a few ms of CPU. Small values
 * stay plain JSON, readable with any NATS tool.
 */
export function encodeJsonCompact(value: unknown): Uint8Array {
  const json = encoder.encode(JSON.stringify(value));
  return json.length > GZIP_ABOVE_BYTES ? gzipSync(json, { level: 1 }) : json;
}

/** Plain or gzipped JSON (gzip's magic bytes 1f 8b never begin JSON). */
export function decodeJsonBytes<T>(value: Uint8Array): T {
  const plain = value[0] === 0x1f && value[1] === 0x8b ? gunzipSync(value) : value;
  return JSON.parse(decoder.decode(plain)) as T;
}

export function decodeJson<T>(entry: KvEntry): T {
  return decodeJsonBytes<T>(entry.value);
}

/** The entry, unless absent, deleted or purged. */
export async function getLive(kv: KV, key: string): Promise<KvEntry | null> {
  const e = await kv.get(key);
  return e && e.operation === 'PUT' ? e : null;
}

/** A create or update lost a compare-and-set race (wrong last sequence). */
export function isCasConflict(err: unknown): boolean {
  return jetStreamErrCode(err) === JS_ERR.wrongLastSequence;
}

/**
 * The latest entry of every key matching `filter`, read once by one ordered
 * consumer: deletes and purges are yielded too (a caller drops them), and a
 * key written while the read runs may come twice. nats.js may call a watch's
 * `initializedFn` before `watch()` returns (nothing, or everything, already
 * delivered), and with `ignoreDeletes` never when the last entry is a delete,
 * so deletes are read here and the early call is remembered.
 */
export async function* latestOnce(
  kv: KV,
  filter: string,
  opts: { headersOnly?: boolean } = {},
): AsyncGenerator<KvEntry> {
  let iter: Awaited<ReturnType<KV['watch']>> | undefined;
  let caughtUp = false;
  iter = await kv.watch({
    key: filter,
    headers_only: opts.headersOnly === true,
    initializedFn: () => {
      caughtUp = true;
      iter?.stop();
    },
  });
  if (caughtUp) iter.stop();
  yield* iter;
}

/** Every live entry (not deleted or purged) whose key matches `filter`, each key once. */
export async function readLive(kv: KV, filter: string): Promise<KvEntry[]> {
  const latest = new Map<string, KvEntry>();
  for await (const e of latestOnce(kv, filter)) {
    if (e.operation === 'PUT') latest.set(e.key, e);
    else latest.delete(e.key);
  }
  return [...latest.values()];
}
