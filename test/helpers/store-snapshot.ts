/**
 * What the service has stored, to compare before and after hostile input: every
 * stream and KV bucket's message count and first/last sequence (any write, delete
 * or purge moves one of them; for the lock bucket, whose entries age out, the last one), and
 * the tasks themselves, key by key.
 */
import type { NatsConnection } from 'nats';

const STREAMS = [
  'OCP_CMD',
  'OCP_DOOR',
  'OCP_EVENTS',
  'OCP_WORK',
  'KV_ocp_tasks',
  'KV_ocp_requests',
  'KV_ocp_host_locks',
  'KV_ocp_logs',
  'KV_ocp_ids',
  'KV_ocp_slack',
] as const;

export interface StoreSnapshot {
  streams: Record<string, { messages: number; firstSeq: number; lastSeq: number }>;
  /** task.<id> → the stored record's JSON. */
  tasks: Record<string, string>;
}

const decoder = new TextDecoder();

export async function storeSnapshot(nc: NatsConnection): Promise<StoreSnapshot> {
  const jsm = await nc.jetstreamManager();
  const streams: StoreSnapshot['streams'] = {};
  for (const name of STREAMS) {
    const { state } = await jsm.streams.info(name);
    // lock entries (and delete markers) age out by themselves: there only a write counts
    streams[name] =
      name === 'KV_ocp_host_locks'
        ? { messages: -1, firstSeq: -1, lastSeq: state.last_seq }
        : { messages: state.messages, firstSeq: state.first_seq, lastSeq: state.last_seq };
  }
  const kv = await nc.jetstream().views.kv('ocp_tasks', { bindOnly: true });
  const tasks: Record<string, string> = {};
  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  for (const k of keys.sort()) {
    const e = await kv.get(k);
    if (e) tasks[k] = `${e.operation} ${decoder.decode(e.value)}`;
  }
  return { streams, tasks };
}
