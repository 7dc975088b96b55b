/**
 * Rolling and safe batches (SPEC §10): `canary`, `maxFailures` (a count or a
 * percentage), `maxParallel`; pause, resume and cancel of a running batch
 * over HTTP and NATS; Retry resuming the hosts never started. Through the
 * control plane (HTTP, NATS, the executor, real nats-server) with a step
 * runner that never touches SSH, whose steps end at once unless held, and
 * fail on the hosts told to. Every assertion reads the chains' states as the
 * API shows them, never timings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StringCodec } from 'nats';
import { pino } from 'pino';
import type { TaskEvent } from '../../src/contracts/events.js';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { StepResult, StepRunner, StepSpec } from '../../src/executor/ports.js';
import { startSweeper } from '../../src/executor/sweeper.js';
import type { Service } from '../../src/service.js';
import type { FakeSlack } from '../helpers/fake-slack.js';
import { apiClient } from '../helpers/http.js';
import { taskEvents } from '../helpers/requests.js';
import { SLACK_CHANNEL, SLACK_USERS, startFakeSlackAndStack } from '../helpers/slack-stack.js';
import { buttonValue, slackUser, taskIdOf } from '../helpers/slack-user.js';
import { readTask, type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

const OK: StepResult = { end: 'exited', exitCode: 0, output: '', truncated: false };
const FAIL: StepResult = { end: 'exited', exitCode: 1, output: 'agent refused\n', truncated: false };
const KILLED: StepResult = { end: 'exited', exitCode: 143, output: '', truncated: false };

/**
 * Steps end at once; a host in `failing` fails its first step; a host in
 * `held` waits until `release(host)` (or a cancel of its run). `started`
 * lists hosts in the order their chain's first step began.
 */
function controlledRunner() {
  const started: number[] = [];
  const failing = new Set<number>();
  const held = new Set<number>();
  const waiting = new Map<number, Array<(r: StepResult) => void>>();
  const runner: StepRunner = {
    async run(spec: StepSpec) {
      const host = spec.target.hostId;
      if (!started.includes(host)) started.push(host);
      if (held.has(host)) {
        const r = await new Promise<StepResult>((resolve) => {
          waiting.set(host, [...(waiting.get(host) ?? []), resolve]);
        });
        if (r !== OK) return r;
      }
      return failing.has(host) ? FAIL : OK;
    },
    async exec() {
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    async cancel(target) {
      held.delete(target.hostId);
      for (const w of waiting.get(target.hostId) ?? []) w(KILLED);
      waiting.delete(target.hostId);
    },
    async close() {},
  };
  return {
    runner,
    started,
    failing,
    held,
    /** Whether a step of `host` waits to be released. */
    waits: (host: number) => (waiting.get(host)?.length ?? 0) > 0,
    release(host: number) {
      held.delete(host);
      for (const w of waiting.get(host) ?? []) w(OK);
      waiting.delete(host);
    },
  };
}

const HOSTS = 80;
/** Each test takes hosts of its own: `n` ids from 2001 + from. */
const hostIds = (from: number, n: number) => Array.from({ length: n }, (_, k) => 2001 + from + k);

function inventoryOf(n: number) {
  return (file: Record<string, unknown>) => ({
    ...file,
    hosts: Array.from({ length: n }, (_, k) => ({ id: 2001 + k, name: `roll-${k + 1}`, address: '127.0.0.1' })),
  });
}

/** Per chain (parallelIdx), the statuses of its subtasks. */
function chainStates(t: OcpTask): string[][] {
  const out: string[][] = [];
  for (const s of t.subtasks) {
    out[s.parallelIdx] ??= [];
    out[s.parallelIdx]?.push(s.status);
  }
  return out;
}
const untouched = (chain: string[] | undefined) => chain?.every((s) => s === 'PENDING') === true;
const succeeded = (chain: string[] | undefined) => chain?.every((s) => s === 'SUCCESSFUL') === true;

describe('rolling and safe batches', () => {
  let stack: Stack;
  let svc: Service;
  let api: ReturnType<typeof apiClient>;
  const ctl = controlledRunner();

  before(async () => {
    stack = await startStack({ hosts: 1, editConfig: inventoryOf(HOSTS), maxParallel: 20, executorConcurrency: 16 });
    svc = await stack.startService(undefined, ctl.runner);
    api = apiClient(svc.httpPort as number);
  });
  after(async () => stack?.stop());

  const get = async (id: number) => {
    const r = await api<OcpTask>('GET', `/api/v2/tasks/instances/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data;
  };
  const until = (id: number, done: (t: OcpTask) => boolean, what: string) =>
    waitFor(what, async () => {
      const t = await get(id);
      return done(t) ? t : undefined;
    });
  const ended = (id: number) => until(id, (t) => t.status !== 'RUNNING', `task ${id} ends`);
  const batch = async (body: Record<string, unknown>) => {
    const r = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', { body });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data;
  };
  /** Both chains' followUps done: their hosts are free (each chain frees its host after its progress). */
  const freed = (hosts: number[]) =>
    waitFor(`hosts ${hosts} freed`, async () => {
      for (const h of hosts) if ((await svc.deps.locks.holder(h)) !== undefined) return undefined;
      return true;
    });

  it('runs the canary first and alone, then the rest once every canary succeeded', async () => {
    const ids = hostIds(0, 6);
    for (const h of ids.slice(0, 2)) ctl.held.add(h);
    const t = await batch({ hostIds: ids, canary: 2, maxParallel: 3 });
    assert.equal(t.context.stringMap.canary, '2');
    assert.equal(t.context.stringMap.maxParallel, '3');
    await waitFor('both canaries run', () => ctl.waits(ids[0] as number) && ctl.waits(ids[1] as number));
    const during = chainStates(await get(t.id));
    assert.ok(during.slice(2).every(untouched), `only the canary started: ${JSON.stringify(during)}`);
    ctl.release(ids[0] as number);
    await until(t.id, (x) => succeeded(chainStates(x)[0]), 'canary 0 succeeds');
    await freed([ids[0] as number]);
    assert.ok(
      chainStates(await get(t.id))
        .slice(2)
        .every(untouched),
      'one canary left: the rest wait',
    );
    ctl.release(ids[1] as number);
    const done = await ended(t.id);
    assert.equal(done.status, 'SUCCESSFUL');
    const order = ctl.started.filter((h) => ids.includes(h));
    assert.deepEqual(new Set(order.slice(0, 2)), new Set(ids.slice(0, 2)), 'the canaries began first');
  });

  it('ends FAILED on a canary failure, the rest never started and PENDING', async () => {
    const ids = hostIds(10, 6);
    ctl.failing.add(ids[1] as number);
    const t = await batch({ hostIds: ids, canary: 2 });
    const done = await ended(t.id);
    assert.equal(done.status, 'FAILED');
    const chains = chainStates(done);
    assert.ok(succeeded(chains[0]));
    assert.equal(chains[1]?.[0], 'FAILED');
    assert.ok(chains.slice(2).every(untouched), JSON.stringify(chains));
    assert.ok(
      ids.slice(2).every((h) => !ctl.started.includes(h)),
      'no host past the canary ran',
    );
    // The hosts never started are free for other tasks.
    await freed(ids);
    ctl.failing.delete(ids[1] as number);
    // Retry runs the failed canary again, then the rest.
    const retried = await api<OcpTask>('POST', `/api/v2/tasks/instances/${t.id}/retry`);
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    const again = await ended(t.id);
    assert.equal(again.status, 'SUCCESSFUL');
    assert.ok(chainStates(again).every(succeeded));
  });

  it('stops past maxFailures (a count), and Retry resumes the hosts never started', async () => {
    const ids = hostIds(20, 8);
    ctl.failing.add(ids[0] as number);
    ctl.failing.add(ids[1] as number);
    const t = await batch({ hostIds: ids, maxParallel: 1, maxFailures: 1 });
    assert.equal(t.context.stringMap.maxFailures, '1');
    const done = await ended(t.id);
    assert.equal(done.status, 'FAILED');
    const chains = chainStates(done);
    assert.equal(chains[0]?.[0], 'FAILED');
    assert.equal(chains[1]?.[0], 'FAILED');
    assert.ok(chains.slice(2).every(untouched), `past 1 failure no host starts: ${JSON.stringify(chains)}`);

    ctl.failing.clear();
    const retried = await api<OcpTask>('POST', `/api/v2/tasks/instances/${t.id}/retry`);
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    const again = await ended(t.id);
    assert.equal(again.status, 'SUCCESSFUL');
    assert.ok(chainStates(again).every(succeeded));
    assert.ok(
      ids.every((h) => ctl.started.includes(h)),
      'every host ran',
    );
  });

  it('stops past maxFailures as a percentage (10% of 10 hosts: 1)', async () => {
    const ids = hostIds(30, 10);
    ctl.failing.add(ids[0] as number);
    ctl.failing.add(ids[1] as number);
    const t = await batch({ hostIds: ids, maxParallel: 1, maxFailures: '10%' });
    assert.equal(t.context.stringMap.maxFailures, '10%');
    const done = await ended(t.id);
    assert.equal(done.status, 'FAILED');
    const chains = chainStates(done);
    assert.ok(chains.slice(2).every(untouched), JSON.stringify(chains));
    ctl.failing.clear();
    // Within the limit it runs on: one failure of 10 at 10% ends FAILED with every host run.
    const other = hostIds(40, 10);
    ctl.failing.add(other[0] as number);
    const u = await batch({ hostIds: other, maxParallel: 2, maxFailures: '10%' });
    const end = await ended(u.id);
    assert.equal(end.status, 'FAILED');
    assert.ok(chainStates(end).slice(1).every(succeeded), 'every other host ran');
    ctl.failing.clear();
  });

  it('refuses bad options with 400 / 10001 naming the field', async () => {
    const ids = hostIds(50, 3);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ canary: 4 }, 'canary'],
      [{ canary: -1 }, 'canary'],
      [{ maxFailures: '120%' }, 'maxFailures'],
      [{ maxFailures: 'some' }, 'maxFailures'],
      [{ maxParallel: 0 }, 'maxParallel'],
    ];
    for (const [extra, field] of cases) {
      const r = await api('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: ids, ...extra } });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 10001);
      assert.equal(r.body.error.target, field, r.body.error.message);
      assert.match(r.body.error.message, new RegExp(field));
    }
    // The generic operation route takes them too.
    const r = await api('POST', '/api/v2/ocp-chatops/operations/restart', { body: { hostIds: ids, canary: 9 } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.target, 'canary');
    assert.match(r.body.error.message, /more than the batch's 3 hosts/);
    for (const h of ids) assert.equal(await svc.deps.locks.holder(h), undefined, 'nothing taken');
  });

  it('pauses a batch (what runs finishes, no chain starts) and resumes it, over HTTP', async () => {
    const ids = hostIds(55, 6);
    for (const h of ids.slice(0, 2)) ctl.held.add(h);
    const t = await batch({ hostIds: ids, maxParallel: 2 });
    await waitFor('two chains run', () => ctl.waits(ids[0] as number) && ctl.waits(ids[1] as number));
    const paused = await api<OcpTask>('POST', `/api/v2/tasks/instances/${t.id}/pause`);
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.successful, true);
    assert.equal(paused.body.data.status, 'RUNNING');
    assert.equal(paused.body.data.context.stringMap.paused, 'true');
    ctl.release(ids[0] as number);
    ctl.release(ids[1] as number);
    await until(t.id, (x) => succeeded(chainStates(x)[0]) && succeeded(chainStates(x)[1]), 'running chains finish');
    await freed(ids.slice(0, 2));
    const held = await get(t.id);
    assert.equal(held.status, 'RUNNING');
    assert.equal(held.context.stringMap.paused, 'true');
    assert.ok(chainStates(held).slice(2).every(untouched), `paused: ${JSON.stringify(chainStates(held))}`);
    // The sweeper's "none stays RUNNING forever" does not end a paused batch.
    const sweeper = startSweeper(svc.deps, {
      everyMs: 3_600_000,
      logger: pino({ level: 'silent' }),
      keptMs: 3_600_000,
    });
    await sweeper.sweep();
    sweeper.stop();
    assert.equal((await get(t.id)).status, 'RUNNING');

    const resumed = await api<OcpTask>('POST', `/api/v2/tasks/instances/${t.id}/resume`);
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    assert.equal(resumed.body.data.context.stringMap.paused, undefined);
    const done = await ended(t.id);
    assert.equal(done.status, 'SUCCESSFUL');
    const events = (await taskEvents(stack.nc, t.id)).filter((e) => e.chain === undefined).map((e) => e.type);
    assert.deepEqual(events, ['task.running', 'task.paused', 'task.resumed', 'task.successful']);
  });

  it('pauses and resumes over NATS with the same envelopes', async () => {
    const ids = hostIds(62, 4);
    ctl.held.add(ids[0] as number);
    const t = await batch({ hostIds: ids, maxParallel: 1 });
    await waitFor('the first chain runs', () => ctl.waits(ids[0] as number));
    const sc = StringCodec();
    const call = async (subject: string, payload: unknown) =>
      JSON.parse(sc.decode((await stack.nc.request(subject, sc.encode(JSON.stringify(payload)))).data));
    const p = await call('ocp.api.task.pause', { taskId: t.id });
    assert.equal(p.successful, true, JSON.stringify(p));
    assert.equal(p.data.context.stringMap.paused, 'true');
    ctl.release(ids[0] as number);
    await until(t.id, (x) => succeeded(chainStates(x)[0]), 'the first chain finishes');
    await freed([ids[0] as number]);
    assert.ok(
      chainStates(await get(t.id))
        .slice(1)
        .every(untouched),
    );
    const r = await call('ocp.api.task.resume', { taskId: String(t.id) });
    assert.equal(r.successful, true, JSON.stringify(r));
    assert.equal((await ended(t.id)).status, 'SUCCESSFUL');
    // A task that is not a batch, or has ended: 409 / 20003; none at all: 404 / 20000.
    const ended409 = await call('ocp.api.task.pause', { taskId: t.id });
    assert.equal(ended409.status, 409);
    assert.equal(ended409.error.code, 20003);
    assert.match(ended409.error.message, /ended SUCCESSFUL; only a RUNNING batch can be paused/);
    const none = await call('ocp.api.task.resume', { taskId: 999_999_999 });
    assert.equal(none.error.code, 20000);
  });

  it('refuses to pause what is not a running batch (409 / 20003), and a viewer (403)', async () => {
    const one = await api<OcpTask>('POST', `/compute/hosts/${hostIds(66, 1)[0]}/agent/restart`);
    assert.equal(one.status, 200);
    const r = await api('POST', `/api/v2/tasks/instances/${one.body.data.id}/pause`);
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 20003);
    assert.match(r.body.error.message, /not a batch/);
    const v = await api('POST', `/api/v2/tasks/instances/${one.body.data.id}/resume`, { user: 'viewer' });
    assert.equal(v.status, 403);
    assert.equal(v.body.error.code, 30014);
    const c = await api('POST', `/api/v2/tasks/instances/${one.body.data.id}/cancel`);
    assert.equal(c.status, 409);
    const missing = await api('POST', '/api/v2/tasks/instances/987654321/pause');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 20000);
  });

  it('answers two operators pausing and resuming at once, and keeps one state', async () => {
    const ids = hostIds(67, 5);
    ctl.held.add(ids[0] as number);
    const t = await batch({ hostIds: ids, maxParallel: 1 });
    await waitFor('the first chain runs', () => ctl.waits(ids[0] as number));
    // Two pauses at once: both answered with the batch paused, one task.paused event.
    const both = await Promise.all([1, 2].map(() => api<OcpTask>('POST', `/api/v2/tasks/instances/${t.id}/pause`)));
    for (const r of both) {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.data.context.stringMap.paused, 'true');
    }
    // Pauses and resumes racing: every one answered; head and progress agree afterwards.
    const racing = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        api<OcpTask>('POST', `/api/v2/tasks/instances/${t.id}/${i % 2 === 0 ? 'resume' : 'pause'}`),
      ),
    );
    for (const r of racing) assert.equal(r.status, 200, JSON.stringify(r.body));
    const shown = (await get(t.id)).context.stringMap.paused === 'true';
    const entry = await (await stack.js.views.kv('ocp_tasks')).get(`task.${t.id}.p`);
    const progress = entry?.json<{ paused?: boolean }>();
    assert.equal(progress?.paused === true, shown, 'the head shows what the progress holds');
    const events = (await taskEvents(stack.nc, t.id)).filter((e: TaskEvent) => e.chain === undefined);
    const notes = events.map((e) => e.type).filter((x) => x === 'task.paused' || x === 'task.resumed');
    assert.equal(notes[0], 'task.paused');
    assert.ok(
      notes.every((n, i) => i === 0 || n !== notes[i - 1]),
      `paused and resumed alternate: ${notes.join(', ')}`,
    );
    // Resumed for good, it ends.
    await api('POST', `/api/v2/tasks/instances/${t.id}/resume`);
    ctl.release(ids[0] as number);
    assert.equal((await ended(t.id)).status, 'SUCCESSFUL');
  });

  it('cancels a batch: steps that run are stopped, no new host starts, it ends FAILED', async () => {
    const ids = hostIds(72, 6);
    for (const h of ids.slice(0, 2)) ctl.held.add(h);
    const t = await batch({ hostIds: ids, maxParallel: 2 });
    await waitFor('two chains run', () => ctl.waits(ids[0] as number) && ctl.waits(ids[1] as number));
    const c = await api<OcpTask>('POST', `/api/v2/tasks/instances/${t.id}/cancel`);
    assert.equal(c.status, 200, JSON.stringify(c.body));
    const done = await ended(t.id);
    assert.equal(done.status, 'FAILED');
    const chains = chainStates(done);
    assert.equal(chains[0]?.[0], 'FAILED');
    assert.equal(chains[1]?.[0], 'FAILED');
    assert.ok(
      done.subtasks.filter((s) => s.parallelIdx < 2 && s.status === 'FAILED').every((s) => s.operation === 'CANCEL'),
    );
    assert.ok(chains.slice(2).every(untouched), JSON.stringify(chains));
    await freed(ids);
    // Retry runs it all.
    const retried = await api<OcpTask>('POST', `/api/v2/tasks/instances/${t.id}/retry`);
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.equal((await ended(t.id)).status, 'SUCCESSFUL');
  });
});

describe('rolling batches from Slack', () => {
  let fake: FakeSlack;
  let stack: Stack;
  let user: ReturnType<typeof slackUser>;
  const ctl = controlledRunner();

  before(async () => {
    ({ fake, stack } = await startFakeSlackAndStack({
      hosts: 1,
      managers: [SLACK_USERS.manager],
      viewers: [SLACK_USERS.viewer],
      options: { editConfig: inventoryOf(12), maxParallel: 2, executorConcurrency: 8 },
    }));
    const svc = await stack.startService(undefined, ctl.runner);
    user = slackUser(fake, `http://127.0.0.1:${svc.httpPort}/slack/events`);
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
  });

  const responsesTo = (url: string) => fake.responses.filter((r) => r.url === url).map((r) => r.body);
  const parents = () => fake.channel(SLACK_CHANNEL).filter((m) => !m.thread_ts);
  const read = async (id: number) => {
    const t = await readTask(stack.nc, id);
    assert.ok(t);
    return t.task;
  };

  it('refuses bad option tokens, naming the option', async () => {
    const cases: Array<[string, RegExp]> = [
      ['restart 2001,2002,2003 canary=4 after upgrade', /canary: 4 is more than the batch's 3 hosts/],
      ['restart 2001,2002 maxFailures=120% x', /maxFailures/],
      ['restart 2001,2002 maxParallel=0', /maxParallel/],
      ['restart 2001,2002 canary=two', /canary/],
      ['restart 2001,2002 canary=1 canary=1', /`canary` is given twice/],
    ];
    for (const [text, error] of cases) {
      const a = await user.command(text, { user: SLACK_USERS.manager, channel: SLACK_CHANNEL });
      assert.equal(a.status, 200);
      const said = () => `${a.text} ${JSON.stringify(responsesTo(a.responseUrl))}`;
      const answer = await waitFor(`the refusal of ${text}`, () => (error.test(said()) ? said() : undefined)).catch(
        () => said(),
      );
      assert.match(answer, error);
      assert.doesNotMatch(answer, /batch_confirm/, 'no confirmation offered');
    }
    const help = await user.command('help', { user: SLACK_USERS.manager, channel: SLACK_CHANNEL });
    const text = JSON.stringify(await waitFor('help', () => responsesTo(help.responseUrl)[0]));
    assert.match(text, /canary=&lt;n&gt;|canary=<n>/);
    assert.match(text, /maxFailures/);
  });

  it('takes canary and maxFailures tokens, and pauses and resumes from the parent’s buttons', async () => {
    const ids = hostIds(4, 6);
    for (const h of ids.slice(0, 2)) ctl.held.add(h);
    const a = await user.command(`restart ${ids.join(',')} canary=2 maxFailures=50% after upgrade`, {
      user: SLACK_USERS.manager,
      channel: SLACK_CHANNEL,
    });
    const confirm = await waitFor('the confirmation', () => responsesTo(a.responseUrl)[0]);
    assert.match(JSON.stringify(confirm), /canary=2/);
    const before = parents().length;
    await user.click(confirm as { blocks?: unknown[] }, 'batch_confirm', {
      user: SLACK_USERS.manager,
      channel: SLACK_CHANNEL,
    });
    const parent = await waitFor('the parent', () => parents()[before]);
    const taskId = taskIdOf(parent);
    const started = await read(taskId);
    assert.equal(started.context.stringMap.canary, '2');
    assert.equal(started.context.stringMap.maxFailures, '50%');
    assert.equal(started.context.stringMap.reason, 'after upgrade');
    await waitFor('the canary runs', () => ctl.waits(ids[0] as number) && ctl.waits(ids[1] as number));

    const withPause = await waitFor('a Pause button', () => {
      const p = parents().find((m) => m.ts === parent.ts);
      return p && buttonValue(p, 'task_pause') ? p : undefined;
    });
    assert.ok(buttonValue(withPause, 'task_cancel'), 'the batch has a Cancel button');
    await user.click(withPause, 'task_pause', { user: SLACK_USERS.manager, channel: SLACK_CHANNEL });
    await waitFor('paused', async () => ((await read(taskId)).context.stringMap.paused === 'true' ? true : undefined));
    ctl.release(ids[0] as number);
    ctl.release(ids[1] as number);
    await waitFor('the canary succeeds', async () => {
      const c = chainStates(await read(taskId));
      return succeeded(c[0]) && succeeded(c[1]) ? true : undefined;
    });
    const withResume = await waitFor('a Resume button', () => {
      const p = parents().find((m) => m.ts === parent.ts);
      return p && buttonValue(p, 'task_resume') ? p : undefined;
    });
    assert.ok(
      chainStates(await read(taskId))
        .slice(2)
        .every(untouched),
      'paused: nothing past the canary started',
    );
    // A viewer may not resume it.
    const refused = await user.click(withResume, 'task_resume', { user: SLACK_USERS.viewer, channel: SLACK_CHANNEL });
    assert.match(String((await waitFor('refusal', () => responsesTo(refused.responseUrl)[0])).text), /TASK_MANAGER/);
    await user.click(withResume, 'task_resume', { user: SLACK_USERS.manager, channel: SLACK_CHANNEL });
    const done = await waitForTask(stack.nc, taskId);
    assert.equal(done.status, 'SUCCESSFUL');
    assert.equal(done.context.stringMap.paused, undefined);
  });
});
