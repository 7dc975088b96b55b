/** Values in KV: plain JSON when small, gzipped when large, both read back alike. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeJsonBytes, encodeJsonCompact } from '../../src/nats/kv-json.js';

describe('encodeJsonCompact', () => {
  test('a small value stays plain JSON, readable by any NATS tool', () => {
    const value = { task: { id: 7, status: 'RUNNING' } };
    const bytes = encodeJsonCompact(value);
    assert.equal(new TextDecoder().decode(bytes), JSON.stringify(value));
    assert.deepEqual(decodeJsonBytes(bytes), value);
  });

  test('a large value (a fleet task record) is gzipped, far smaller, and reads back whole', () => {
    const subtasks = Array.from({ length: 1000 }, (_, i) => ({
      id: 1000 + i,
      name: 'Stop all OCP agent processes',
      className: 'com.alipay.ocp.service.task.business.obagent.StopAllOcpAgentProcessesTask',
      status: i % 3 === 0 ? 'SUCCESSFUL' : 'PENDING',
      parallelIdx: Math.floor(i / 5),
    }));
    const value = { task: { id: 1, subtasks } };
    const plain = JSON.stringify(value).length;
    const bytes = encodeJsonCompact(value);
    assert.deepEqual([bytes[0], bytes[1]], [0x1f, 0x8b], 'gzip magic');
    assert.ok(bytes.length * 5 < plain, `${bytes.length} bytes stored for ${plain} of JSON`);
    assert.deepEqual(decodeJsonBytes(bytes), value);
  });
});
