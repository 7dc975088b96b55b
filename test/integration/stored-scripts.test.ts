/**
 * Only scripts rendered from the configured runbooks reach a host (SPEC §7, §9),
 * against a real nats-server and real sshd hosts: whoever can write the
 * `ocp_tasks` bucket cannot make a host run anything else, and a step whose
 * runbook step or host settings changed since the task was planned fails
 * "configuration changed" until Retry takes the new configuration.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { planStep } from '../../src/core/task.js';
import { decodeJsonBytes } from '../../src/nats/kv-json.js';
import type { Service } from '../../src/service.js';
import { apiClient } from '../helpers/http.js';
import { taskEvents } from '../helpers/requests.js';
import { clearFaults, readCalls, setFault } from '../helpers/sim-agent.js';
import { type Stack, startStack, waitForTask } from '../helpers/stack.js';

/** The agentctl commands a host saw begin, after the first `skip` of them. */
function agentCalls(agentHome: string, skip = 0): string[] {
  return readCalls(agentHome)
    .filter((c) => c.phase === 'begin')
    .map((c) => c.args)
    .slice(skip);
}

describe('what others write into NATS storage', () => {
  let stack: Stack;
  let marker: string;
  let injected: string;
  const running: Service[] = [];

  before(async () => {
    stack = await startStack({
      hosts: 3,
      operations: [
        {
          name: 'restart-process',
          title: 'Restart one OCP agent process',
          params: { process: { enum: ['ocp_monagent', 'pos_proxy'] } },
          steps: [{ name: 'Restart the process', timeout: 30, command: '{agentctl} restart {process}' }],
        },
      ],
    });
    marker = join(stack.dir, 'injected-script-ran');
    injected = `touch '${marker}'; exit 0`;
  });
  after(async () => stack?.stop());
  beforeEach(() => rmSync(marker, { force: true }));

  async function start(roles?: string): Promise<Service> {
    const svc = await stack.startService(roles);
    running.push(svc);
    return svc;
  }
  async function stopAll(): Promise<void> {
    for (const svc of running.splice(0)) await svc.stop();
  }

  /**
   * What someone with write access to the bucket does: every step of the task
   * now points at their script, in the shape the record has held scripts in
   * (`scripts` and each step's index into it). `legacy` also strips what a
   * record of this version holds beside it, leaving an older version's record.
   */
  async function inject(
    taskId: number,
    opts: { legacy?: boolean; scriptOf?: (subtask: OcpTask['subtasks'][number]) => string } = {},
  ): Promise<void> {
    const kv = await stack.nc.jetstream().views.kv('ocp_tasks');
    const entry = await kv.get(`task.${taskId}`);
    assert.ok(entry, `task ${taskId} is stored`);
    const record = decodeJsonBytes<Record<string, unknown>>(entry.value);
    const subtasks = (record.task as OcpTask).subtasks;
    const scripts = subtasks.map((s) => opts.scriptOf?.(s) ?? injected);
    const steps = Object.fromEntries(
      Object.entries(record.steps as Record<string, Record<string, unknown>>).map(([id, step]) => {
        const { plan: _plan, ...rest } = step;
        return [id, { ...(opts.legacy ? rest : step), script: subtasks.findIndex((s) => String(s.id) === id) }];
      }),
    );
    const { plans: _plans, hostDigests: _digests, ...legacy } = record;
    const tampered = { ...(opts.legacy ? legacy : record), steps, scripts };
    await kv.update(`task.${taskId}`, JSON.stringify(tampered), entry.revision);
  }

  async function restartOver(api: ReturnType<typeof apiClient>, hostId: number): Promise<OcpTask> {
    const res = await api<OcpTask>('POST', `/compute/hosts/${hostId}/agent/restart`);
    assert.equal(res.status, 200, JSON.stringify(res.body.error));
    return res.body.data;
  }

  it('runs the configured steps, never a script written into the stored task', async () => {
    const host = stack.sshd.hosts[0]!;
    const seen = agentCalls(host.agentHome).length;
    // Created by a front door; no executor has read it yet when it is rewritten.
    const front = await start('api');
    const task = await restartOver(apiClient(front.httpPort as number), host.id);
    await inject(task.id);
    await start('executor');

    const done = await waitForTask(stack.nc, task.id);
    await stopAll();
    assert.equal(existsSync(marker), false, 'the script written into the bucket never ran on the host');
    assert.equal(done.status, 'SUCCESSFUL');
    const calls = agentCalls(host.agentHome, seen);
    assert.deepEqual(calls.slice(0, 4), ['status', 'restart pos_proxy', 'stop', 'start'], calls.join(' | '));
    assert.ok(
      calls.slice(4).every((c) => c === 'status'),
      calls.join(' | '),
    );
  });

  it('rolls back with the configured steps, never with a script written into the stored task', async () => {
    const host = stack.sshd.hosts[1]!;
    setFault(host.agentHome, 'restart', 'fail');
    const all = await start();
    const api = apiClient(all.httpPort as number);
    const failed = await waitForTask(stack.nc, (await restartOver(api, host.id)).id);
    assert.equal(failed.status, 'FAILED');
    clearFaults(host.agentHome);
    await stopAll();
    const seen = agentCalls(host.agentHome).length;

    const front = await start('api');
    const rolled = await apiClient(front.httpPort as number)<OcpTask>(
      'POST',
      `/api/v2/tasks/instances/${failed.id}/rollback`,
    );
    assert.equal(rolled.status, 200, JSON.stringify(rolled.body.error));
    await inject(failed.id);
    await stopAll();
    await start('executor');

    const done = await waitForTask(stack.nc, failed.id);
    await stopAll();
    assert.equal(existsSync(marker), false, 'the script written into the bucket never ran on the host');
    assert.equal(done.status, 'SUCCESSFUL');
    assert.equal(done.operation, 'ROLLBACK');
    const calls = agentCalls(host.agentHome, seen);
    assert.equal(calls[0], 'start', calls.join(' | '));
    assert.ok(
      calls.slice(1).every((c) => c === 'status'),
      calls.join(' | '),
    );
  });

  it('runs an operation only with parameter values its configuration allows, whatever the stored task says', async () => {
    const host = stack.sshd.hosts[1]!;
    const seen = agentCalls(host.agentHome).length;
    const front = await start('api');
    const res = await apiClient(front.httpPort as number)<OcpTask>(
      'POST',
      '/api/v2/ocp-chatops/operations/restart-process',
      { body: { hostId: host.id, params: { process: 'pos_proxy' } } },
    );
    assert.equal(res.status, 200, JSON.stringify(res.body.error));
    // Someone with write access to the bucket names another process before an executor reads it.
    const kv = await stack.nc.jetstream().views.kv('ocp_tasks');
    const entry = await kv.get(`task.${res.body.data.id}`);
    assert.ok(entry);
    const record = decodeJsonBytes<{ task: OcpTask }>(entry.value);
    record.task.context.stringMap.process = `sshd'; touch '${marker}'; '`;
    await kv.update(`task.${res.body.data.id}`, JSON.stringify(record), entry.revision);
    await start('executor');

    const done = await waitForTask(stack.nc, res.body.data.id);
    await stopAll();
    assert.equal(done.status, 'FAILED');
    assert.equal(existsSync(marker), false);
    assert.deepEqual(agentCalls(host.agentHome, seen), [], 'nothing ran on the host');
    const logs = await stack.nc.jetstream().views.kv('ocp_logs');
    const stored = await logs.get(`log.${done.id}.${done.subtasks[0]!.id}`);
    const log = JSON.parse(new TextDecoder().decode(stored!.value)) as { error: string };
    assert.match(
      log.error,
      /^configuration changed: parameter process of operation "restart-process" is not what its configuration allows/,
    );
  });

  it("an older version's record: runs what the configuration renders, refuses a script it does not", async () => {
    const host = stack.sshd.hosts[2]!;
    const front = await start('api');
    const api = apiClient(front.httpPort as number);
    const runbook = stack.config.runbooks.find((r) => r.name === 'Restart OCP agent')!;
    // As an older version stored it: each step's script, rendered from this configuration.
    const honest = await restartOver(api, host.id);
    await inject(honest.id, {
      legacy: true,
      scriptOf: (s) =>
        planStep(
          runbook.steps[s.seriesId]!,
          { id: host.id, agentHome: host.agentHome },
          stack.config.ssh.killGraceSeconds,
        ).script,
    });
    const kv = await stack.nc.jetstream().views.kv('ocp_tasks');
    const stored = decodeJsonBytes<{ steps: Record<string, object> }>((await kv.get(`task.${honest.id}`))!.value);
    assert.ok(
      Object.values(stored.steps).every((s) => !('plan' in s)),
      'the record is in the older shape',
    );
    // And one whose script is someone else's, on another host.
    const forged = await restartOver(api, stack.sshd.hosts[0]!.id);
    await inject(forged.id, { legacy: true });
    await start('executor');

    assert.equal((await waitForTask(stack.nc, honest.id)).status, 'SUCCESSFUL');
    const failed = await waitForTask(stack.nc, forged.id);
    await stopAll();
    assert.equal(existsSync(marker), false, 'the script written into the bucket never ran on the host');
    assert.equal(failed.status, 'FAILED');
    const logs = await stack.nc.jetstream().views.kv('ocp_logs');
    const log = JSON.parse(
      new TextDecoder().decode((await logs.get(`log.${forged.id}.${failed.subtasks[0]!.id}`))!.value),
    );
    assert.match(log.error, /^configuration changed: /);
  });

  it("keeps every event on the audit trail when a command's ack was sent onto the task's event subject", async () => {
    const host = stack.sshd.hosts[1]!;
    const front = await start('api');
    const task = await restartOver(apiClient(front.httpPort as number), host.id);
    await stopAll();
    // Where publishers share the service's account (not in config/nats-server.example.conf):
    // a command's publish ack, {"stream":"OCP_CMD","seq":<n>}, goes to the reply subject the
    // publisher chose, here the task's event subject. Its "seq" must not pass for the task's.
    for (let i = 0; i < 30; i++) {
      stack.nc.publish('ocp.cmd.agent.restart', new TextEncoder().encode('{}'), {
        reply: `ocp.events.task.${task.id}`,
      });
    }
    await stack.nc.flush();
    await start('executor');
    const done = await waitForTask(stack.nc, task.id);
    await stopAll();
    assert.equal(done.status, 'SUCCESSFUL');
    const trail = (await taskEvents(stack.nc, task.id)).filter((e) => typeof e.type === 'string');
    assert.deepEqual(
      trail.map((e) => e.seq),
      trail.map((_, i) => i + 1),
      'every event of the task, in order',
    );
    assert.equal(trail.at(-1)?.type, 'task.successful');
  });

  it('fails a step whose runbook step changed since the task was planned; Retry takes the new configuration', async () => {
    const host = stack.sshd.hosts[0]!;
    const front = await start('api');
    const task = await restartOver(apiClient(front.httpPort as number), host.id);
    await stopAll();
    const seen = agentCalls(host.agentHome).length;

    // The operator edits the runbook: "Restart pos proxy" gets another command and timeout.
    const file = join(stack.dir, 'runbooks', 'Restart-OCP-agent.yml');
    const runbook = parse(readFileSync(file, 'utf8')) as {
      steps: Array<{ name: string; timeout: number; command: string }>;
    };
    const step = runbook.steps.find((s) => s.name === 'Restart pos proxy')!;
    step.command = '{agentctl} restart pos_proxy && echo "pos proxy restarted (runbook v2)"';
    step.timeout = 25;
    writeFileSync(file, stringify(runbook));

    const svc = await start();
    const failed = await waitForTask(stack.nc, task.id);
    assert.equal(failed.status, 'FAILED');
    assert.deepEqual(
      failed.subtasks.map((s) => s.status),
      ['SUCCESSFUL', 'FAILED', 'PENDING', 'PENDING', 'PENDING'],
    );
    assert.deepEqual(agentCalls(host.agentHome, seen), ['status'], 'nothing of the changed step ran');
    const logs = await stack.nc.jetstream().views.kv('ocp_logs');
    const readLog = async (subtaskId: number) =>
      JSON.parse(new TextDecoder().decode((await logs.get(`log.${task.id}.${subtaskId}`))!.value));
    const log = await readLog(failed.subtasks[1]!.id);
    assert.match(log.error, /^configuration changed: /);
    assert.match(log.error, /Restart pos proxy/);
    assert.match(log.error, /Retry/);

    const api = apiClient(svc.httpPort as number);
    const retried = await api<OcpTask>('POST', `/api/v2/tasks/instances/${task.id}/retry`);
    assert.equal(retried.status, 200, JSON.stringify(retried.body.error));
    assert.equal(retried.body.data.subtasks[1]!.timeout, 25, 'the task shows the timeout it now runs with');
    const done = await waitForTask(stack.nc, task.id);
    await stopAll();
    assert.equal(done.status, 'SUCCESSFUL');
    assert.match((await readLog(done.subtasks[1]!.id)).log, /runbook v2/);
  });
});
