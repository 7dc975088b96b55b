/**
 * DAG rules (src/core/dag.ts), as table tests: which graphs are refused and
 * with what sentence, which PENDING nodes may start, when a graph is at rest,
 * and the downstream map the planner and validator rely on.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SubtaskStatus } from '../../src/contracts/ocp-task.js';
import { type DagNode, downstreamMap, isAtRest, readySet, type StatusNode, validateDag } from '../../src/core/dag.js';

/** `n(2, 1)` is node 2 with upstream 1. */
const n = (id: number, ...upstreams: number[]): DagNode => ({ id, upstreams });
/** `s(2, 'PENDING', 1)` is node 2, PENDING, with upstream 1. */
const s = (id: number, status: SubtaskStatus, ...upstreams: number[]): StatusNode => ({ id, status, upstreams });

describe('validateDag', () => {
  const cases: { name: string; nodes: DagNode[]; problems: string[] }[] = [
    { name: 'empty graph', nodes: [], problems: [] },
    { name: 'single node', nodes: [n(1)], problems: [] },
    { name: 'chain of five (the restart runbook)', nodes: [n(1), n(2, 1), n(3, 2), n(4, 3), n(5, 4)], problems: [] },
    { name: 'two independent chains (a batch)', nodes: [n(1), n(2, 1), n(3), n(4, 3)], problems: [] },
    { name: 'diamond with fan-in', nodes: [n(1), n(2, 1), n(3, 1), n(4, 2, 3)], problems: [] },
    { name: 'nodes listed downstream first', nodes: [n(3, 2), n(2, 1), n(1)], problems: [] },
    { name: 'duplicate id', nodes: [n(1), n(2, 1), n(2, 1)], problems: ['node 2 appears twice'] },
    { name: 'unknown upstream', nodes: [n(1), n(2, 9)], problems: ['node 2 has unknown upstream 9'] },
    { name: 'self-loop', nodes: [n(1), n(2, 1, 2)], problems: ['node 2 depends on itself'] },
    {
      name: 'every structural problem is reported, not just the first',
      nodes: [n(1), n(1), n(2, 7), n(3, 3)],
      problems: ['node 1 appears twice', 'node 2 has unknown upstream 7', 'node 3 depends on itself'],
    },
    { name: 'cycle after a start node', nodes: [n(1), n(2, 1, 3), n(3, 2)], problems: ['cycle through nodes 2, 3'] },
    {
      name: 'nodes behind a cycle',
      nodes: [n(1), n(2, 1, 3), n(3, 2), n(4, 3), n(5, 4)],
      problems: ['cycle through nodes 2, 3', 'nodes 4, 5 are unreachable (behind a cycle)'],
    },
    {
      name: 'no start node: every node waits for another',
      nodes: [n(1, 2), n(2, 1)],
      problems: ['graph has no starting node', 'cycle through nodes 1, 2'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(validateDag(c.nodes), c.problems);
    });
  }
});

describe('readySet', () => {
  const cases: { name: string; nodes: StatusNode[]; ready: number[] }[] = [
    { name: 'a start node that is PENDING is ready', nodes: [s(1, 'PENDING'), s(2, 'PENDING', 1)], ready: [1] },
    { name: 'a READY node is not listed again', nodes: [s(1, 'READY'), s(2, 'PENDING', 1)], ready: [] },
    { name: 'upstream RUNNING: not yet', nodes: [s(1, 'RUNNING'), s(2, 'PENDING', 1)], ready: [] },
    { name: 'upstream CANCELING: not yet', nodes: [s(1, 'CANCELING'), s(2, 'PENDING', 1)], ready: [] },
    { name: 'upstream SUCCESSFUL: next one', nodes: [s(1, 'SUCCESSFUL'), s(2, 'PENDING', 1)], ready: [2] },
    { name: 'upstream FAILED: blocked', nodes: [s(1, 'FAILED'), s(2, 'PENDING', 1)], ready: [] },
    {
      name: 'only the next node of a chain, not the ones after it',
      nodes: [s(1, 'SUCCESSFUL'), s(2, 'PENDING', 1), s(3, 'PENDING', 2)],
      ready: [2],
    },
    {
      name: 'fan-in waits for every upstream',
      nodes: [s(1, 'SUCCESSFUL'), s(2, 'SUCCESSFUL', 1), s(3, 'RUNNING', 1), s(4, 'PENDING', 2, 3)],
      ready: [],
    },
    {
      name: 'fan-in released when all upstreams succeeded',
      nodes: [s(1, 'SUCCESSFUL'), s(2, 'SUCCESSFUL', 1), s(3, 'SUCCESSFUL', 1), s(4, 'PENDING', 2, 3)],
      ready: [4],
    },
    {
      name: 'one failed chain does not block another',
      nodes: [s(1, 'FAILED'), s(2, 'PENDING', 1), s(3, 'SUCCESSFUL'), s(4, 'PENDING', 3)],
      ready: [4],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(readySet(c.nodes), c.ready);
    });
  }
});

describe('isAtRest', () => {
  const cases: { name: string; nodes: StatusNode[]; atRest: boolean }[] = [
    { name: 'all SUCCESSFUL', nodes: [s(1, 'SUCCESSFUL'), s(2, 'SUCCESSFUL', 1)], atRest: true },
    { name: 'FAILED with PENDING behind it', nodes: [s(1, 'FAILED'), s(2, 'PENDING', 1)], atRest: true },
    { name: 'a READY node waits to run', nodes: [s(1, 'READY'), s(2, 'PENDING', 1)], atRest: false },
    { name: 'a RUNNING node', nodes: [s(1, 'RUNNING'), s(2, 'PENDING', 1)], atRest: false },
    { name: 'a CANCELING node', nodes: [s(1, 'CANCELING'), s(2, 'PENDING', 1)], atRest: false },
    {
      name: 'a PENDING node that could start now',
      nodes: [s(1, 'SUCCESSFUL'), s(2, 'PENDING', 1)],
      atRest: false,
    },
    {
      name: 'one chain failed, the other still runs',
      nodes: [s(1, 'FAILED'), s(2, 'PENDING', 1), s(3, 'RUNNING'), s(4, 'PENDING', 3)],
      atRest: false,
    },
    {
      name: 'one chain failed, the other finished',
      nodes: [s(1, 'FAILED'), s(2, 'PENDING', 1), s(3, 'SUCCESSFUL'), s(4, 'SUCCESSFUL', 3)],
      atRest: true,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(isAtRest(c.nodes), c.atRest);
    });
  }
});

describe('downstreamMap', () => {
  test('a chain maps each node to the next, the last to nothing', () => {
    assert.deepEqual(
      downstreamMap([n(1), n(2, 1), n(3, 2)]),
      new Map([
        [1, [2]],
        [2, [3]],
        [3, []],
      ]),
    );
  });

  test('a diamond fans out and in', () => {
    assert.deepEqual(
      downstreamMap([n(1), n(2, 1), n(3, 1), n(4, 2, 3)]),
      new Map([
        [1, [2, 3]],
        [2, [4]],
        [3, [4]],
        [4, []],
      ]),
    );
  });

  test('an unknown upstream is ignored, not added', () => {
    assert.deepEqual(downstreamMap([n(2, 9)]), new Map([[2, []]]));
  });
});
