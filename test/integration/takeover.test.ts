/**
 * Crash safety: an executor process killed with SIGKILL in the middle of a
 * long "Stop all" is taken over by another within the lease, the step is not
 * run a second time, no two agentctl calls overlap on the host, and the task
 * ends SUCCESSFUL. Also: a nats-server restart in the middle of a task.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { planTask } from '../../src/core/task.js';

import type { StepRunner } from '../../src/executor/ports.js';
import { StepError } from '../../src/executor/step-failure.js';
import { createSshStepRunner } from '../../src/ssh/ssh-step-runner.js';
import { stepsOfPlan } from '../../src/tasks/step-plans.js';
import { accepted, newRequestId, request, taskEvents } from '../helpers/requests.js';
import { clearFaults, overlappingCalls, readCalls, setFault } from '../helpers/sim-agent.js';
import { type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

const LEASE_SECONDS = 4;

describe('takeover after SIGKILL', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ hosts: 1, leaseSeconds: LEASE_SECONDS });
  });
  after(async () => stack?.stop());

  it('hands a half-done "Stop all" to another executor, which carries the task to SUCCESSFUL', async () => {
    const host = stack.sshd.hosts[0]!;
    setFault(host.agentHome, 'stop', 'slow', 5);
    const a = stack.spawnService('executor');
    await waitFor('executor A', () => a.output().includes('executor started'));

    const ev = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: host.id, creator: 'ops', requestId: newRequestId() }),
    );
    await waitFor(
      'stop to begin on the host',
      () => readCalls(host.agentHome).some((c) => c.phase === 'begin' && c.args === 'stop'),
      20_000,
    );

    const b = stack.spawnService('executor');
    await waitFor('executor B', () => b.output().includes('executor started'));
    await a.kill('SIGKILL');
    const killedAt = Date.now();

    const task = await waitForTask(stack.nc, ev.taskId, undefined, 40_000);
    clearFaults(host.agentHome);
    assert.equal(task.status, 'SUCCESSFUL');

    const calls = readCalls(host.agentHome);
    assert.deepEqual(overlappingCalls(calls), [], 'no two agentctl calls overlapped on the host');
    assert.equal(calls.filter((c) => c.phase === 'begin' && c.args === 'stop').length, 1, 'Stop all ran once');
    assert.ok(
      calls.some((c) => c.phase === 'begin' && c.args === 'start'),
      'Start all ran after the takeover',
    );

    // B logs when it attaches to the step A left running.
    const line = b
      .output()
      .split('\n')
      .find((l) => l.includes('taking over a subtask left running'));
    assert.ok(line, `executor B took over:\n${b.output().slice(-2000)}`);
    const takeoverMs = JSON.parse(line).time - killedAt;
    console.log(`# takeover ${takeoverMs} ms after SIGKILL (lease ${LEASE_SECONDS} s)`);
    assert.ok(takeoverMs <= LEASE_SECONDS * 1000, `taken over within the lease (${takeoverMs} ms)`);

    const events = await taskEvents(stack.nc, ev.taskId);
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
      'every event announced once, in order',
    );
    await b.kill('SIGTERM');
  });
});

describe('nats-server restart mid-task', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ hosts: 1, leaseSeconds: LEASE_SECONDS });
    await stack.startService();
  });
  after(async () => stack?.stop());

  it('finishes the task after the server comes back', async () => {
    const host = stack.sshd.hosts[0]!;
    setFault(host.agentHome, 'stop', 'slow', 2);
    const ev = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: host.id, creator: 'ops', requestId: newRequestId() }),
    );
    await waitFor(
      'stop to begin',
      () => readCalls(host.agentHome).some((c) => c.phase === 'begin' && c.args === 'stop'),
      20_000,
    );
    await stack.nats.kill();
    // Down for longer than the step: the executor finishes it with the server away.
    await new Promise((r) => setTimeout(r, 3000));
    await stack.nats.restart();
    const task = await waitForTask(stack.nc, ev.taskId, undefined, 40_000);
    clearFaults(host.agentHome);
    assert.equal(task.status, 'SUCCESSFUL');
    assert.deepEqual(overlappingCalls(readCalls(host.agentHome)), []);
    assert.equal(readCalls(host.agentHome).filter((c) => c.phase === 'begin' && c.args === 'stop').length, 1);
    const events = await taskEvents(stack.nc, ev.taskId);
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
    );
  });
});

describe('a connection lost in the middle of a step', () => {
  let stack: Stack;
  after(async () => stack?.stop());

  it('attaches to the step again instead of failing it and freeing the host', async () => {
    stack = await startStack({ hosts: 1, leaseSeconds: LEASE_SECONDS });
    const real = createSshStepRunner({
      knownHostsPath: stack.config.ssh.knownHostsPath,
      connectTimeoutSeconds: 5,
      logger: pino({ level: 'silent' }),
    });
    // The first wait on "Stop all" loses its connection once the step has launched.
    const runKeys: string[] = [];
    let cut = false;
    const flaky: StepRunner = {
      ...real,
      run: async (spec) => {
        runKeys.push(spec.runKey);
        if (!cut && /stop/.test(spec.script) && !/status/.test(spec.script.split('\n')[0] ?? '')) {
          cut = true;
          void real.run(spec); // launched on the host; its answer never reaches us
          await new Promise((r) => setTimeout(r, 300));
          throw new StepError('unreachable', 'connection to the host closed during the step');
        }
        return real.run(spec);
      },
      exec: real.exec,
      cancel: real.cancel,
      close: real.close,
    };
    await stack.startService(undefined, flaky);
    const h = stack.sshd.hosts[0]!;
    setFault(h.agentHome, 'stop', 'slow', 2);
    const ev = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: h.id, creator: 'ops', requestId: newRequestId() }),
    );
    const task = await waitForTask(stack.nc, ev.taskId, undefined, 40_000);
    clearFaults(h.agentHome);
    assert.equal(cut, true);
    assert.equal(task.status, 'SUCCESSFUL');
    const stopKey = `-${ev.taskId}-${task.subtasks[2]!.id}-1`;
    assert.equal(runKeys.filter((k) => k.endsWith(stopKey)).length, 2, 'attached a second time to the same run');
    assert.equal(readCalls(h.agentHome).filter((c) => c.phase === 'begin' && c.args === 'stop').length, 1);
    assert.deepEqual(overlappingCalls(readCalls(h.agentHome)), []);
  });
});

describe('a task stored but never queued', () => {
  let stack: Stack;
  after(async () => stack?.stop());

  it('is found by the sweep and carried to the end', async () => {
    stack = await startStack({ hosts: 1, leaseSeconds: LEASE_SECONDS });
    const svc = await stack.startService('executor');
    const h = stack.sshd.hosts[0]!;
    // As if the process that stored it died before queueing its first subtask.
    const ids = await svc.deps.ids.take(6);
    const plan = planTask({
      runbook: svc.deps.config.runbooks.find((r) => r.name === 'Start OCP agent')!,
      hosts: [{ id: h.id, agentHome: h.agentHome }],
      ids,
      creator: 'nats:lost',
      executor: svc.deps.address,
      now: new Date(),
    });
    await svc.deps.store.create({
      task: plan.task,
      ...stepsOfPlan(svc.deps.config, 'Start OCP agent', plan.steps),
      requestId: 'lost-1',
      traceId: '0123456789abcdef',
    });
    const task = await waitForTask(stack.nc, ids[0]!, undefined, 4 * LEASE_SECONDS * 1000);
    assert.equal(task.status, 'SUCCESSFUL');
  });
});
