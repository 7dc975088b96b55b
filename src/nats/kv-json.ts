/** JSON values in KV, and the compare-and-set conflict test. */
import type { KV, KvEntry } from 'nats';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson<T>(entry: KvEntry): T {
  return JSON.parse(decoder.decode(entry.value)) as T;
}

/** The entry, unless absent, deleted or purged. */
export async function getLive(kv: KV, key: string): Promise<KvEntry | null> {
  const e = await kv.get(key);
  return e && e.operation === 'PUT' ? e : null;
}

/** A create or update lost a compare-and-set race (wrong last sequence / key exists). */
export function isCasConflict(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence|key exists/i.test(err.message);
}
