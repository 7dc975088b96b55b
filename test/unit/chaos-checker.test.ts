/**
 * The chaos soak's judge (chaos/checker.ts) on doctored evidence: a clean
 * restart passes, and each kind of breach the soak looks for is reported
 * under its promise — two agentctl calls overlapping on a host (from a
 * doctored calls.log), one step run twice at once, a task left RUNNING,
 * Slack replies out of order, a task that succeeded on a host set to fail;
 * and, for the batches, clicks, concurrent operations and notifier kills of
 * the soak: another task inside a task's hold of a host (a retried task's
 * holds are two), a Slack post repeated without a notifier death between the
 * two posts, a request answered with an error whose task ran, a task set
 * running again more often than operations on it were let through, two tasks
 * for one request, a host still locked by an ended task.
 * Also the fault model: what each fault does to each runbook.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Breach,
  type ChaosEvidence,
  checkChaos,
  type EventRecord,
  expectedOutcome,
  parseAgentLog,
  type RunRecord,
} from '../../chaos/checker.js';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { builtinRunbooks, RESTART, STOP } from '../../src/core/runbooks/builtin.js';
import type { Runbook } from '../../src/core/runbooks/runbook.js';
import { planTask } from '../../src/core/task.js';

const HOST = 101;
const TASK = 1;
const EPOCH = 'abc123';
const T0 = 1_700_000_000_000;

function runbook(name: string): Runbook {
  return builtinRunbooks.find((r) => r.name === name) as Runbook;
}

/** A Restart task on HOST that has run to the end, every subtask SUCCESSFUL. */
function doneTask(name = RESTART): OcpTask {
  const { task } = planTask({
    runbook: runbook(name),
    hosts: [{ id: HOST, agentHome: '/h/ocp_agent' }],
    ids: [TASK, 2, 3, 4, 5, 6],
    creator: 'nats:chaos',
    executor: '127.0.0.1',
    now: new Date(T0),
  });
  return {
    ...task,
    status: 'SUCCESSFUL',
    finishTime: new Date(T0 + 10_000).toISOString(),
    subtasks: task.subtasks.map((s) => ({ ...s, status: 'SUCCESSFUL', timeout: 10 })),
  };
}

/** What each step asks of agentctl (src/core/runbooks/builtin.ts). */
const CALLS_OF: Record<string, string[]> = {
  'Prepare restart OCP agent': ['status'],
  'Restart pos proxy': ['restart pos_proxy'],
  'Stop all OCP agent processes': ['stop'],
  'Start all OCP agent processes': ['start', 'status', 'status'],
  'Finish OCP agent operation': ['status'],
};

/** Evidence of one clean restart: runs 1 s apart, each step's calls inside its run. */
function cleanEvidence(): ChaosEvidence {
  const task = doneTask();
  const runs: RunRecord[] = [];
  const log: string[] = [];
  let pid = 5000;
  task.subtasks.forEach((s, i) => {
    const sid = 1000 + i;
    const claimedAt = T0 + 1000 + i * 1000;
    runs.push({
      key: `${EPOCH}-${TASK}-${s.id}-1`,
      epoch: EPOCH,
      taskId: TASK,
      subtaskId: s.id,
      runTime: 1,
      sid,
      claimedAt,
      endedAt: claimedAt + 500,
      rc: 0,
      why: '',
    });
    (CALLS_OF[s.name] ?? []).forEach((args, j) => {
      pid += 1;
      const begin = claimedAt + 10 + j * 100;
      log.push(`begin ${begin} ${pid} ${args}`, `sess ${pid} ${sid}`, `end ${begin + 50} ${pid} 0 ${args}`);
    });
  });
  const events: EventRecord[] = [
    { seq: 1, type: 'task.running', status: 'RUNNING' },
    { seq: 2, type: 'subtask.ready', status: 'READY', subtaskId: 2 },
  ];
  task.subtasks.forEach((s, i) => {
    const next = task.subtasks[i + 1];
    events.push({ seq: events.length + 1, type: 'subtask.running', status: 'RUNNING', subtaskId: s.id });
    events.push({ seq: events.length + 1, type: 'subtask.successful', status: 'SUCCESSFUL', subtaskId: s.id });
    events.push(
      next
        ? { seq: events.length + 1, type: 'subtask.ready', status: 'READY', subtaskId: next.id }
        : { seq: events.length + 1, type: 'task.successful', status: 'SUCCESSFUL' },
    );
  });
  const replies = [
    ...task.subtasks.map((s, i) => ({
      ts: `1.${i + 2}`,
      text: `:white_check_mark: *${s.name}* SUCCESSFUL in 0.5 s`,
      blocks: '[]',
    })),
    { ts: '1.9', text: ':white_check_mark: Restart OCP agent SUCCESSFUL in 6 s', blocks: '[]' },
  ];
  return {
    hosts: [{ hostId: HOST, calls: parseAgentLog(log.join('\n')), runs }],
    tasks: [
      {
        task,
        hostIds: [HOST],
        hostOfSubtask: Object.fromEntries(task.subtasks.map((s) => [String(s.id), HOST])),
        channel: 'C0CHAOS',
        errors: {},
        eventSeq: events.length,
      },
    ],
    events: { [TASK]: events },
    requestEvents: { r1: [{ type: 'accepted', taskId: TASK }] },
    slack: {
      [TASK]: {
        parents: [
          {
            ts: '1.1',
            text: 'Restart OCP agent on sim-host-101',
            blocks: JSON.stringify([
              { type: 'section', text: { type: 'mrkdwn', text: ':white_check_mark: *Restart OCP agent*' } },
              { type: 'context', elements: [{ type: 'mrkdwn', text: `Task *${TASK}*` }] },
            ]),
          },
        ],
        replies,
      },
    },
    faults: [{ hostId: HOST, from: 0, faults: [] }],
    requests: [{ id: 'r1', door: 'nats', op: 'restart', hostId: HOST, sentAt: T0, result: 'accepted', taskId: TASK }],
    killGraceSeconds: 2,
  };
}

function only(breaches: Breach[], promise: Breach['promise']): Breach[] {
  return breaches.filter((b) => b.promise === promise);
}

describe('chaos checker', () => {
  test('a clean restart breaks no promise and is judged', () => {
    const { breaches, stats } = checkChaos(cleanEvidence());
    assert.deepEqual(breaches, []);
    assert.equal(stats.judged, 1);
    assert.equal(stats.unjudged, 0);
    assert.equal(stats.calls, 7);
  });

  test('a doctored agent log with two calls at once on a host: host-exclusive', () => {
    const e = cleanEvidence();
    const host = e.hosts[0]!;
    const stop = host.runs[2]!;
    const start = host.runs[3]!;
    // As if "Start all" had begun while "Stop all"'s stop call was still running.
    const text = [
      `begin ${stop.claimedAt + 10} 7001 stop`,
      `sess 7001 ${stop.sid}`,
      `begin ${stop.claimedAt + 30} 7002 start`,
      `sess 7002 ${start.sid}`,
      `end ${stop.claimedAt + 60} 7001 0 stop`,
      `end ${stop.claimedAt + 90} 7002 0 start`,
    ].join('\n');
    host.calls = parseAgentLog(text);
    const found = only(checkChaos(e).breaches, 'host-exclusive');
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.match(found[0]!.message, /"stop" \(pid 7001.*overlaps "start" \(pid 7002/);
  });

  test('a hung call (no end line) lasts until its run ended, and no longer', () => {
    const e = cleanEvidence();
    const host = e.hosts[0]!;
    const stop = host.runs[2]!;
    host.calls = parseAgentLog([`begin ${stop.claimedAt + 10} 7001 stop`, `sess 7001 ${stop.sid}`].join('\n'));
    // ends with its run (claimedAt + 500)…
    host.calls.push(...parseAgentLog(`begin ${stop.claimedAt + 600} 7002 start\nsess 7002 ${host.runs[3]!.sid}`));
    host.calls[1]!.end = stop.claimedAt + 700;
    assert.deepEqual(only(checkChaos(e).breaches, 'host-exclusive'), []);
    // …so a call begun before that overlaps it.
    host.calls[1]!.begin = stop.claimedAt + 400;
    assert.equal(only(checkChaos(e).breaches, 'host-exclusive').length, 1);
  });

  test('a step run twice at once: step-once', () => {
    const e = cleanEvidence();
    const stop = e.hosts[0]!.runs[2]!;
    e.hosts[0]!.runs.push({ ...stop, key: `beef-${TASK}-${stop.subtaskId}-1`, epoch: 'beef', sid: 4242 });
    const found = only(checkChaos(e).breaches, 'step-once');
    assert.equal(found.length, 1);
    assert.match(found[0]!.message, /subtask 1\/4 ran as .* at the same time/);
  });

  test('one run launched in two sessions: step-once', () => {
    const e = cleanEvidence();
    const host = e.hosts[0]!;
    const stop = host.runs[2]!;
    host.calls.push(
      ...parseAgentLog(
        `begin ${stop.claimedAt + 200} 7001 stop\nsess 7001 4243\nend ${stop.claimedAt + 300} 7001 0 stop`,
      ),
    );
    // the second session is the same run (its .pid file said so when the soak read it)
    host.runs.push({ ...stop, sid: 4243 });
    const found = only(checkChaos(e).breaches, 'step-once');
    assert.ok(
      found.some((b) => /launched in 2 sessions/.test(b.message)),
      JSON.stringify(found),
    );
  });

  test('a task left RUNNING: settled', () => {
    const e = cleanEvidence();
    const t = e.tasks[0]!;
    const last = t.task.subtasks.at(-1)!;
    t.task = {
      ...t.task,
      status: 'RUNNING',
      subtasks: t.task.subtasks.map((s) => (s.id === last.id ? { ...s, status: 'RUNNING' } : s)),
    };
    const found = only(checkChaos(e).breaches, 'settled');
    assert.equal(found.length, 1);
    assert.match(found[0]!.message, /still RUNNING.*Finish OCP agent operation=RUNNING/);
  });

  test('a step with no exit code on the host: settled', () => {
    const e = cleanEvidence();
    const run = e.hosts[0]!.runs[4]!;
    delete run.endedAt;
    delete run.rc;
    assert.ok(only(checkChaos(e).breaches, 'settled').some((b) => b.message.includes(run.key)));
  });

  test('Slack replies out of order: slack-thread', () => {
    const e = cleanEvidence();
    const replies = e.slack[TASK]!.replies;
    [replies[1], replies[2]] = [replies[2]!, replies[1]!];
    const found = only(checkChaos(e).breaches, 'slack-thread');
    assert.equal(found.length, 1);
    assert.match(found[0]!.message, /reply 2 is ".*Stop all.*", expected Restart pos proxy SUCCESSFUL/);
  });

  test('a reply posted twice, a second parent, a stale parent: slack-thread', () => {
    const e = cleanEvidence();
    const thread = e.slack[TASK]!;
    thread.replies.splice(1, 0, { ...thread.replies[0]! });
    assert.match(only(checkChaos(e).breaches, 'slack-thread')[0]!.message, /a repeat of the one before/);

    const e2 = cleanEvidence();
    e2.slack[TASK]!.parents.push({ ...e2.slack[TASK]!.parents[0]!, ts: '1.99' });
    assert.match(only(checkChaos(e2).breaches, 'slack-thread')[0]!.message, /2 parent messages/);

    const e3 = cleanEvidence();
    e3.slack[TASK]!.parents[0]!.blocks = JSON.stringify([
      { type: 'section', text: { type: 'mrkdwn', text: ':hourglass_flowing_sand: *Restart OCP agent*' } },
      { type: 'actions', elements: [{ type: 'button', action_id: 'subtask_cancel' }] },
    ]);
    assert.match(only(checkChaos(e3).breaches, 'slack-thread')[0]!.message, /still shows.*Cancel button/);
  });

  test('a task that succeeded though its host was set to fail: outcome', () => {
    const e = cleanEvidence();
    e.faults = [{ hostId: HOST, from: 0, faults: [{ cmd: 'restart', kind: 'fail' }] }];
    const found = only(checkChaos(e).breaches, 'outcome');
    assert.equal(found.length, 1);
    assert.match(
      found[0]!.message,
      /ended SUCCESSFUL; host 101 had fail-restart, so "Restart pos proxy" should have failed/,
    );
  });

  test('a task that failed with the wrong reason, or at the wrong step: outcome', () => {
    const e = cleanEvidence();
    e.faults = [{ hostId: HOST, from: 0, faults: [{ cmd: 'stop', kind: 'hang' }] }];
    const t = e.tasks[0]!;
    const stop = t.task.subtasks[2]!;
    t.task = {
      ...t.task,
      status: 'FAILED',
      subtasks: t.task.subtasks.map((s, i) =>
        i === 2 ? { ...s, status: 'FAILED' } : i > 2 ? { ...s, status: 'PENDING' } : s,
      ),
    };
    t.errors = { [stop.id]: 'exit code 1' };
    assert.match(only(checkChaos(e).breaches, 'outcome')[0]!.message, /should have failed with "timed out"/);
    e.faults = [{ hostId: HOST, from: 0, faults: [{ cmd: 'start', kind: 'fail' }] }];
    assert.match(
      only(checkChaos(e).breaches, 'outcome')[0]!.message,
      /failed at "Stop all.*should have failed at "Start all/,
    );
  });

  test('faults changed in the middle of a task: not judged rather than guessed', () => {
    const e = cleanEvidence();
    const mid = e.hosts[0]!.runs[2]!.claimedAt;
    e.faults = [
      { hostId: HOST, from: 0, to: mid, faults: [] },
      { hostId: HOST, from: mid + 1, faults: [{ cmd: 'restart', kind: 'fail' }] },
    ];
    const { breaches, stats } = checkChaos(e);
    assert.deepEqual(only(breaches, 'outcome'), []);
    assert.equal(stats.unjudged, 1);
  });

  test('an accepted request whose task is not stored, and a missing event: outcome, events', () => {
    const e = cleanEvidence();
    e.requests.push({ id: 'r2', door: 'http', op: 'stop', hostId: HOST, sentAt: T0, result: 'accepted', taskId: 77 });
    assert.match(only(checkChaos(e).breaches, 'outcome')[0]!.message, /accepted as task 77, which is not in the store/);
    const e2 = cleanEvidence();
    e2.events[TASK]!.splice(4, 1);
    assert.match(only(checkChaos(e2).breaches, 'events')[0]!.message, /missing: 5/);
  });
});

describe('the fault model', () => {
  const restart = doneTask(RESTART);
  const stop = doneTask(STOP);
  test('each fault on a restart', () => {
    assert.deepEqual(expectedOutcome(restart, []), { status: 'SUCCESSFUL' });
    assert.deepEqual(expectedOutcome(restart, [{ cmd: 'status', kind: 'fail' }]), {
      status: 'FAILED',
      subtask: 'Start all OCP agent processes',
      reason: 'timeout',
    });
    assert.deepEqual(expectedOutcome(restart, [{ cmd: 'stop', kind: 'fail' }], 2), { status: 'SUCCESSFUL' });
    assert.deepEqual(expectedOutcome(restart, [{ cmd: 'start', kind: 'fail' }]), {
      status: 'FAILED',
      subtask: 'Start all OCP agent processes',
      reason: 'exit',
    });
    assert.deepEqual(expectedOutcome(restart, [{ cmd: 'status', kind: 'hang' }]), {
      status: 'FAILED',
      subtask: 'Prepare restart OCP agent',
      reason: 'timeout',
    });
    assert.deepEqual(expectedOutcome(restart, [{ cmd: 'restart', kind: 'slow', seconds: 2 }]), {
      status: 'SUCCESSFUL',
    });
    assert.equal(expectedOutcome(restart, [{ cmd: 'status', kind: 'slow', seconds: 4 }]).status, 'unknown');
  });
  test('a stop shrugs off a failing status and restart', () => {
    assert.deepEqual(expectedOutcome(stop, [{ cmd: 'status', kind: 'fail' }]), { status: 'SUCCESSFUL' });
    assert.deepEqual(expectedOutcome(stop, [{ cmd: 'restart', kind: 'hang' }]), { status: 'SUCCESSFUL' });
    assert.deepEqual(expectedOutcome(stop, [{ cmd: 'stop', kind: 'hang' }]), {
      status: 'FAILED',
      subtask: 'Stop all OCP agent processes',
      reason: 'timeout',
    });
  });
});

describe('chaos checker: busy hosts', () => {
  test('a request accepted while another task ran on its host: busy-refused', () => {
    const e = cleanEvidence();
    const first = e.tasks[0]!.task;
    const second: OcpTask = { ...doneTask(), id: 9, startTime: new Date(T0 + 3000).toISOString() };
    e.tasks.push({ ...e.tasks[0]!, task: second, eventSeq: 0 });
    const answer = { id: 'r9', door: 'http' as const, op: 'stop' as const, hostId: HOST, result: 'accepted' as const };
    // sent and answered while the first one ran (T0 .. T0 + 10 s)
    e.requests.push({ ...answer, sentAt: T0 + 2000, answeredAt: T0 + 2100, taskId: 9 });
    const found = checkChaos(e).breaches.filter((b) => b.promise === 'busy-refused');
    assert.equal(found.length, 1);
    assert.match(found[0]!.message, new RegExp(`accepted as task 9 on host ${HOST}, while task ${first.id} ran there`));
    // answered after the first one had ended: fine
    e.requests.at(-1)!.answeredAt = T0 + 10_001;
    assert.deepEqual(
      checkChaos(e).breaches.filter((b) => b.promise === 'busy-refused'),
      [],
    );
  });
});

describe('chaos checker: processes', () => {
  test('a process that died on its own is a breach; one the soak killed, or that never came up, is not', () => {
    const e = cleanEvidence();
    const base = { roles: 'executor', started: true, killedBySoak: false, exitedAt: T0 + 5000 };
    e.processes = [
      { ...base, name: 'executor-1', pid: 11, killedBySoak: true, signal: 'SIGKILL' },
      { ...base, name: 'executor-2', pid: 12, started: false, code: 1, tail: 'NatsError: CONNECTION_REFUSED' },
      { ...base, name: 'executor-3', pid: 13, exitedAt: undefined },
      {
        ...base,
        name: 'executor-4',
        pid: 14,
        code: 1,
        tail: "node:events:502\n      throw er; // Unhandled 'error' event\n\nError: read ECONNRESET\n",
      },
    ];
    const found = checkChaos(e).breaches;
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.equal(found[0]!.promise, 'no-crash');
    assert.match(found[0]!.message, /executor-4 .*pid 14.*Unhandled 'error' event.*ECONNRESET/);
  });
});

describe('chaos checker: login shells', () => {
  test('~/.bashrc run twice for one SSH connection: login-once; once per connection is fine', () => {
    const e = cleanEvidence();
    const conn = (port: number) => `127.0.0.1 ${port} 127.0.0.10 2222`;
    e.bashrcRuns = [
      { connection: conn(40000), shlvl: '1', pid: 21 },
      { connection: conn(40002), shlvl: '1', pid: 22 },
      { connection: conn(40000), shlvl: '1', pid: 23 },
    ];
    const found = checkChaos(e).breaches;
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.equal(found[0]!.promise, 'login-once');
    assert.match(found[0]!.message, /ran 2 times for the SSH connection 127\.0\.0\.1 40000 .*pids 21, 23/);
  });
});

/** Move a run and its agent calls by `ms`. */
function shiftRun(e: ChaosEvidence, run: RunRecord, ms: number): void {
  for (const c of e.hosts[0]!.calls) {
    if (c.sid !== run.sid) continue;
    c.begin += ms;
    if (c.end !== undefined) c.end += ms;
  }
  run.claimedAt += ms;
  if (run.endedAt !== undefined) run.endedAt += ms;
}

/**
 * The clean restart, except that "Stop all" (subtask 4) failed at its first run
 * and was retried 20 s later (runTime 2), the rest following; and another task
 * (7) ran a step on the host in between, while the host was free.
 */
function retriedEvidence(): ChaosEvidence {
  const e = cleanEvidence();
  const t = e.tasks[0]!;
  const runs = e.hosts[0]!.runs;
  const stop = runs[2]!;
  runs.push({ ...stop, key: `${EPOCH}-${TASK}-${stop.subtaskId}-2`, runTime: 2, sid: 2002 });
  Object.assign(stop, { rc: 1, why: '' });
  for (const r of runs.slice(3)) shiftRun(e, r, 20_000);
  t.task = {
    ...t.task,
    operation: 'RETRY',
    finishTime: new Date(T0 + 30_000).toISOString(),
    subtasks: t.task.subtasks.map((s) => (s.id === stop.subtaskId ? { ...s, runTime: 2, operation: 'RETRY' } : s)),
  };
  const other: OcpTask = { ...doneTask(), id: 7, startTime: new Date(T0 + 9000).toISOString() };
  e.tasks.push({ ...t, task: other, eventSeq: 0 });
  runs.push({
    key: `${EPOCH}-7-2-1`,
    epoch: EPOCH,
    taskId: 7,
    subtaskId: 2,
    runTime: 1,
    claimedAt: T0 + 10_000,
    endedAt: T0 + 11_000,
    rc: 0,
  });
  e.requests.push({
    id: 'r7',
    door: 'http',
    op: 'restart',
    hostId: HOST,
    sentAt: T0 + 8000,
    answeredAt: T0 + 8100,
    result: 'accepted',
    taskId: 7,
  });
  return e;
}

describe('chaos checker: tasks operated on', () => {
  test('a task retried after another task used the freed host: no host-exclusive or busy-refused breach', () => {
    const { breaches } = checkChaos(retriedEvidence());
    assert.deepEqual(only(breaches, 'host-exclusive'), []);
    assert.deepEqual(only(breaches, 'busy-refused'), []);
  });

  test('another task inside a hold (between two steps of a chain at work): host-exclusive and busy-refused', () => {
    const e = retriedEvidence();
    // task 7 now runs between "Restart pos proxy" and the first "Stop all", while task 1 held the host
    const run7 = e.hosts[0]!.runs.at(-1)!;
    Object.assign(run7, { claimedAt: T0 + 2600, endedAt: T0 + 2900 });
    Object.assign(e.requests.at(-1)!, { sentAt: T0 + 2400, answeredAt: T0 + 2500 });
    const { breaches } = checkChaos(e);
    assert.match(
      only(breaches, 'host-exclusive')[0]?.message ?? '',
      /task 7 ran steps .* while task 1 was still at work/,
    );
    assert.match(only(breaches, 'busy-refused')[0]?.message ?? '', /accepted as task 7 .* while task 1 ran there/);
  });

  test('an operated task is not judged by the faults; an accepted batch request is checked on every host', () => {
    const e = cleanEvidence();
    e.faults = [{ hostId: HOST, from: 0, faults: [{ cmd: 'restart', kind: 'fail' }] }];
    e.operations = [
      { id: 'o1', group: 1, door: 'http', op: 'skip', taskId: TASK, subtaskId: 3, sentAt: T0, result: 'ok' },
    ];
    const { breaches, stats } = checkChaos(e);
    assert.deepEqual(only(breaches, 'outcome'), []);
    assert.equal(stats.unjudged, 1);

    const b = cleanEvidence();
    b.requests.push({
      id: 'rb',
      door: 'http',
      op: 'batchRestart',
      hostId: 999,
      hostIds: [999, HOST],
      sentAt: T0 + 2000,
      answeredAt: T0 + 2100,
      result: 'accepted',
      taskId: 50,
    });
    assert.match(only(checkChaos(b).breaches, 'busy-refused')[0]?.message ?? '', /task 50 on host 101/);
  });
});

describe('chaos checker: the notifier dies', () => {
  const front = (exitedAt: number) => ({
    name: 'front-1',
    roles: 'api,slack,notifier',
    pid: 31,
    started: true,
    killedBySoak: true,
    exitedAt,
    signal: 'SIGKILL',
  });
  /** The clean thread with post times, reply 2 posted again at `againAt`. */
  function repeated(againAt: number): ChaosEvidence {
    const e = cleanEvidence();
    const thread = e.slack[TASK]!;
    thread.parents[0]!.at = T0 + 100;
    thread.replies.forEach((r, i) => {
      r.at = T0 + 1000 * (i + 1);
    });
    thread.replies.splice(2, 0, { ...thread.replies[1]!, ts: '1.35', at: againAt });
    return e;
  }

  test('one reply posted again after a notifier died between the two posts: allowed, and counted', () => {
    const e = repeated(T0 + 2500);
    e.processes = [front(T0 + 2200)];
    const { breaches, stats } = checkChaos(e);
    assert.deepEqual(only(breaches, 'slack-thread'), []);
    assert.equal(stats.slackRepeats, 1);
  });

  test('a repeat with the death outside the two posts, or two repeats for one death: slack-thread', () => {
    const e = repeated(T0 + 2500);
    e.processes = [front(T0 + 2600)];
    assert.match(only(checkChaos(e).breaches, 'slack-thread')[0]!.message, /reply 3 .*a repeat of the one before/);

    const e2 = repeated(T0 + 2500);
    e2.processes = [front(T0 + 2200)];
    const thread = e2.slack[TASK]!;
    thread.replies.splice(5, 0, { ...thread.replies[4]!, ts: '1.55', at: T0 + 4500 });
    assert.match(only(checkChaos(e2).breaches, 'slack-thread')[0]!.message, /reply 6 .*a repeat of the one before/);
    // an executor's death explains nothing
    e2.processes.push({ ...front(T0 + 4200), name: 'executor-3', roles: 'executor' });
    assert.equal(only(checkChaos(e2).breaches, 'slack-thread').length, 1);
    e2.processes.push(front(T0 + 4300));
    assert.deepEqual(only(checkChaos(e2).breaches, 'slack-thread'), []);
  });

  test('a parent posted twice is allowed only across a notifier death; a thread split in two never', () => {
    const e = cleanEvidence();
    const thread = e.slack[TASK]!;
    thread.parents[0]!.at = T0 + 100;
    thread.parents.push({ ...thread.parents[0]!, ts: '1.15', at: T0 + 900 });
    thread.threadOf = 1;
    assert.match(only(checkChaos(e).breaches, 'slack-thread')[0]!.message, /2 parent messages/);
    e.processes = [front(T0 + 500)];
    assert.deepEqual(only(checkChaos(e).breaches, 'slack-thread'), []);
    thread.strayReplies = [{ ...thread.replies[0]!, ts: '1.16' }];
    assert.match(only(checkChaos(e).breaches, 'slack-thread')[0]!.message, /thread is split/);
  });

  test('a skipped subtask is told as skipped, not SUCCESSFUL', () => {
    const e = cleanEvidence();
    const t = e.tasks[0]!;
    const pos = t.task.subtasks[1]!;
    t.task = {
      ...t.task,
      subtasks: t.task.subtasks.map((s) => (s.id === pos.id ? { ...s, operation: 'SKIP' } : s)),
    };
    const thread = e.slack[TASK]!;
    assert.match(only(checkChaos(e).breaches, 'slack-thread')[0]!.message, /expected Restart pos proxy skipped/);
    thread.replies[1]!.text = ':fast_forward: *Restart pos proxy* skipped';
    assert.deepEqual(only(checkChaos(e).breaches, 'slack-thread'), []);
  });

  test('a missing last reply: slack-thread', () => {
    const e = cleanEvidence();
    e.slack[TASK]!.replies.pop();
    assert.match(
      only(checkChaos(e).breaches, 'slack-thread')[0]!.message,
      /reply 6 is missing, expected final SUCCESSFUL/,
    );
  });
});

describe('chaos checker: error answers, one task per request, host locks', () => {
  /** The clean task marked as the task of request `tag`. */
  function tagged(tag: string): ChaosEvidence {
    const e = cleanEvidence();
    const t = e.tasks[0]!.task;
    e.tasks[0]!.task = {
      ...t,
      context: { ...t.context, stringMap: { ...t.context.stringMap, reason: `chaos ${tag}` } },
    };
    return e;
  }

  test('a request answered with an error whose task ran steps: error-answer', () => {
    const e = tagged('chaos-9');
    const refused = {
      id: 'chaos-9',
      door: 'http' as const,
      op: 'restart' as const,
      hostId: HOST,
      sentAt: T0,
      answeredAt: T0 + 50,
      result: 'error' as const,
      detail: '503 NATS is unreachable',
      tag: 'chaos-9',
      answered: true,
    };
    e.requests = [refused];
    const found = only(checkChaos(e).breaches, 'error-answer');
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.match(found[0]!.message, /request chaos-9 \(http restart.*answered with an error.*task 1 ran 5 steps/);
    // no answer seen (a connection cut): its fate was never told, so its task may run
    e.requests = [{ ...refused, answered: false }];
    assert.deepEqual(only(checkChaos(e).breaches, 'error-answer'), []);
  });

  test('a step of a task the store does not hold: error-answer', () => {
    const e = cleanEvidence();
    const run = e.hosts[0]!.runs[0]!;
    e.hosts[0]!.runs.push({ ...run, key: `${EPOCH}-4711-4712-1`, taskId: 4711, subtaskId: 4712, sid: 999 });
    const found = only(checkChaos(e).breaches, 'error-answer');
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.match(found[0]!.message, /task 4711 is not in the store, yet 1 steps of it ran/);
  });

  test('a task set running again more often than operations on it were not refused: error-answer', () => {
    const e = cleanEvidence();
    const events = e.events[TASK]!;
    const end = events.pop()!;
    events.push(
      { seq: events.length + 1, type: 'task.failed', status: 'FAILED' },
      { seq: events.length + 2, type: 'task.running', status: 'RUNNING' },
      { ...end, seq: events.length + 3 },
    );
    e.tasks[0]!.eventSeq = events.length;
    const op = { group: 1, door: 'http' as const, op: 'retry' as const, taskId: TASK, sentAt: T0 };
    e.operations = [
      { ...op, id: 'o1', result: 'refused', detail: '409 20003' },
      { ...op, id: 'o2', door: 'slack', result: 'refused', detail: ':warning: task 1 is RUNNING' },
    ];
    const found = only(checkChaos(e).breaches, 'error-answer');
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.match(found[0]!.message, /set running again 1 times, but only 0 operations on it were not refused/);
    e.operations.push({ ...op, id: 'o3', door: 'nats-api', result: 'none' });
    const { breaches, stats } = checkChaos(e);
    assert.deepEqual(only(breaches, 'error-answer'), []);
    assert.equal(stats.reopens, 1);
  });

  test('two tasks for one request: one-task', () => {
    const e = tagged('chaos-3');
    e.tasks.push({ ...e.tasks[0]!, task: { ...e.tasks[0]!.task, id: 8 } });
    assert.match(only(checkChaos(e).breaches, 'one-task')[0]!.message, /made 2 tasks: 1, 8/);
  });

  test('a host still locked by an ended task: locks-freed; by a task never stored: counted only', () => {
    const e = cleanEvidence();
    e.locks = [
      { hostId: HOST, taskId: TASK },
      { hostId: 102, taskId: 4444 },
    ];
    const { breaches, stats } = checkChaos(e);
    const found = only(breaches, 'locks-freed');
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.match(found[0]!.message, /host 101 is still locked by task 1, which ended SUCCESSFUL/);
    assert.equal(stats.orphanLocks, 1);
  });
});

describe('chaos checker: Slack batch confirmations', () => {
  test('"not started" answered for a batch that started: batch-answer', () => {
    const e = cleanEvidence();
    const batch = {
      id: 'chaos-31',
      door: 'slack' as const,
      op: 'batchRestart' as const,
      hostId: HOST,
      hostIds: [HOST, 102],
      sentAt: T0,
      answeredAt: T0 + 500,
      result: 'accepted' as const,
      taskId: TASK,
      tag: 'chaos-31',
      answered: true,
    };
    e.requests.push({
      ...batch,
      responses: [
        'Restart the OCP agent on 2 hosts?',
        `Batch restart of 2 hosts started: task ${TASK}.`,
        'Batch restart not started.',
      ],
    });
    const found = only(checkChaos(e).breaches, 'batch-answer');
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.match(
      found[0]!.message,
      /started as task 1, yet its confirmation was answered "Batch restart not started\."/,
    );
    // Cancel first, then a Confirm that found it gone: true answers
    e.requests[e.requests.length - 1] = {
      ...batch,
      result: 'rejected',
      responses: [
        'Restart the OCP agent on 2 hosts?',
        'Batch restart not started.',
        'This confirmation has expired or was cancelled; type the command again.',
      ],
    };
    assert.deepEqual(only(checkChaos(e).breaches, 'batch-answer'), []);
  });
});
