/**
 * The task index behind listings (SPEC §10 "History at scale"), against a real
 * nats-server: `GET /api/v2/tasks/instances` answers newest first, filtered by
 * status, name and host (a batch's hosts among them), on any page, exactly as
 * the stored tasks say; a write is in the next listing (read your own writes),
 * whichever process made it; a task removed is gone from it; and a process
 * started afterwards (a restart) lists the same.
 *
 * Tasks are stored through the store (no executor runs here), then ended or
 * failed by compare-and-set, as the executor would leave them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { planTask } from '../../src/core/task.js';
import { formatOcpTime } from '../../src/core/time.js';
import type { Service } from '../../src/service.js';
import { stepsOfPlan } from '../../src/tasks/step-plans.js';
import { apiClient } from '../helpers/http.js';
import { type Stack, startStack } from '../helpers/stack.js';

type Summary = Omit<OcpTask, 'subtasks'>;
interface Page {
  contents: Summary[];
  page: { number: number; size: number; totalElements: number; totalPages: number };
}

const RUNBOOKS = ['Restart OCP agent', 'Stop OCP agent', 'Start OCP agent'];

describe('task index', () => {
  let stack: Stack;
  let svc: Service;
  let api: ReturnType<typeof apiClient>;
  /** What the store holds, as this test made it. */
  const stored = new Map<number, OcpTask>();

  /** Store a task planned on `hostIds` (more than one: a batch); RUNNING, as a new task is. */
  async function storeTask(s: Service, runbookName: string, hostIds: number[]): Promise<OcpTask> {
    const runbook = s.deps.config.runbooks.find((r) => r.name === runbookName)!;
    const hosts = hostIds.map((id) => s.deps.config.hosts.find((h) => h.id === id)!);
    const ids = await s.deps.ids.take(1 + runbook.steps.length * hosts.length);
    const plan = planTask({
      runbook,
      hosts,
      ids,
      creator: 'nats:index-test',
      executor: s.deps.address,
      now: new Date(),
    });
    const record = await s.deps.store.create({
      task: plan.task,
      ...stepsOfPlan(s.deps.config, runbook.name, plan.steps),
      requestId: `index-test-${ids[0]}`,
      traceId: '0123456789abcdef',
    });
    stored.set(record.task.id, record.task);
    return record.task;
  }

  /** End a task as the executor would: every subtask run, or its first one failed. */
  async function end(s: Service, taskId: number, status: 'SUCCESSFUL' | 'FAILED'): Promise<OcpTask> {
    const at = formatOcpTime(new Date());
    const changed = await s.deps.store.update(taskId, (r) => ({
      ...r,
      task: {
        ...r.task,
        status,
        finishTime: at,
        subtasks: r.task.subtasks.map((st, i) =>
          status === 'FAILED' && i > 0
            ? st
            : { ...st, status: status === 'FAILED' ? 'FAILED' : 'SUCCESSFUL', startTime: at, finishTime: at },
        ),
      },
    }));
    stored.set(taskId, changed!.task);
    return changed!.task;
  }

  /** The listing a model of the store gives: sorted and filtered, every task. */
  function expected(q: { status?: string; name?: string; hostId?: number; page: number; size: number }) {
    const matching = [...stored.values()]
      .sort((a, b) => b.id - a.id)
      .filter(
        (t) =>
          (q.status === undefined || t.status === q.status) &&
          (q.name === undefined || t.name === q.name) &&
          (q.hostId === undefined ||
            t.hostId === q.hostId ||
            (t.context.listMap.host_ids ?? []).includes(String(q.hostId))),
      );
    return {
      contents: matching.slice((q.page - 1) * q.size, q.page * q.size).map(({ subtasks: _s, ...summary }) => summary),
      page: {
        number: q.page,
        size: q.size,
        totalElements: matching.length,
        totalPages: Math.ceil(matching.length / q.size),
      },
    };
  }

  async function listed(
    q: { status?: string; name?: string; hostId?: number; page: number; size: number },
    through = api,
  ) {
    const params = new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]));
    const r = await through<Page>('GET', `/api/v2/tasks/instances?${params}`, { user: 'viewer' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data;
  }

  before(async () => {
    stack = await startStack({ hosts: 4 });
    svc = await stack.startService('api');
    api = apiClient(svc.httpPort as number);
  });
  after(async () => stack?.stop());

  it('lists newest first, filtered by status, name and host (batches too), on any page', async () => {
    const hostIds = stack.sshd.hosts.map((h) => h.id);
    // 30 tasks: singles on each host, batches of two to four hosts, three runbooks; a third failed, a third ended.
    for (let i = 0; i < 30; i++) {
      const batch = i % 4 === 3 ? hostIds.slice(i % 2, (i % 2) + 2 + (i % 3)) : [hostIds[i % hostIds.length]!];
      const t = await storeTask(svc, RUNBOOKS[i % 3]!, batch);
      if (i % 3 === 1) await end(svc, t.id, 'FAILED');
      if (i % 3 === 2) await end(svc, t.id, 'SUCCESSFUL');
    }
    const queries = [
      { page: 1, size: 10 },
      { page: 2, size: 10 },
      { page: 3, size: 10 },
      { page: 4, size: 10 },
      { page: 1, size: 7 },
      { page: 5, size: 7 },
      { status: 'FAILED', page: 1, size: 10 },
      { status: 'RUNNING', page: 2, size: 4 },
      { name: 'Stop OCP agent', page: 1, size: 10 },
      { name: 'No such runbook', page: 1, size: 10 },
      ...hostIds.flatMap((hostId) => [
        { hostId, page: 1, size: 10 },
        { hostId, page: 2, size: 3 },
        { hostId, status: 'SUCCESSFUL', name: 'Restart OCP agent', page: 1, size: 10 },
      ]),
      { hostId: 987654, page: 1, size: 10 },
    ];
    for (const q of queries) assert.deepEqual(await listed(q), expected(q), JSON.stringify(q));
  });

  it('lists a write at once, whichever process made it, and forgets a removed task', async () => {
    const other = await stack.startService('api');
    const h = stack.sshd.hosts[0]!.id;
    // Made by another process: listed here at once.
    const t = await storeTask(other, 'Restart OCP agent', [h]);
    assert.deepEqual(
      (await listed({ hostId: h, page: 1, size: 1 })).contents,
      expected({ hostId: h, page: 1, size: 1 }).contents,
    );
    assert.equal((await listed({ page: 1, size: 1 })).contents[0]?.id, t.id);
    // Its end, by that process: in this one's listing by status at once.
    await end(other, t.id, 'FAILED');
    const failed = await listed({ status: 'FAILED', page: 1, size: 1 });
    assert.equal(failed.contents[0]?.id, t.id);
    assert.equal(failed.contents[0]?.status, 'FAILED');
    // Removed (retention): gone at once, and the totals say so.
    await other.deps.store.remove(t.id);
    stored.delete(t.id);
    for (const q of [
      { page: 1, size: 10 },
      { status: 'FAILED', page: 1, size: 10 },
      { hostId: h, page: 1, size: 10 },
    ]) {
      assert.deepEqual(await listed(q), expected(q), JSON.stringify(q));
    }
    // And a task made over HTTP by this process is there in its own next listing.
    const made = await api<OcpTask>('POST', `/compute/hosts/${stack.sshd.hosts[1]!.id}/agent/restart`);
    assert.equal(made.status, 200, JSON.stringify(made.body));
    assert.equal((await listed({ page: 1, size: 1 })).contents[0]?.id, made.body.data.id);
    stored.set(made.body.data.id, made.body.data);
  });

  it('gives a process started later (every process restarted) the same listings', async () => {
    const fresh = await stack.startService('api');
    const through = apiClient(fresh.httpPort as number);
    for (const q of [
      { page: 1, size: 10 },
      { page: 3, size: 10 },
      { status: 'RUNNING', page: 1, size: 10 },
      { hostId: stack.sshd.hosts[2]!.id, page: 1, size: 5 },
    ]) {
      assert.deepEqual(await listed(q, through), await listed(q), JSON.stringify(q));
    }
  });
});
