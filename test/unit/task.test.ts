/**
 * The OCP task model (src/core/task.ts) and what derives from it: the task JSON
 * planTask answers with (SPEC §3 "Task JSON", checked field by field against the
 * seed's example), the subtask and task state machines over every pair of
 * states, how a task moves on as subtasks end, the events a change yields
 * (src/core/events.ts) and OCP's timestamp format (src/core/time.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { OcpTask, SubtaskStatus, TaskStatus } from '../../src/contracts/ocp-task.js';
import { diffEvents } from '../../src/core/events.js';
import { builtinRunbooks, RESTART } from '../../src/core/runbooks/builtin.js';
import type { Runbook } from '../../src/core/runbooks/runbook.js';
import {
  canMoveSubtask,
  canMoveTask,
  completeSubtask,
  IllegalTransitionError,
  type PlanInput,
  planStep,
  planTask,
  settle,
  startSubtask,
} from '../../src/core/task.js';
import { formatOcpTime } from '../../src/core/time.js';

const restart = builtinRunbooks.find((r) => r.name === RESTART) as Runbook;
const NOW = new Date('2021-09-03T06:17:06.328Z');
const LATER = new Date('2021-09-03T06:20:00.000Z');
/** The task's id, then the five subtask ids of host 2's chain. */
const IDS = [30208, 31817, 31813, 31816, 31814, 31815];

function plan(over: Partial<PlanInput> = {}): OcpTask {
  return planTask({
    runbook: restart,
    hosts: [{ id: 2, agentHome: '/home/admin/ocp_agent' }],
    ids: IDS,
    creator: 'admin',
    executor: '10.0.0.1',
    now: NOW,
    ...over,
  }).task;
}

/** Hosts 100 and 200: task 1, chain 11–15 for host 100, chain 21–25 for host 200. */
function planTwoHosts(): OcpTask {
  return plan({
    name: 'Batch restart OCP agent',
    hosts: [
      { id: 100, agentHome: '/home/admin/ocp_agent' },
      { id: 200, agentHome: '/opt/agent' },
    ],
    ids: [1, 11, 12, 13, 14, 15, 21, 22, 23, 24, 25],
  });
}

const statuses = (task: OcpTask) => task.subtasks.map((s) => s.status);
const statusOf = (task: OcpTask, id: number) => task.subtasks.find((s) => s.id === id)?.status;

/** The executor's part: start a READY subtask and end it. */
function run(task: OcpTask, subtaskId: number, outcome: 'SUCCESSFUL' | 'FAILED', at = LATER): OcpTask {
  return completeSubtask(startSubtask(task, subtaskId, 'exec-1', at), subtaskId, outcome, at);
}

// ---------------------------------------------------------------------------
// The seed: the JSON block of OCP's answer to POST /compute/hosts/2/agent/restart.

interface SeedSubtask {
  name: string;
  description: string;
  className: string;
  timeout: number;
  status: string;
  id: number;
  upstreams: number[];
  downstreams: number[];
  [field: string]: unknown;
}
interface SeedTask {
  subtasks: SeedSubtask[];
  [field: string]: unknown;
}

function seedTask(): SeedTask {
  const path = fileURLToPath(new URL('../fixtures/restart-ocp-agent-api.md', import.meta.url));
  const block = /```unknow\n([\s\S]*?)\n```/.exec(readFileSync(path, 'utf8'));
  assert.ok(block?.[1], `no \`\`\`unknow block in ${path}`);
  return (JSON.parse(block[1]) as { data: SeedTask }).data;
}

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v;
}

/**
 * Every field the seed has must exist in ours with the same JSON type, at any
 * depth. Arrays: every seed element against every one of ours. Returns the
 * mismatches as readable lines, so a failure lists them all.
 */
function shapeMismatches(seed: unknown, ours: unknown, path: string): string[] {
  if (jsonType(seed) !== jsonType(ours)) return [`${path}: seed has ${jsonType(seed)}, ours ${jsonType(ours)}`];
  if (Array.isArray(seed) && Array.isArray(ours)) {
    return seed.flatMap((se, i) => ours.flatMap((oe, j) => shapeMismatches(se, oe, `${path}[seed ${i} / ours ${j}]`)));
  }
  if (jsonType(seed) === 'object') {
    const so = seed as Record<string, unknown>;
    const oo = ours as Record<string, unknown>;
    return Object.keys(so).flatMap((k) =>
      k in oo ? shapeMismatches(so[k], oo[k], `${path}.${k}`) : [`${path}.${k}: missing in ours`],
    );
  }
  return [];
}

/** Subtask names from the READY one, following downstreams. */
function chainOrder(subtasks: readonly { id: number; name: string; status: string; downstreams: number[] }[]) {
  const byId = new Map(subtasks.map((st) => [st.id, st]));
  const names: string[] = [];
  let at = subtasks.find((st) => st.status === 'READY');
  while (at && names.length <= subtasks.length) {
    names.push(at.name);
    at = at.downstreams[0] === undefined ? undefined : byId.get(at.downstreams[0]);
  }
  return names;
}

describe('planTask against the seed (Restart OCP agent)', () => {
  const seed = seedTask();
  const ours = plan();

  test('the seed block parses and holds the five subtasks', () => {
    assert.equal(seed.subtasks.length, 5);
  });

  test('every field of the seed task and its subtasks exists in ours, with the same JSON type', () => {
    assert.deepEqual(shapeMismatches(seed, JSON.parse(JSON.stringify(ours)), 'data'), []);
  });

  test('constant values are the seed’s', () => {
    assert.equal(ours.type, seed.type);
    assert.equal(ours.taskDefinitionId, seed.taskDefinitionId);
    assert.equal(ours.operation, seed.operation);
    assert.equal(ours.name, seed.name);
    assert.deepEqual(ours.context, seed.context, 'same host id 2, so the context is identical');
    for (const st of ours.subtasks) {
      assert.equal(st.nodeType, 'JAVA_TASK');
      assert.equal(st.operation, 'EXECUTE');
      assert.equal(st.prohibitRollback, false);
      assert.equal(st.runTime, 1);
      assert.equal(st.parallelIdx, -1);
    }
    assert.deepEqual(
      new Set(seed.subtasks.map((st) => st.nodeType)),
      new Set(['JAVA_TASK']),
      'the seed agrees on the node type',
    );
  });

  test('the five subtasks have the seed’s names, descriptions and timeouts', () => {
    const pick = (st: { name: string; description: string; timeout: number }) =>
      `${st.name} | ${st.description} | ${st.timeout}`;
    assert.deepEqual(new Set(ours.subtasks.map(pick)), new Set(seed.subtasks.map(pick)));
  });

  test('the five subtasks have the seed’s classNames', () => {
    assert.deepEqual(
      new Set(ours.subtasks.map((st) => `${st.name} → ${st.className}`)),
      new Set(seed.subtasks.map((st) => `${st.name} → ${st.className}`)),
    );
  });

  test('the chain runs in the seed’s order, from the READY subtask', () => {
    assert.deepEqual(chainOrder(ours.subtasks), chainOrder(seed.subtasks));
    assert.deepEqual(chainOrder(ours.subtasks), [
      'Prepare restart OCP agent',
      'Restart pos proxy',
      'Stop all OCP agent processes',
      'Start all OCP agent processes',
      'Finish OCP agent operation',
    ]);
  });
});

describe('planTask', () => {
  test('a new task is RUNNING, its first subtask READY and the rest PENDING', () => {
    const task = plan();
    assert.equal(task.status, 'RUNNING');
    assert.deepEqual(statuses(task), ['READY', 'PENDING', 'PENDING', 'PENDING', 'PENDING']);
  });

  test('ids: the task takes the first, the subtasks the rest in runbook order', () => {
    const task = plan();
    assert.equal(task.id, 30208);
    assert.deepEqual(
      task.subtasks.map((st) => st.id),
      IDS.slice(1),
    );
  });

  test('subtasks are chained by id through upstreams and downstreams', () => {
    const task = plan();
    assert.deepEqual(
      task.subtasks.map((st) => [st.upstreams, st.downstreams]),
      [
        [[], [31813]],
        [[31817], [31816]],
        [[31813], [31814]],
        [[31816], [31815]],
        [[31814], []],
      ],
    );
  });

  test('seriesId is the index in the runbook; runTime 1; timeouts from the runbook', () => {
    const task = plan();
    assert.deepEqual(
      task.subtasks.map((st) => st.seriesId),
      [0, 1, 2, 3, 4],
    );
    assert.deepEqual(
      task.subtasks.map((st) => st.runTime),
      [1, 1, 1, 1, 1],
    );
    assert.deepEqual(
      task.subtasks.map((st) => st.timeout),
      [60, 60, 600, 600, 60],
    );
  });

  test('one host: hostId, host_id as a string, prohibit_rollback "false", not parallel', () => {
    const task = plan({ hosts: [{ id: 9007199254740991, agentHome: '/home/admin/ocp_agent' }] });
    assert.equal(task.hostId, 9007199254740991);
    assert.deepEqual(task.context, {
      listMap: {},
      parallel: false,
      parallelIdx: -1,
      stringMap: { prohibit_rollback: 'false', host_id: '9007199254740991' },
    });
    assert.deepEqual(
      task.subtasks.map((st) => st.parallelIdx),
      [-1, -1, -1, -1, -1],
    );
  });

  test('creator, executor, name and times come from the input', () => {
    const task = plan({ creator: 'slack:U0456EFGH', executor: '10.1.2.3:3000' });
    assert.equal(task.creator, 'slack:U0456EFGH');
    assert.equal(task.executor, '10.1.2.3:3000');
    assert.equal(task.name, 'Restart OCP agent');
    assert.equal(task.startTime, formatOcpTime(NOW));
    assert.equal(task.createTime, formatOcpTime(NOW));
    assert.equal(task.finishTime, undefined);
  });

  const reasons: { name: string; reason: string | undefined; stringMap: Record<string, string> }[] = [
    {
      name: 'a reason goes into stringMap.reason',
      reason: 'agent stuck after upgrade',
      stringMap: { prohibit_rollback: 'false', host_id: '2', reason: 'agent stuck after upgrade' },
    },
    {
      name: 'no reason: no stringMap.reason',
      reason: undefined,
      stringMap: { prohibit_rollback: 'false', host_id: '2' },
    },
    { name: 'an empty reason is no reason', reason: '', stringMap: { prohibit_rollback: 'false', host_id: '2' } },
  ];
  for (const c of reasons) {
    test(c.name, () => {
      assert.deepEqual(plan(c.reason === undefined ? {} : { reason: c.reason }).context.stringMap, c.stringMap);
    });
  }

  test('two hosts: listMap.host_ids, parallel, each chain its parallelIdx, the first host in hostId', () => {
    const task = planTwoHosts();
    assert.equal(task.name, 'Batch restart OCP agent');
    assert.equal(task.hostId, 100);
    assert.deepEqual(task.context, {
      listMap: { host_ids: ['100', '200'] },
      parallel: true,
      parallelIdx: -1,
      stringMap: { prohibit_rollback: 'false', host_id: '100' },
    });
    assert.deepEqual(
      task.subtasks.map((st) => [st.id, st.parallelIdx, st.seriesId, st.status]),
      [
        [11, 0, 0, 'READY'],
        [12, 0, 1, 'PENDING'],
        [13, 0, 2, 'PENDING'],
        [14, 0, 3, 'PENDING'],
        [15, 0, 4, 'PENDING'],
        [21, 1, 0, 'READY'],
        [22, 1, 1, 'PENDING'],
        [23, 1, 2, 'PENDING'],
        [24, 1, 3, 'PENDING'],
        [25, 1, 4, 'PENDING'],
      ],
    );
  });

  test('two hosts: the chains do not cross', () => {
    const task = planTwoHosts();
    const links = task.subtasks.map((st) => `${st.upstreams.join(',')}→${st.id}→${st.downstreams.join(',')}`);
    assert.deepEqual(links, [
      '→11→12',
      '11→12→13',
      '12→13→14',
      '13→14→15',
      '14→15→',
      '→21→22',
      '21→22→23',
      '22→23→24',
      '23→24→25',
      '24→25→',
    ]);
  });

  test('steps: each subtask names its host and its step of the runbook, never a script', () => {
    const { steps } = planTask({
      runbook: restart,
      hosts: [
        { id: 100, agentHome: '/home/admin/ocp_agent' },
        { id: 200, agentHome: '/opt/agent' },
      ],
      ids: [1, 11, 12, 13, 14, 15, 21, 22, 23, 24, 25],
      creator: 'admin',
      executor: 'x',
      now: NOW,
    });
    assert.deepEqual(Object.keys(steps).sort(), ['11', '12', '13', '14', '15', '21', '22', '23', '24', '25']);
    assert.deepEqual(steps['12'], { hostId: 100, step: 1 });
    assert.deepEqual(steps['25'], { hostId: 200, step: 4 });
  });

  test('planStep renders a step for a host, the host’s agentctl shell-quoted', () => {
    const [, posProxy, stopAll] = restart.steps;
    assert.deepEqual(planStep(posProxy!, { id: 100, agentHome: '/home/admin/ocp_agent' }, 7), {
      hostId: 100,
      script: "'/home/admin/ocp_agent/bin/ocp_agentctl' restart pos_proxy",
    });
    const stop = planStep(stopAll!, { id: 200, agentHome: '/opt/agent' }, 7).script;
    assert.match(stop, /^grace='7'$/m, 'killGraceSeconds reaches "Stop all"');
    assert.match(stop, /for f in '\/opt\/agent'\/run\/\*\.pid; do/);
  });

  const refused: { name: string; over: Partial<PlanInput>; message: RegExp }[] = [
    { name: 'no hosts', over: { hosts: [] }, message: /no hosts/ },
    { name: 'too few ids', over: { ids: IDS.slice(0, 5) }, message: /not enough ids/ },
  ];
  for (const c of refused) {
    test(`refuses ${c.name}`, () => {
      assert.throws(() => plan(c.over), c.message);
    });
  }
});

// ---------------------------------------------------------------------------

const SUBTASK_STATES: SubtaskStatus[] = ['PENDING', 'READY', 'RUNNING', 'CANCELING', 'FAILED', 'SUCCESSFUL'];
/** Allowed moves: run in order, cancel, retry (FAILED → READY) and skip (FAILED → SUCCESSFUL). */
const SUBTASK_ALLOWED = new Set([
  'PENDING→READY',
  'READY→RUNNING',
  'RUNNING→SUCCESSFUL',
  'RUNNING→FAILED',
  'RUNNING→CANCELING',
  'CANCELING→FAILED',
  'FAILED→READY',
  'FAILED→SUCCESSFUL',
]);
const TASK_STATES: TaskStatus[] = ['RUNNING', 'FAILED', 'SUCCESSFUL'];
/** A task ends once; a FAILED one runs again on retry or rollback. */
const TASK_ALLOWED = new Set(['RUNNING→SUCCESSFUL', 'RUNNING→FAILED', 'FAILED→RUNNING']);

describe('canMoveSubtask, every pair of states', () => {
  for (const from of SUBTASK_STATES) {
    for (const to of SUBTASK_STATES) {
      const allowed = SUBTASK_ALLOWED.has(`${from}→${to}`);
      test(`${from} → ${to}: ${allowed ? 'allowed' : 'refused'}`, () => {
        assert.equal(canMoveSubtask(from, to), allowed);
      });
    }
  }
});

describe('canMoveTask, every pair of states', () => {
  for (const from of TASK_STATES) {
    for (const to of TASK_STATES) {
      const allowed = TASK_ALLOWED.has(`${from}→${to}`);
      test(`${from} → ${to}: ${allowed ? 'allowed' : 'refused'}`, () => {
        assert.equal(canMoveTask(from, to), allowed);
      });
    }
  }
});

describe('running a task', () => {
  test('startSubtask: READY → RUNNING, with its executor and start time', () => {
    const task = startSubtask(plan(), 31817, 'exec-7', LATER);
    const st = task.subtasks[0];
    assert.equal(st?.status, 'RUNNING');
    assert.equal(st?.executor, 'exec-7');
    assert.equal(st?.startTime, formatOcpTime(LATER));
    assert.equal(task.status, 'RUNNING');
  });

  test('functions return a new task and leave the old one as it was', () => {
    const before = plan();
    const copy = structuredClone(before);
    run(before, 31817, 'SUCCESSFUL');
    assert.deepEqual(before, copy);
  });

  test('a SUCCESSFUL subtask makes the next one READY; the task keeps RUNNING', () => {
    const task = run(plan(), 31817, 'SUCCESSFUL');
    assert.deepEqual(statuses(task), ['SUCCESSFUL', 'READY', 'PENDING', 'PENDING', 'PENDING']);
    assert.equal(task.subtasks[0]?.finishTime, formatOcpTime(LATER));
    assert.equal(task.status, 'RUNNING');
    assert.equal(task.finishTime, undefined);
  });

  test('the last subtask SUCCESSFUL: the task is SUCCESSFUL, with its finish time', () => {
    let task = plan();
    for (const id of IDS.slice(1, 5)) task = run(task, id, 'SUCCESSFUL');
    assert.equal(task.status, 'RUNNING', 'still running before the last step');
    const done = new Date('2021-09-03T06:30:00.000Z');
    task = run(task, 31815, 'SUCCESSFUL', done);
    assert.deepEqual(statuses(task), ['SUCCESSFUL', 'SUCCESSFUL', 'SUCCESSFUL', 'SUCCESSFUL', 'SUCCESSFUL']);
    assert.equal(task.status, 'SUCCESSFUL');
    assert.equal(task.finishTime, formatOcpTime(done));
  });

  test('a FAILED subtask fails the task; the later ones stay PENDING', () => {
    let task = run(plan(), 31817, 'SUCCESSFUL');
    task = run(task, 31813, 'FAILED');
    assert.deepEqual(statuses(task), ['SUCCESSFUL', 'FAILED', 'PENDING', 'PENDING', 'PENDING']);
    assert.equal(task.status, 'FAILED');
    assert.equal(task.finishTime, formatOcpTime(LATER));
  });

  test('a CANCELING subtask ends FAILED and fails the task', () => {
    const running = startSubtask(plan(), 31817, 'exec-1', LATER);
    const canceling: OcpTask = {
      ...running,
      subtasks: running.subtasks.map((st) => (st.id === 31817 ? { ...st, status: 'CANCELING' as const } : st)),
    };
    const task = completeSubtask(canceling, 31817, 'FAILED', LATER);
    assert.deepEqual(statuses(task), ['FAILED', 'PENDING', 'PENDING', 'PENDING', 'PENDING']);
    assert.equal(task.status, 'FAILED');
  });

  test('two hosts: one chain failing does not stop the other; the task fails when both have ended', () => {
    let task = planTwoHosts();
    task = run(task, 11, 'FAILED');
    assert.equal(task.status, 'RUNNING', 'host 200 still has work');
    assert.equal(statusOf(task, 21), 'READY');
    assert.equal(statusOf(task, 12), 'PENDING');
    for (const id of [21, 22, 23, 24]) {
      task = run(task, id, 'SUCCESSFUL');
      assert.equal(task.status, 'RUNNING', `after ${id}`);
    }
    task = run(task, 25, 'SUCCESSFUL');
    assert.equal(task.status, 'FAILED');
    assert.equal(task.finishTime, formatOcpTime(LATER));
    assert.deepEqual(statuses(task), [
      'FAILED',
      'PENDING',
      'PENDING',
      'PENDING',
      'PENDING',
      'SUCCESSFUL',
      'SUCCESSFUL',
      'SUCCESSFUL',
      'SUCCESSFUL',
      'SUCCESSFUL',
    ]);
  });

  test('two hosts: both chains SUCCESSFUL makes the task SUCCESSFUL', () => {
    let task = planTwoHosts();
    for (const id of [11, 21, 12, 22, 13, 23, 14, 24, 15]) task = run(task, id, 'SUCCESSFUL');
    assert.equal(task.status, 'RUNNING');
    task = run(task, 25, 'SUCCESSFUL');
    assert.equal(task.status, 'SUCCESSFUL');
  });

  test('settle leaves an ended task alone', () => {
    let task = run(plan(), 31817, 'FAILED');
    assert.equal(task.status, 'FAILED');
    task = { ...task, subtasks: task.subtasks.map((st) => ({ ...st, status: 'SUCCESSFUL' as const })) };
    assert.equal(settle(task, LATER), task);
  });

  const illegal: { name: string; act: (t: OcpTask) => OcpTask; message: string }[] = [
    {
      name: 'completing a PENDING subtask',
      act: (t) => completeSubtask(t, 31813, 'SUCCESSFUL', LATER),
      message: 'subtask 31813 cannot go from PENDING to SUCCESSFUL',
    },
    {
      name: 'completing a READY subtask that never started',
      act: (t) => completeSubtask(t, 31817, 'FAILED', LATER),
      message: 'subtask 31817 cannot go from READY to FAILED',
    },
    {
      name: 'starting a PENDING subtask',
      act: (t) => startSubtask(t, 31816, 'exec-1', LATER),
      message: 'subtask 31816 cannot go from PENDING to RUNNING',
    },
    {
      name: 'starting a SUCCESSFUL subtask again',
      act: (t) => startSubtask(run(t, 31817, 'SUCCESSFUL'), 31817, 'exec-1', LATER),
      message: 'subtask 31817 cannot go from SUCCESSFUL to RUNNING',
    },
  ];
  for (const c of illegal) {
    test(`IllegalTransitionError: ${c.name}`, () => {
      assert.throws(
        () => c.act(plan()),
        (err: unknown) =>
          err instanceof IllegalTransitionError && err.name === 'IllegalTransitionError' && err.message === c.message,
      );
    });
  }

  test('an unknown subtask id is an error naming task and subtask', () => {
    assert.throws(() => startSubtask(plan(), 42, 'exec-1', LATER), /task 30208 has no subtask 42/);
  });
});

// ---------------------------------------------------------------------------

describe('diffEvents', () => {
  const meta = (lastSeq: number) => ({ at: '2021-09-03T14:20:00.000+08:00', traceId: 'deca90b54a244106', lastSeq });
  const brief = (events: ReturnType<typeof diffEvents>) =>
    events.map((e) => ({ type: e.type, subtaskId: e.subtaskId, status: e.status, seq: e.seq }));

  test('a new task: task.running, then subtask.ready, seq 1 and 2', () => {
    const task = plan();
    const events = diffEvents(undefined, task, meta(0));
    assert.deepEqual(brief(events), [
      { type: 'task.running', subtaskId: undefined, status: 'RUNNING', seq: 1 },
      { type: 'subtask.ready', subtaskId: 31817, status: 'READY', seq: 2 },
    ]);
    assert.ok(!('subtaskId' in (events[0] ?? {})), 'a task event has no subtaskId field');
    for (const e of events) {
      assert.equal(e.taskId, 30208);
      assert.equal(e.at, '2021-09-03T14:20:00.000+08:00');
      assert.equal(e.traceId, 'deca90b54a244106');
      assert.equal(e.task, task);
    }
  });

  test('a new two-host task announces both READY subtasks', () => {
    assert.deepEqual(
      diffEvents(undefined, planTwoHosts(), meta(0)).map((e) => `${e.seq} ${e.type} ${e.subtaskId ?? ''}`),
      ['1 task.running ', '2 subtask.ready 11', '3 subtask.ready 21'],
    );
  });

  test('a change: subtask events only, seq continuing from lastSeq', () => {
    const before = startSubtask(plan(), 31817, 'exec-1', LATER);
    const after = completeSubtask(before, 31817, 'SUCCESSFUL', LATER);
    assert.deepEqual(brief(diffEvents(before, after, meta(3))), [
      { type: 'subtask.successful', subtaskId: 31817, status: 'SUCCESSFUL', seq: 4 },
      { type: 'subtask.ready', subtaskId: 31813, status: 'READY', seq: 5 },
    ]);
  });

  test('a change that ends the task: subtask events before the task event', () => {
    let before = plan();
    for (const id of IDS.slice(1, 5)) before = run(before, id, 'SUCCESSFUL');
    before = startSubtask(before, 31815, 'exec-1', LATER);
    const after = completeSubtask(before, 31815, 'FAILED', LATER);
    assert.deepEqual(brief(diffEvents(before, after, meta(10))), [
      { type: 'subtask.failed', subtaskId: 31815, status: 'FAILED', seq: 11 },
      { type: 'task.failed', subtaskId: undefined, status: 'FAILED', seq: 12 },
    ]);
  });

  test('a new run of a subtask (runTime + 1) is news even in the same status', () => {
    const before = plan();
    const after: OcpTask = {
      ...before,
      subtasks: before.subtasks.map((st) => (st.id === 31817 ? { ...st, runTime: 2 } : st)),
    };
    assert.deepEqual(
      diffEvents(before, after, meta(2)).map((e) => `${e.seq} ${e.type} ${e.subtaskId}`),
      ['3 subtask.ready 31817'],
    );
  });

  test('no change, no events', () => {
    const task = plan();
    assert.deepEqual(diffEvents(task, structuredClone(task), meta(2)), []);
  });
});

// ---------------------------------------------------------------------------

const OCP_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/;

describe('formatOcpTime', () => {
  const instants = [
    '2021-09-03T06:17:06.342Z',
    '1970-01-01T00:00:00.000Z',
    '2024-02-29T23:59:59.999Z',
    '2021-03-28T01:30:00.000Z',
    '2021-10-31T00:30:00.000Z',
    '2038-01-19T03:14:08.001Z',
  ];
  for (const iso of instants) {
    test(`${iso} in this process's zone: OCP format, same instant`, () => {
      const text = formatOcpTime(new Date(iso));
      assert.match(text, OCP_TIME);
      assert.equal(Date.parse(text), Date.parse(iso));
    });
  }

  /** Format instants in a child process whose TZ is `tz`. */
  function formatIn(tz: string, isos: string[]): string[] {
    const module = new URL('../../src/core/time.ts', import.meta.url).href;
    const code = `import { formatOcpTime } from ${JSON.stringify(module)};
      console.log(JSON.stringify(${JSON.stringify(isos)}.map((i) => formatOcpTime(new Date(i)))));`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      env: { ...process.env, TZ: tz },
      encoding: 'utf8',
    });
    assert.equal(child.status, 0, child.stderr);
    return JSON.parse(child.stdout) as string[];
  }

  const zones: { tz: string; cases: [iso: string, expected: string][] }[] = [
    { tz: 'Asia/Shanghai', cases: [['2021-09-03T06:17:06.342Z', '2021-09-03T14:17:06.342+08:00']] },
    { tz: 'UTC', cases: [['2021-09-03T06:17:06.342Z', '2021-09-03T06:17:06.342+00:00']] },
    {
      tz: 'America/St_Johns',
      cases: [
        ['2021-01-15T12:00:00.000Z', '2021-01-15T08:30:00.000-03:30'],
        ['2021-07-15T12:00:00.000Z', '2021-07-15T09:30:00.000-02:30'],
      ],
    },
    { tz: 'Asia/Kathmandu', cases: [['2021-01-15T12:00:00.000Z', '2021-01-15T17:45:00.000+05:45']] },
    {
      // the hour that happens twice when summer time ends: the offset tells them apart
      tz: 'America/New_York',
      cases: [
        ['2021-11-07T05:30:00.000Z', '2021-11-07T01:30:00.000-04:00'],
        ['2021-11-07T06:30:00.000Z', '2021-11-07T01:30:00.000-05:00'],
      ],
    },
    { tz: 'Pacific/Kiritimati', cases: [['2021-12-31T10:00:00.000Z', '2022-01-01T00:00:00.000+14:00']] },
  ];
  for (const z of zones) {
    test(`TZ=${z.tz}`, () => {
      const got = formatIn(
        z.tz,
        z.cases.map(([iso]) => iso),
      );
      assert.deepEqual(
        got,
        z.cases.map(([, expected]) => expected),
      );
      z.cases.forEach(([iso], i) => {
        assert.equal(Date.parse(got[i] ?? ''), Date.parse(iso), `${got[i]} is ${iso}`);
      });
    });
  }
});
