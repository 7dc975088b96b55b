/**
 * The task index's compact table (src/nats/task-table.ts) against a plain
 * model: whatever order tasks arrive, change, move hosts and leave in, loaded
 * at once or one by one, every listing (filters, pages), the running tasks and
 * retention's ended-before answer as a sort and filter of every task would.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type TaskRow, TaskTable } from '../../src/nats/task-table.js';
import type { TaskFilter } from '../../src/tasks/ports.js';

const STATUSES = ['RUNNING', 'FAILED', 'SUCCESSFUL'] as const;
const NAMES = ['Restart OCP agent', 'Stop OCP agent', 'Restart process'];
const CREATORS = ['alice', 'slack:U0123', 'nats:deploy'];

const row = fc.record({
  id: fc.integer({ min: 1, max: 60 }),
  status: fc.constantFrom(...STATUSES),
  name: fc.constantFrom(...NAMES),
  creator: fc.option(fc.constantFrom(...CREATORS), { nil: undefined }),
  hostIds: fc.uniqueArray(fc.integer({ min: 101, max: 108 }), { minLength: 1, maxLength: 4 }),
  endedAt: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
});
const op = fc.oneof(
  { weight: 4, arbitrary: row.map((r) => ({ put: r as TaskRow })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 60 }).map((id) => ({ delete: id })) },
);
const filter = fc.record(
  {
    status: fc.constantFrom(...STATUSES),
    name: fc.constantFrom(...NAMES, 'no such name'),
    creator: fc.constantFrom(...CREATORS, 'nobody'),
    hostId: fc.integer({ min: 100, max: 109 }),
  },
  { requiredKeys: [] },
);

function modelList(model: Map<number, TaskRow>, f: TaskFilter, offset: number, limit: number) {
  const matching = [...model.values()]
    .sort((a, b) => b.id - a.id)
    .filter(
      (t) =>
        (f.status === undefined || t.status === f.status) &&
        (f.name === undefined || t.name === f.name) &&
        (f.creator === undefined || t.creator === f.creator) &&
        (f.hostId === undefined || t.hostIds.includes(f.hostId)),
    );
  return { ids: matching.slice(offset, offset + limit).map((t) => t.id), total: matching.length };
}

describe('TaskTable', () => {
  it('answers every listing, the running tasks and retention as a sort of every task would', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 120 }),
        fc.array(op, { maxLength: 60 }),
        fc.boolean(),
        fc.array(fc.tuple(filter, fc.nat(30), fc.integer({ min: 1, max: 12 })), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 1000 }),
        (loadOps, laterOps, loading, queries, cutoff) => {
          const table = new TaskTable({ loading });
          const model = new Map<number, TaskRow>();
          const apply = (o: { put: TaskRow } | { delete: number }) => {
            if ('put' in o) {
              table.put(o.put);
              model.set(o.put.id, o.put);
            } else {
              table.delete(o.delete);
              model.delete(o.delete);
            }
          };
          loadOps.forEach(apply);
          table.loaded();
          laterOps.forEach(apply);
          assert.equal(table.size, model.size);
          for (const [f, offset, limit] of queries) {
            assert.deepEqual(table.list(f, offset, limit), modelList(model, f, offset, limit), JSON.stringify(f));
          }
          const oldestFirst = [...model.values()].sort((a, b) => a.id - b.id);
          assert.deepEqual(
            table.running(),
            oldestFirst.filter((t) => t.status === 'RUNNING').map((t) => t.id),
          );
          assert.deepEqual(
            table.endedBefore(cutoff),
            oldestFirst
              .filter((t) => t.status !== 'RUNNING' && t.endedAt !== undefined && t.endedAt < cutoff)
              .map((t) => t.id),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('holds 100,000 tasks loaded newest first, batches among them', () => {
    const table = new TaskTable({ loading: true });
    for (let id = 100_000; id >= 1; id--) {
      const batch = id % 10 === 0;
      table.put({
        id,
        status: STATUSES[id % 3] as TaskRow['status'],
        name: NAMES[id % 3] as string,
        hostIds: batch ? [1, 2, 3, 4, 5] : [id % 500],
        endedAt: id,
      });
    }
    table.loaded();
    assert.equal(table.list({}, 99_990, 10).ids.at(-1), 1);
    assert.deepEqual(table.list({ hostId: 3 }, 0, 2).ids, [100_000, 99_990]);
  });
});
