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
