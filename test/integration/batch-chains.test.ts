/**
 * Batches of any size (SPEC §10 "Any size"): a batch is stored as a head and
 * one record per host chain, and runs as one work item per chain. Through the
 * control plane (HTTP, NATS, the executor) with a step runner that never
 * touches SSH (the runner is a port): a batch of every host of a 5,000-host
 * inventory, the GET of a batch with and without its subtasks, a busy host
 * refusing a whole batch, and an executor killed with SIGKILL in the middle of
 * a large batch (no chain lost, none run twice).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TaskEvent } from '../../src/contracts/events.js';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { StepResult, StepRunner, StepSpec } from '../../src/executor/ports.js';
import type { Service } from '../../src/service.js';
import { apiClient } from '../helpers/http.js';
import { taskEvents } from '../helpers/requests.js';
import { type Stack, startStack, waitFor } from '../helpers/stack.js';

const OK: StepResult = { end: 'exited', exitCode: 0, output: '', truncated: false };
const BIG = 5000;
const SUBTASK_KEYS = [
  'className',
  'description',
  'downstreams',
  'id',
  'name',
  'nodeType',
  'operation',
  'parallelIdx',
  'prohibitRollback',
  'runTime',
  'seriesId',
  'status',
  'timeout',
  'upstreams',
];

/**
 * A runner whose steps end at once, recording each run key; a step on a host
 * in `held` waits until `release()`.
 */
function quickRunner(): StepRunner & { runs: string[]; held: Set<number>; release(): void } {
  const runs: string[] = [];
  const held = new Set<number>();
  let open: () => void = () => undefined;
  let gate = new Promise<void>((r) => {
    open = r;
  });
  return {
    runs,
    held,
    release() {
      held.clear();
      open();
      gate = Promise.resolve();
    },
    async run(spec: StepSpec) {
      runs.push(spec.runKey);
      if (held.has(spec.target.hostId)) await gate;
      return OK;
    },
    async exec() {
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    async cancel() {},
    async close() {},
  };
}

/** The stack's config with `n` hosts, all at 127.0.0.1 with distinct ids (never contacted: the runner is not SSH). */
function inventoryOf(n: number) {
  return (file: Record<string, unknown>) => ({
    ...file,
    hosts: Array.from({ length: n }, (_, k) => ({
      id: 1001 + k,
      name: `fleet-${k + 1}`,
      address: '127.0.0.1',
      labels: { cluster: `c${k % 3}` },
    })),
  });
}

const hostIds = (from: number, count: number) => Array.from({ length: count }, (_, k) => 1001 + from + k);

describe('batches of any size, one record and one work item per host chain', () => {
  let stack: Stack;
  let svc: Service;
  let api: ReturnType<typeof apiClient>;
  const runner = quickRunner();

  before(async () => {
    stack = await startStack({
      hosts: 1,
      editConfig: inventoryOf(BIG),
      maxParallel: 200,
      executorConcurrency: 200,
      leaseSeconds: 10,
    });
    svc = await stack.startService(undefined, runner);
    api = apiClient(svc.httpPort as number);
  });
  after(async () => stack?.stop());

  const until = async (taskId: number, timeoutMs: number) =>
    waitFor(
      `task ${taskId} ends`,
      async () => {
        const r = await api<Omit<OcpTask, 'subtasks'>>('GET', `/api/v2/tasks/instances/${taskId}?subtasks=false`);
        return r.body.data.status === 'RUNNING' ? undefined : r.body.data;
      },
      timeoutMs,
    );

  it('runs a batch of every host of a 5,000-host inventory to SUCCESSFUL, and answers its GET in OCP’s shape', async () => {
    const ids = hostIds(0, BIG);
    const a = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: ids } });
    assert.equal(a.status, 200, JSON.stringify(a.body).slice(0, 500));
    const created = a.body.data;
    assert.equal(created.status, 'RUNNING');
    assert.equal(created.subtasks.length, BIG * 5);
    assert.deepEqual(created.context.listMap.host_ids, ids.map(String));

    const summary = await until(created.id, 240_000);
    assert.equal(summary.status, 'SUCCESSFUL');
    assert.equal('subtasks' in summary, false, '?subtasks=false leaves the key out');
    assert.equal(summary.context.listMap.host_ids?.length, BIG);

    const full = await api<OcpTask>('GET', `/api/v2/tasks/instances/${created.id}`);
    assert.equal(full.status, 200);
    const t = full.body.data;
    assert.equal(t.status, 'SUCCESSFUL');
    assert.equal(t.subtasks.length, BIG * 5);
    assert.ok(t.subtasks.every((s) => s.status === 'SUCCESSFUL'));
    assert.deepEqual(Object.keys(t).sort(), [...Object.keys(summary), 'subtasks'].sort());
    for (const s of [t.subtasks[0], t.subtasks.at(-1)]) {
      for (const k of SUBTASK_KEYS) assert.ok(k in (s as object), `subtask has ${k}`);
    }
    // Each host's chain in order, on its own parallelIdx, every step run once.
    const chains = new Map<number, number[]>();
    for (const s of t.subtasks) chains.set(s.parallelIdx, [...(chains.get(s.parallelIdx) ?? []), s.seriesId]);
    assert.equal(chains.size, BIG);
    assert.ok([...chains.values()].every((c) => c.join() === '0,1,2,3,4'));
    const ran = new Set(runner.runs.filter((k) => k.includes(`-${created.id}-`)));
    assert.equal(ran.size, BIG * 5, 'every subtask ran');
    // The hosts are free again: a single-host task on one of them is accepted.
    const again = await api<OcpTask>('POST', `/compute/hosts/${ids[4321]}/agent/restart`);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal((await until(again.body.data.id, 30_000)).status, 'SUCCESSFUL');
  });

  it('numbers a batch’s events per chain (and the task’s own apart), each sequence in order', async () => {
    const ids = hostIds(0, 3);
    const a = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: ids } });
    assert.equal(a.status, 200);
    await until(a.body.data.id, 30_000);
    const events = (await taskEvents(stack.nc, a.body.data.id)) as TaskEvent[];
    const own = events.filter((e) => e.chain === undefined);
    assert.deepEqual(
      own.map((e) => [e.seq, e.type]),
      [
        [1, 'task.running'],
        [2, 'task.successful'],
      ],
    );
    for (const c of [0, 1, 2]) {
      const mine = events.filter((e) => e.chain === c);
      assert.deepEqual(
        mine.map((e) => e.seq),
        mine.map((_, i) => i + 1),
        `chain ${c} in order`,
      );
      assert.equal(mine.at(-1)?.type, 'subtask.successful');
      assert.ok(mine.every((e) => e.task.subtasks.length === 1 && e.task.subtasks[0]?.parallelIdx === c));
      assert.deepEqual(mine[0]?.task.context.listMap.host_ids, [String(ids[c])]);
    }
    // Every chain's last event is on the stream before the task's end.
    const endAt = events.findIndex((e) => e.type === 'task.successful');
    assert.ok(events.slice(endAt + 1).every((e) => e.chain === undefined));
  });

  it('refuses a batch with busy hosts as a whole (409 / 40000), naming 20 of them and their task', async () => {
    // Hosts 100-129 held by a running batch whose steps wait.
    const busyIds = hostIds(100, 30);
    for (const id of busyIds) runner.held.add(id);
    const holder = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: busyIds } });
    assert.equal(holder.status, 200);
    const wanted = [...hostIds(90, 10), ...busyIds, ...hostIds(130, 10)];
    const refused = await api('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: wanted } });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 40000);
    const named = [...refused.body.error.message.matchAll(/(\d+) \(fleet-\d+\): task (\d+)/g)];
    assert.equal(named.length, 20, refused.body.error.message);
    assert.ok(named.every((m) => busyIds.includes(Number(m[1])) && Number(m[2]) === holder.body.data.id));
    assert.match(refused.body.error.message, /and 10 more/);
    // Nothing of the refused batch holds a host.
    for (const id of [...hostIds(90, 10), ...hostIds(130, 10)]) {
      assert.equal(await svc.deps.locks.holder(id), undefined, `host ${id} free`);
    }
    runner.release();
    assert.equal((await until(holder.body.data.id, 60_000)).status, 'SUCCESSFUL');
  });
});

describe('an executor killed with SIGKILL in the middle of a large batch', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  let svc: Service;
  before(async () => {
    stack = await startStack({
      hosts: 1,
      editConfig: inventoryOf(600),
      maxParallel: 100,
      executorConcurrency: 100,
      leaseSeconds: 4,
    });
    svc = await stack.startService('api');
    api = apiClient(svc.httpPort as number);
  });
  after(async () => stack?.stop());

  it('loses no chain and runs none twice: the new executor attaches to what was running', async () => {
    const runLog = join(stack.dir, 'runs.log');
    writeFileSync(runLog, '');
    const entry = new URL('../../bench/executor-with-runner.ts', import.meta.url).pathname;
    const env = { BENCH_RUNNER: 'sleep:30', BENCH_RUN_LOG: runLog };
    const first = stack.spawnService('executor', { entry, env, logLevel: 'warn' });
    const ids = hostIds(0, 600);
    const a = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: ids } });
    assert.equal(a.status, 200, JSON.stringify(a.body).slice(0, 300));
    const taskId = a.body.data.id;
    const lines = () => readFileSync(runLog, 'utf8').split('\n').filter(Boolean);
    await waitFor('a third of the batch run', () => (lines().length > 1000 ? true : undefined), 120_000);
    await first.kill('SIGKILL');
    const atKill = lines().length;
    const second = stack.spawnService('executor', { entry, env, logLevel: 'warn' });
    const ended = await waitFor(
      'the batch ends',
      async () => {
        const r = await api<Omit<OcpTask, 'subtasks'>>('GET', `/api/v2/tasks/instances/${taskId}?subtasks=false`);
        return r.body.data.status === 'RUNNING' ? undefined : r.body.data;
      },
      180_000,
    );
    await second.kill('SIGTERM');
    assert.equal(ended.status, 'SUCCESSFUL');
    const t = (await api<OcpTask>('GET', `/api/v2/tasks/instances/${taskId}`)).body.data;
    assert.ok(t.subtasks.every((s) => s.status === 'SUCCESSFUL' && s.runTime === 1));
    // Every run key of this batch launched; a key seen twice is a run the killed
    // executor had in hand, attached to again by the next (the host runs it once).
    const keys = lines().filter((k) => k.includes(`-${taskId}-`));
    const counts = new Map<string, number>();
    for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
    assert.equal(counts.size, 600 * 5, 'every subtask ran');
    const twice = [...counts].filter(([, n]) => n > 1);
    assert.ok(
      twice.every(([, n]) => n === 2),
      'none more than twice',
    );
    assert.ok(twice.length <= 100, `at most one per chain in flight at the kill (${twice.length})`);
    const before = new Set(lines().slice(0, atKill));
    assert.ok(
      twice.every(([k]) => before.has(k)),
      'only runs begun before the kill are taken over',
    );
  });
});
