/**
 * Reading every live key under a filter, once (the chains of a batch, the
 * index's old keys), against a real nats-server. nats.js calls a watch's
 * `initializedFn` before `watch()` has returned when nothing (or everything)
 * is already there, and never when the last entry is a delete that
 * `ignoreDeletes` dropped: a read must end, with exactly the live keys, in
 * each of those cases.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type KV, type NatsConnection } from 'nats';
import { encodeJson, readLive } from '../../src/nats/kv-json.js';
import { type NatsServerHandle, startNatsServer } from '../helpers/nats-server.js';

describe('reading every live key under a filter', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let kv: KV;

  before(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    kv = await nc.jetstream().views.kv('kv_read_test', { history: 1 });
  });
  after(async () => {
    await nc?.close();
    await server?.stop();
  });

  const keysOf = async (filter: string) => (await readLive(kv, filter)).map((e) => e.key).sort();

  it('answers nothing, without an error, when no key matches', async () => {
    assert.deepEqual(await keysOf('task.1.c.*'), []);
  });

  it('answers every key that matches, each once, and none that does not', async () => {
    for (let i = 0; i < 50; i++) await kv.put(`task.2.c.${i}`, encodeJson({ i }));
    await kv.put('task.3.c.0', encodeJson({ other: true }));
    const keys = await keysOf('task.2.c.*');
    assert.equal(keys.length, 50);
    assert.deepEqual(keys, Array.from({ length: 50 }, (_, i) => `task.2.c.${i}`).sort());
  });

  it('ends, leaving the key out, when the last entry under the filter is a delete or a purge', async () => {
    await kv.put('task.4.c.0', encodeJson({ i: 0 }));
    await kv.put('task.4.c.1', encodeJson({ i: 1 }));
    await kv.delete('task.4.c.1');
    assert.deepEqual(await keysOf('task.4.c.*'), ['task.4.c.0']);
    await kv.purge('task.4.c.0');
    assert.deepEqual(await keysOf('task.4.c.*'), []);
  });

  it('answers the same when read many times at once', async () => {
    const reads = await Promise.all(Array.from({ length: 40 }, (_, i) => keysOf(i % 2 ? 'task.2.c.*' : 'task.9.c.*')));
    for (const [i, keys] of reads.entries()) assert.equal(keys.length, i % 2 ? 50 : 0);
  });
});
