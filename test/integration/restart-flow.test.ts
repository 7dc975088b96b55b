/**
 * The restart engine end to end against a real nats-server and real sshd:
 * published request → task → five steps over SSH on a simulated host.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { accepted, newRequestId, request, taskEvents } from '../helpers/requests.js';
import {
  agentProcessPids,
  clearFaults,
  processesMatching,
  readCalls,
  regexEscape,
  setFault,
  setStuckStop,
} from '../helpers/sim-agent.js';
import { readTask, type Stack, startStack, waitForTask } from '../helpers/stack.js';

const RESTART_STEPS = [
  'Prepare restart OCP agent',
  'Restart pos proxy',
  'Stop all OCP agent processes',
  'Start all OCP agent processes',
  'Finish OCP agent operation',
];

describe('restart flow', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ hosts: 3, stepTimeouts: { 'Stop all OCP agent processes': 3 } });
    await stack.startService();
  });
  after(async () => stack?.stop());

  const host = (i: number) => stack.sshd.hosts[i]!;
  const begins = (i: number) =>
    readCalls(host(i).agentHome)
      .filter((c) => c.phase === 'begin')
      .map((c) => c.args);

  it('runs a published restart to SUCCESSFUL, the agent seeing the five steps in order', async () => {
    const requestId = newRequestId();
    const ev = accepted(
      await request(stack.nc, stack.js, 'restart', {
        hostId: host(0).id,
        creator: 'ops',
        requestId,
        reason: 'stuck monagent',
      }),
    );
    assert.equal(ev.task.status, 'RUNNING');
    assert.deepEqual(
      ev.task.subtasks.map((s) => s.name),
      RESTART_STEPS,
    );
    assert.equal(ev.task.creator, 'nats:ops');
    assert.equal(ev.task.context.stringMap.reason, 'stuck monagent');

    const task = await waitForTask(stack.nc, ev.taskId);
    assert.equal(task.status, 'SUCCESSFUL');
    assert.ok(task.subtasks.every((s) => s.status === 'SUCCESSFUL'));

    // Prepare: status; pos proxy; stop; start then status until up; finish: status.
    const calls = begins(0);
    assert.equal(calls[0], 'status');
    assert.equal(calls[1], 'restart pos_proxy');
    assert.equal(calls[2], 'stop');
    assert.equal(calls[3], 'start');
    assert.ok(
      calls.slice(4).every((c) => c === 'status'),
      calls.join(' | '),
    );

    const events = await taskEvents(stack.nc, ev.taskId);
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
      'events in order, none missing',
    );
    assert.equal(events[0]?.type, 'task.running');
    assert.equal(events.at(-1)?.type, 'task.successful');
    const finished = events.filter((e) => e.type === 'subtask.successful').map((e) => e.subtaskId);
    assert.deepEqual(
      finished,
      task.subtasks.map((s) => s.id),
    );
  });

  it('fails the task on a failing step: stderr in the log, later steps not run, host freed', async () => {
    setFault(host(1).agentHome, 'restart', 'fail');
    const before = begins(1).length;
    const ev = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: host(1).id, creator: 'ops', requestId: newRequestId() }),
    );
    const task = await waitForTask(stack.nc, ev.taskId);
    assert.equal(task.status, 'FAILED');
    assert.deepEqual(
      task.subtasks.map((s) => s.status),
      ['SUCCESSFUL', 'FAILED', 'PENDING', 'PENDING', 'PENDING'],
    );
    const logs = await stack.nc.jetstream().views.kv('ocp_logs');
    const entry = await logs.get(`log.${task.id}.${task.subtasks[1]!.id}`);
    const log = JSON.parse(new TextDecoder().decode(entry!.value));
    assert.match(log.log, /simulated failure of restart/);
    assert.equal(log.error, 'exit code 3');
    assert.deepEqual(begins(1).slice(before), ['status', 'restart pos_proxy'], 'nothing after the failed step ran');

    clearFaults(host(1).agentHome);
    const again = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: host(1).id, creator: 'ops', requestId: newRequestId() }),
    );
    assert.equal((await waitForTask(stack.nc, again.taskId)).status, 'SUCCESSFUL', 'the lock was freed');
  });

  it('stops a hanging step at its timeout and leaves nothing of it on the host', async () => {
    setFault(host(2).agentHome, 'stop', 'hang');
    const ev = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: host(2).id, creator: 'ops', requestId: newRequestId() }),
    );
    const task = await waitForTask(stack.nc, ev.taskId);
    clearFaults(host(2).agentHome);
    assert.equal(task.status, 'FAILED');
    const stop = task.subtasks[2]!;
    assert.equal(stop.status, 'FAILED');
    const logs = await stack.nc.jetstream().views.kv('ocp_logs');
    const log = JSON.parse(new TextDecoder().decode((await logs.get(`log.${task.id}.${stop.id}`))!.value));
    assert.equal(log.error, 'timed out after 3 s');
    assert.deepEqual(processesMatching(`simhang ${regexEscape(host(2).agentHome)}`), [], 'no hanging process left');
    const hung = readCalls(host(2).agentHome).filter((c) => c.args === 'stop');
    assert.deepEqual(
      processesMatching(`^/bin/bash ${regexEscape(host(2).agentHome)}`).filter((p) => hung.some((c) => c.pid === p)),
      [],
    );
  });

  it('refuses a second request for a busy host with 40000 naming the running task', async () => {
    setFault(host(0).agentHome, 'restart', 'slow', 2);
    const first = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: host(0).id, creator: 'ops', requestId: newRequestId() }),
    );
    const second = await request(stack.nc, stack.js, 'stop', {
      hostId: host(0).id,
      creator: 'ops',
      requestId: newRequestId(),
    });
    assert.equal(second.type, 'rejected');
    assert.equal(second.type === 'rejected' && second.error.code, 40000);
    assert.match(second.type === 'rejected' ? second.error.message : '', new RegExp(`task ${first.taskId}\\b`));
    await waitForTask(stack.nc, first.taskId);
    clearFaults(host(0).agentHome);
  });

  it('runs a request published twice only once', async () => {
    const requestId = newRequestId();
    const before = begins(0).filter((c) => c === 'restart pos_proxy').length;
    const answers: string[] = [];
    const sub = stack.nc.subscribe(`ocp.events.request.${requestId}`, {
      callback: (_e, m) => answers.push(m.string()),
    });
    const payload = { hostId: host(0).id, creator: 'ops', requestId };
    await request(stack.nc, stack.js, 'restart', payload, { msgID: 'same-msg-id' });
    // Same Nats-Msg-Id: dropped by the stream. Same requestId, new Msg-Id: answered from the record.
    await stack.js.publish('ocp.cmd.agent.restart', JSON.stringify(payload), { msgID: 'same-msg-id' });
    await stack.js.publish('ocp.cmd.agent.restart', JSON.stringify(payload), { msgID: 'another-msg-id' });
    const first = JSON.parse(answers[0] ?? '{}');
    await waitForTask(stack.nc, first.taskId);
    await new Promise((r) => setTimeout(r, 500));
    sub.unsubscribe();
    assert.equal(answers.length, 1, 'one answer per request');
    assert.equal(begins(0).filter((c) => c === 'restart pos_proxy').length - before, 1, 'ran once');
  });

  it('keeps the request ids the service makes to itself: a publisher cannot answer, and so swallow, another request', async () => {
    // A request with neither requestId nor Nats-Msg-Id is answered as msg-<stream sequence>: a
    // publisher that takes that id first for a request of its own must not make it theirs.
    const jsm = await stack.nc.jetstreamManager();
    const claimed = `msg-${(await jsm.streams.info('OCP_CMD')).state.last_seq + 2}`;
    const invalid = stack.nc.subscribe('ocp.events.request.invalid', { max: 1, timeout: 10_000 });
    await stack.js.publish(
      'ocp.cmd.agent.restart',
      JSON.stringify({ hostId: host(1).id, creator: 'mallory', requestId: claimed }),
    );
    for await (const m of invalid) {
      const ev = m.json<{ error: { code: number; message: string } }>();
      assert.equal(ev.error.code, 10001);
      assert.match(ev.error.message, /requestId/);
    }

    const victim = accepted(
      await request(
        stack.nc,
        stack.js,
        'restart',
        { hostId: host(0).id, creator: 'ops' },
        { requestId: claimed, timeoutMs: 5000 },
      ),
    );
    assert.equal(victim.task.creator, 'nats:ops');
    assert.equal(victim.task.hostId, host(0).id);
    await waitForTask(stack.nc, victim.taskId);
    for (const prefix of ['api-', 'slack-']) {
      const bad = await request(
        stack.nc,
        stack.js,
        'restart',
        {
          hostId: host(1).id,
          creator: 'mallory',
          requestId: `${prefix}${newRequestId()}`,
        },
        { requestId: 'invalid' },
      );
      assert.equal(bad.type === 'rejected' && bad.error.code, 10001, prefix);
    }
  });

  it('rejects invalid payloads with 10001 and keeps serving', async () => {
    const requestId = newRequestId();
    const bad = await request(stack.nc, stack.js, 'restart', { hostId: 'abc', creator: 'ops', requestId });
    assert.equal(bad.type, 'rejected');
    assert.equal(bad.type === 'rejected' && bad.error.code, 10001);
    assert.match(bad.type === 'rejected' ? bad.error.message : '', /hostId/);

    const sub = stack.nc.subscribe('ocp.events.request.invalid', { max: 1, timeout: 10_000 });
    await stack.js.publish('ocp.cmd.agent.restart', new TextEncoder().encode('{not json'));
    for await (const m of sub) assert.equal(m.json<{ error: { code: number } }>().error.code, 10001);

    const unknown = await request(stack.nc, stack.js, 'restart', {
      hostId: 999,
      creator: 'ops',
      requestId: newRequestId(),
    });
    assert.equal(unknown.type === 'rejected' && unknown.error.code, 10002);

    const ok = accepted(
      await request(stack.nc, stack.js, 'start', {
        hostId: String(host(1).id),
        creator: 'ops',
        requestId: newRequestId(),
      }),
    );
    assert.equal((await waitForTask(stack.nc, ok.taskId)).status, 'SUCCESSFUL');
    assert.equal((await readTask(stack.nc, ok.taskId))?.task.name, 'Start OCP agent');
  });

  it('kills leftovers with -9 after the grace period when stop leaves processes behind', async () => {
    setStuckStop(host(2).agentHome, true);
    const before = agentProcessPids(host(2).agentHome);
    const ev = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: host(2).id, creator: 'ops', requestId: newRequestId() }),
    );
    const task = await waitForTask(stack.nc, ev.taskId);
    setStuckStop(host(2).agentHome, false);
    assert.equal(task.status, 'SUCCESSFUL');
    const stop = task.subtasks[2]!;
    const logs = await stack.nc.jetstream().views.kv('ocp_logs');
    const log = JSON.parse(new TextDecoder().decode((await logs.get(`log.${task.id}.${stop.id}`))!.value));
    assert.match(log.log, /kill -9 leftovers:/);
    const after = agentProcessPids(host(2).agentHome);
    assert.equal(after.length, 4, 'all four agent processes run again');
    assert.ok(
      after.every((p) => !before.includes(p)),
      'with new pids',
    );
  });

  it('stops the agent (SUCCESSFUL, nothing left running) and starts it again', async () => {
    const h = host(1);
    const stop = accepted(
      await request(stack.nc, stack.js, 'stop', { hostId: h.id, creator: 'ops', requestId: newRequestId() }),
    );
    assert.deepEqual(
      stop.task.subtasks.map((s) => s.name),
      ['Prepare stop OCP agent', 'Stop all OCP agent processes', 'Finish OCP agent operation'],
    );
    assert.equal((await waitForTask(stack.nc, stop.taskId)).status, 'SUCCESSFUL');
    assert.deepEqual(agentProcessPids(h.agentHome), [], 'no agent process runs');
    const start = accepted(
      await request(stack.nc, stack.js, 'start', { hostId: h.id, creator: 'ops', requestId: newRequestId() }),
    );
    assert.equal((await waitForTask(stack.nc, start.taskId)).status, 'SUCCESSFUL');
    assert.equal(agentProcessPids(h.agentHome).length, 4);
  });
});
