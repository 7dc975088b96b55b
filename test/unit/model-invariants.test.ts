/**
 * The model test's judge (test/helpers/model-invariants.ts) on doctored evidence: a clean run
 * passes, and each broken promise is reported under its invariant — two steps at once on a
 * host, another task's step while a task holds the host by its events (no overlap of steps),
 * a lock of an ended task, a task left RUNNING, a task that ran though every answer refused
 * it, a skip whose every request was refused. Also what must not be reported: steps that only
 * touch, a call killed by a cancel (no end line), a retry that ran again after an accepted retry.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type AnswerRecord,
  type EventLite,
  holdsOf,
  judgeRun,
  parseCalls,
  parseRunKey,
  type RunEvidence,
  type RunFile,
  type TaskView,
} from '../helpers/model-invariants.js';

const HOST = 101;
const T0 = 1_700_000_000_000;

/** A single-host restart task `id` with subtasks id+1 … id+5. */
function task(id: number, status = 'SUCCESSFUL', hostId = HOST): TaskView {
  return {
    id,
    status,
    operation: 'EXECUTE',
    hostId,
    parallel: false,
    hostIds: [],
    subtasks: [1, 2, 3, 4, 5].map((i) => ({
      id: id + i,
      parallelIdx: -1,
      status: 'SUCCESSFUL',
      operation: 'EXECUTE',
      runTime: 1,
      name: `step ${i}`,
    })),
  };
}

/** Its five steps back to back from `from`, 100 ms each, with the events a run leaves. */
function ranSteps(id: number, from: number, hostId = HOST): { runs: RunFile[]; events: EventLite[] } {
  const runs: RunFile[] = [];
  const events: EventLite[] = [{ taskId: id, seq: 1, type: 'task.running', status: 'RUNNING', at: from - 5 }];
  let seq = 1;
  const ev = (subtaskId: number, status: string, at: number) =>
    events.push({ taskId: id, seq: ++seq, type: `subtask.${status.toLowerCase()}`, status, subtaskId, at });
  ev(id + 1, 'READY', from - 5);
  for (let i = 1; i <= 5; i++) {
    const start = from + (i - 1) * 100;
    runs.push({
      hostId,
      key: `ab-${id}-${id + i}-1`,
      taskId: id,
      subtaskId: id + i,
      runTime: 1,
      sid: id * 10 + i,
      from: start + 2,
      to: start + 98,
    });
    ev(id + i, 'RUNNING', start);
    ev(id + i, 'SUCCESSFUL', start + 99);
    if (i < 5) ev(id + i + 1, 'READY', start + 99);
  }
  events.push({ taskId: id, seq: ++seq, type: 'task.successful', status: 'SUCCESSFUL', at: from + 499 });
  return { runs, events };
}

function created(n: number, taskId: number, outcome: AnswerRecord['outcome'] = 'ok'): AnswerRecord {
  return {
    n,
    door: 'http',
    action: 'create',
    op: 'restart',
    hostIds: [HOST],
    outcome,
    ...(outcome === 'ok' ? { createdTaskId: taskId } : { code: 40000 }),
    sentAt: T0,
  };
}

function evidence(parts: Partial<RunEvidence> = {}): RunEvidence {
  return {
    runs: [],
    calls: [],
    events: {},
    tasks: [],
    earlierTaskIds: new Set(),
    locks: [],
    holderStatus: {},
    answers: [],
    stillRunning: [],
    settleBoundSeconds: 60,
    ...parts,
  };
}

/** Two tasks one after the other on HOST, both accepted. */
function cleanRun(): RunEvidence {
  const a = ranSteps(10, T0);
  const b = ranSteps(20, T0 + 600);
  return evidence({
    runs: [...a.runs, ...b.runs],
    events: { '10': a.events, '20': b.events },
    tasks: [task(10), task(20)],
    answers: [created(1, 10), created(2, 20)],
  });
}

const invariants = (e: RunEvidence) => judgeRun(e).map((v) => v.invariant);

describe('model test judge', () => {
  test('a clean run passes', () => {
    assert.deepEqual(judgeRun(cleanRun()), []);
  });

  test('steps that only touch (within the file clock tolerance) do not overlap', () => {
    const e = cleanRun();
    const last = e.runs.find((r) => r.key === 'ab-10-15-1')!;
    const first = e.runs.find((r) => r.key === 'ab-20-21-1')!;
    first.from = last.to - 3;
    assert.deepEqual(
      invariants(e).filter((i) => i === 'overlap'),
      [],
    );
  });

  test('two tasks’ steps at once on a host', () => {
    const e = cleanRun();
    for (const r of e.runs.filter((x) => x.taskId === 20)) {
      r.from -= 450;
      r.to -= 450;
    }
    const found = judgeRun(e);
    assert.ok(
      found.some((v) => v.invariant === 'overlap' && /task 10.*task 20/.test(v.message)),
      JSON.stringify(found),
    );
  });

  test('another task’s step while a task holds the host by its events, though no two steps overlap', () => {
    const e = cleanRun();
    // task 10 waits 2 s between its second and third step (still RUNNING, next READY), and
    // task 20 runs one step in that gap: no overlap of steps, but the host was promised to task 10
    for (const r of e.runs.filter((x) => x.taskId === 10 && x.subtaskId >= 13)) {
      r.from += 2000;
      r.to += 2000;
    }
    for (const ev of e.events['10']!.filter((x) => x.seq >= 7)) ev.at += 2000;
    const intruder = e.runs.find((r) => r.key === 'ab-20-21-1')!;
    intruder.from = T0 + 700;
    intruder.to = T0 + 800;
    e.runs = e.runs.filter((r) => r.taskId !== 20 || r.key === intruder.key);
    assert.deepEqual(
      invariants(e).filter((i) => i === 'overlap'),
      [],
    );
    assert.ok(invariants(e).includes('interleaved'));
  });

  test('a call killed by a cancel (no end line) ends with its run', () => {
    const e = cleanRun();
    const log = [
      `begin ${T0 + 10} 500 stop`,
      `sess 500 ${10 * 10 + 1}`,
      `begin ${T0 + 700} 600 status`,
      `sess 600 ${20 * 10 + 1}`,
      `end ${T0 + 750} 600 0 status`,
    ].join('\n');
    e.calls = parseCalls(HOST, log);
    assert.equal(e.calls[0]?.end, Number.POSITIVE_INFINITY);
    assert.deepEqual(judgeRun(e), []);
    // the same killed call from no known step is open-ended: it meets the later one
    e.calls[0]!.sid = 999;
    assert.ok(invariants(e).includes('overlap'));
  });

  test('holds of a batch follow each chain to its host', () => {
    const batch: TaskView = {
      ...task(30, 'FAILED'),
      parallel: true,
      hostIds: [101, 102],
      subtasks: [
        { id: 31, parallelIdx: 0, status: 'SUCCESSFUL', operation: 'EXECUTE', runTime: 1, name: 'a' },
        { id: 32, parallelIdx: 1, status: 'FAILED', operation: 'EXECUTE', runTime: 1, name: 'b' },
      ],
    };
    const ev = (seq: number, subtaskId: number, status: string, at: number): EventLite => ({
      taskId: 30,
      seq,
      type: `subtask.${status.toLowerCase()}`,
      status,
      subtaskId,
      at,
    });
    const holds = holdsOf(batch, [
      ev(1, 31, 'READY', T0),
      ev(2, 32, 'READY', T0),
      ev(3, 32, 'RUNNING', T0 + 10),
      ev(4, 32, 'FAILED', T0 + 100),
      ev(5, 31, 'RUNNING', T0 + 10),
      ev(6, 31, 'SUCCESSFUL', T0 + 300),
    ]);
    assert.deepEqual(
      holds.map((h) => [h.hostId, h.from - T0, h.to - T0]),
      [
        [101, 0, 300],
        [102, 0, 100],
      ],
    );
  });

  test('a lock held by an ended task', () => {
    const e = cleanRun();
    e.locks = [{ hostId: HOST, holder: 20 }];
    e.holderStatus = { '20': 'SUCCESSFUL' };
    assert.deepEqual(invariants(e), ['lock']);
    e.holderStatus = { '20': 'RUNNING' };
    assert.deepEqual(invariants(e), []);
  });

  test('a task left RUNNING', () => {
    const e = cleanRun();
    e.stillRunning = [20];
    assert.deepEqual(invariants(e), ['running']);
  });

  test('a task that ran steps though every answer refused it', () => {
    const e = cleanRun();
    e.answers = [created(1, 10), created(2, 20, 'error')];
    const found = judgeRun(e);
    assert.deepEqual(
      found.map((v) => v.invariant),
      ['error-answer'],
    );
    assert.match(found[0]!.message, /task 20 ran step .* no answer accepted/);
    // a task of an earlier run that runs again, asked by no one
    const again = cleanRun();
    again.earlierTaskIds = new Set([20]);
    assert.ok(invariants(again).includes('error-answer'));
  });

  test('a run again, a skip or a cancel needs an answer that did not refuse it', () => {
    const e = cleanRun();
    const t20 = e.tasks[1]!;
    t20.subtasks[1]!.runTime = 2;
    t20.subtasks[2]!.operation = 'SKIP';
    const refused = (n: number, action: AnswerRecord['action'], subtaskId?: number): AnswerRecord => ({
      n,
      door: 'nats-api',
      action,
      taskId: 20,
      ...(subtaskId ? { subtaskId } : {}),
      outcome: 'error',
      code: 20003,
      sentAt: T0,
    });
    e.answers.push(refused(3, 'retry'), refused(4, 'skip', 23));
    assert.deepEqual(invariants(e), ['error-answer', 'error-answer']);
    // an accepted retry and a skip whose answer never came (it may have worked) explain them
    e.answers.push({ ...refused(5, 'retryOne', 22), outcome: 'ok' }, { ...refused(6, 'skip', 23), outcome: 'unknown' });
    assert.deepEqual(invariants(e), []);
  });

  test('run keys and call logs parse', () => {
    assert.deepEqual(parseRunKey('1be55156-108-110-2'), { taskId: 108, subtaskId: 110, runTime: 2 });
    assert.equal(parseRunKey('x-1-2-3'), undefined);
    const calls = parseCalls(HOST, `begin 5 7 restart pos_proxy\nsess 7 70\nend 9 7 0 restart pos_proxy\n`);
    assert.deepEqual(calls, [{ hostId: HOST, pid: 7, sid: 70, args: 'restart pos_proxy', begin: 5, end: 9 }]);
  });
});
