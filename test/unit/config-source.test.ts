/**
 * The configuration as it is now (src/config-source.ts, SPEC §9): the
 * inventory is replaced, the fixed settings stay and are named for a restart,
 * a file that changes nothing keeps the version, the digest is the content's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config.js';
import { createConfigSource } from '../../src/config-source.js';

const host = (id: number) => ({ id, name: `ocp-host-${id}`, address: '127.0.0.1' });
const parse = (raw: Record<string, unknown>) => parseConfig(raw, {}, 'ocp-chatops.yml', '/tmp');

describe('config source', () => {
  test('takes new hosts and keeps fixed settings, naming them for a restart', () => {
    const source = createConfigSource(parse({ hosts: [host(1)], executor: { concurrency: 8 } }));
    const seen: number[] = [];
    source.subscribe((c) => seen.push(c.hosts.length));
    const { restartToApply, changed } = source.replace(
      parse({ hosts: [host(1), host(2)], executor: { concurrency: 2 }, nats: { replicas: 3 } }),
    );
    assert.equal(changed, true);
    assert.deepEqual(restartToApply, ['executor', 'nats']);
    assert.deepEqual(
      source.current().hosts.map((h) => h.id),
      [1, 2],
    );
    assert.equal(source.current().executor.concurrency, 8, 'executor.concurrency waits for a restart');
    assert.equal(source.current().nats.replicas, 1);
    assert.equal(source.inventory().version, 2);
    assert.equal(source.inventory().hosts, 2);
    assert.deepEqual(seen, [2]);
  });

  test('a file that changes only fixed settings keeps the version; the digest is the content', () => {
    const a = createConfigSource(parse({ hosts: [host(1)] }));
    const b = createConfigSource(parse({ hosts: [host(1)] }));
    assert.equal(a.inventory().digest, b.inventory().digest, 'two processes with one file agree');
    const { changed, restartToApply } = a.replace(parse({ hosts: [host(1)], executor: { concurrency: 3 } }));
    assert.equal(changed, false);
    assert.deepEqual(restartToApply, ['executor']);
    assert.equal(a.inventory().version, 1);
    a.replace(parse({ hosts: [host(2)] }));
    assert.notEqual(a.inventory().digest, b.inventory().digest);
  });
});
