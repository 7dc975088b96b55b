/**
 * Slack for a batch (SPEC §10 "Slack, for a batch"), through the whole stack
 * with a step runner that never touches SSH: a batch of 200 hosts, some
 * failing with one of two errors, gets one parent kept current with counts,
 * replies for the canary, for failed hosts grouped by error and for the end —
 * none per host — in fewer Slack calls than seconds it ran (plus a few); a
 * notifier restarted in the middle of a batch posts none of its replies twice,
 * and Slack's rate limits lose none of them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { StepResult, StepRunner, StepSpec } from '../../src/executor/ports.js';
import type { Service } from '../../src/service.js';
import type { FakeMessage, FakeSlack } from '../helpers/fake-slack.js';
import { apiClient } from '../helpers/http.js';
import { SLACK_CHANNEL, SLACK_USERS, startFakeSlackAndStack } from '../helpers/slack-stack.js';
import { textOf } from '../helpers/slack-user.js';
import { type Stack, waitFor } from '../helpers/stack.js';

const HOSTS = 200;
const FIRST_ID = 1001;
/** Hosts whose steps fail, and how: exit code 3 or 7. */
const exitCodeOf = (hostId: number) => {
  const k = hostId - FIRST_ID;
  return k % 40 === 2 ? 3 : k % 40 === 3 ? 7 : 0;
};
const FAILING = Array.from({ length: HOSTS }, (_, k) => FIRST_ID + k).filter((id) => exitCodeOf(id) !== 0);

/** Steps that end after a moment (exit code per host); a step on a host in `held` waits for `release()`. */
function quickRunner(): StepRunner & { held: Set<number>; release(): void } {
  const held = new Set<number>();
  let open: () => void = () => undefined;
  let gate = new Promise<void>((r) => {
    open = r;
  });
  return {
    held,
    release() {
      held.clear();
      open();
      gate = Promise.resolve();
    },
    async run(spec: StepSpec): Promise<StepResult> {
      if (held.has(spec.target.hostId)) await gate;
      await sleep(30);
      return { end: 'exited', exitCode: exitCodeOf(spec.target.hostId), output: 'agent said no\n', truncated: false };
    },
    async exec() {
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    async cancel() {},
    async close() {},
  };
}

/** Hosts named in a message as "1003 (fleet-3)". */
const namedHosts = (m: FakeMessage) => [...textOf(m).matchAll(/(\d{4}) \(fleet-\d+\)/g)].map((x) => Number(x[1]));

describe('Slack for a batch: one live parent, replies for the canary, failures and the end', () => {
  let fake: FakeSlack;
  let stack: Stack;
  let notifier: Service;
  let api: ReturnType<typeof apiClient>;
  const runner = quickRunner();

  before(async () => {
    ({ fake, stack } = await startFakeSlackAndStack({
      hosts: 1,
      managers: [SLACK_USERS.manager],
      viewers: [],
      defaultChannel: SLACK_CHANNEL,
      options: {
        maxParallel: 20,
        executorConcurrency: 20,
        editConfig: (file) => ({
          ...file,
          hosts: Array.from({ length: HOSTS }, (_, k) => ({
            id: FIRST_ID + k,
            name: `fleet-${k + 1}`,
            address: '127.0.0.1',
          })),
        }),
      },
    }));
    const svc = await stack.startService('api,executor', runner);
    notifier = await stack.startService('notifier');
    api = apiClient(svc.httpPort as number);
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
  });

  /** A batch of every host, its head given a canary of 2 (the rolling options' `canary`) as soon as it is stored. */
  async function startBatch(): Promise<{ taskId: number; parent: FakeMessage }> {
    const before = fake.channel(SLACK_CHANNEL).filter((m) => !m.thread_ts).length;
    const ids = Array.from({ length: HOSTS }, (_, k) => FIRST_ID + k);
    const a = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: ids } });
    assert.equal(a.status, 200, JSON.stringify(a.body).slice(0, 300));
    const taskId = a.body.data.id;
    const kv = await stack.js.views.kv('ocp_tasks');
    const head = await kv.get(`task.${taskId}`);
    assert.ok(head);
    const value = head.json<{ options: Record<string, unknown> }>();
    await kv.update(
      `task.${taskId}`,
      JSON.stringify({ ...value, options: { ...value.options, canary: 2 } }),
      head.revision,
    );
    const parent = await waitFor('the parent', () => fake.channel(SLACK_CHANNEL).filter((m) => !m.thread_ts)[before]);
    assert.match(textOf(parent), new RegExp(`Task \\*${taskId}\\*`));
    return { taskId, parent };
  }

  const thread = (parent: FakeMessage) => fake.thread(SLACK_CHANNEL, parent.ts);
  /** The end reply ("… FAILED in 3 s: 190 of 200 hosts succeeded, 10 failed"). */
  const endReply = (parent: FakeMessage) => thread(parent).find((m) => /of \d+ hosts succeeded/.test(m.text ?? ''));
  const ended = async (taskId: number) =>
    waitFor(
      `task ${taskId} ends`,
      async () => {
        const r = await api<OcpTask>('GET', `/api/v2/tasks/instances/${taskId}?subtasks=false`);
        return r.body.data.status === 'RUNNING' ? undefined : r.body.data;
      },
      60_000,
    );
  /** The parent once it shows the batch ended, as its last update left it. */
  const finalParent = (parent: FakeMessage) =>
    waitFor('the parent shows the end', () => {
      const p = fake.channel(SLACK_CHANNEL).find((m) => m.ts === parent.ts);
      return p && /— FAILED/.test(p.text ?? '') ? p : undefined;
    });

  it('200 hosts, 10 failing two ways: counts on the parent, the canary, failures grouped, the end — no reply per host', async () => {
    const firstCall = fake.calls.length;
    const { taskId, parent } = await startBatch();
    const task = await ended(taskId);
    assert.equal(task.status, 'FAILED');
    const end = await waitFor('the end reply', () => endReply(parent), 20_000);
    const shown = await finalParent(parent);
    await sleep(2500); // an update the notifier had due would be in by now

    const text = textOf(shown);
    assert.match(
      text,
      /190 :white_check_mark: succeeded · 10 :x: failed · 0 :hourglass_flowing_sand: running · 0 :white_circle: waiting/,
    );
    assert.match(text, /200 of 200 hosts done/);
    for (const id of FAILING)
      assert.match(text, new RegExp(`:x: ${id} \\(fleet-${id - FIRST_ID + 1}\\) — exit code [37]`));
    assert.match(text, /"action_id":"task_retry"/, 'a failed batch offers Retry');

    const replies = thread(parent);
    const canary = replies.filter((m) => /Canary/.test(m.text ?? ''));
    assert.equal(canary.length, 1);
    assert.match(canary[0]?.text ?? '', /Canary passed: 2 hosts succeeded; the other 198 start now/);
    const failures = replies.filter((m) => /hosts? failed$/.test(m.text ?? ''));
    assert.ok(failures.length >= 1, 'a reply names failed hosts while the batch runs');
    assert.deepEqual(
      replies.map((m) => m.ts).sort(),
      [...canary, ...failures, end].map((m) => m.ts).sort(),
      'no other reply: none per host',
    );
    // Grouped by error, each failed host named once (the end names those no earlier reply did).
    const named = [...failures, end].flatMap(namedHosts);
    assert.deepEqual([...named].sort(), [...FAILING].sort());
    const grouped = [...failures, end].map(textOf).join('\n');
    assert.match(grouped, /\*\d+ hosts?\*: exit code 3/);
    assert.match(grouped, /\*\d+ hosts?\*: exit code 7/);
    for (let i = 1; i < failures.length; i++) {
      const at = (m: FakeMessage) => fake.calls.find((c) => (c.body as { ts?: string }).ts === m.ts)?.at ?? 0;
      assert.ok(at(failures[i]!) - at(failures[i - 1]!) >= 9_500, 'at most one failure reply per 10 s');
    }
    assert.match(end.text ?? '', /FAILED in .*: 190 of 200 hosts succeeded, 10 failed/);
    assert.equal(end.reply_broadcast, true, 'a failed batch’s end is broadcast');

    // Slack calls for this batch: fewer than one a second of its run, plus a few.
    const mine = fake.calls.slice(firstCall).filter((c) => c.method.startsWith('chat.'));
    const runSeconds = (Date.parse(task.finishTime ?? '') - Date.parse(task.startTime)) / 1000;
    assert.ok(Number.isFinite(runSeconds));
    assert.ok(
      mine.length <= Math.ceil(runSeconds) + 6,
      `${mine.length} Slack calls in a run of ${runSeconds} s: ${mine.map((c) => c.method).join(', ')}`,
    );
  });

  it('a notifier restarted in the middle of a batch posts no reply twice, and a rate limit loses none', async () => {
    // The last host holds the batch open while the notifier is away.
    runner.held.add(FIRST_ID + HOSTS - 1);
    const { taskId, parent } = await startBatch();
    await waitFor('failures named', () => thread(parent).find((m) => /hosts? failed$/.test(m.text ?? '')), 20_000);
    await notifier.stop();
    const during = thread(parent).length;
    await sleep(500);
    notifier = await stack.startService('notifier');
    // Slack's rate limit on the new notifier's first post and update: taken up again after Retry-After.
    const limitedFrom = fake.calls.length;
    fake.rateLimit('chat.postMessage', { calls: 1, retryAfter: 1 });
    fake.rateLimit('chat.update', { calls: 1, retryAfter: 1 });
    runner.release();
    const task = await ended(taskId);
    assert.equal(task.status, 'FAILED');
    const end = await waitFor('the end reply', () => endReply(parent), 20_000);
    await finalParent(parent);
    await sleep(2500);

    const replies = thread(parent);
    assert.ok(replies.length >= during);
    assert.equal(replies.filter((m) => /Canary/.test(m.text ?? '')).length, 1, 'the canary once');
    assert.equal(replies.filter((m) => /of \d+ hosts succeeded/.test(m.text ?? '')).length, 1, 'the end once');
    const named = replies.flatMap(namedHosts);
    assert.deepEqual([...named].sort(), [...FAILING].sort(), 'each failed host named once');
    assert.match(end.text ?? '', /190 of 200 hosts succeeded, 10 failed/);
    assert.equal(fake.calls.slice(limitedFrom).filter((c) => c.status === 429).length, 2, 'both were rate limited');
  });
});
