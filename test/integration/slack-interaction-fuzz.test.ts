/**
 * Property-based fuzzing of Slack interactions (button clicks) against the real stack, signed as
 * Slack signs them: well-formed clicks on every button with any value, clicks with fields
 * missing or of the wrong type, and bodies that are no interaction at all. SPEC §4: a click
 * needs TASK_MANAGER (a batch confirmation HOST_MANAGER), checked like a command — a user
 * without it gets an ephemeral refusal naming the role; a manager's click on a task that cannot
 * take it gets an ephemeral reason; nothing is ever answered with a 5xx, and nothing is stored.
 *
 * Each run sends a batch of interactions at once: Bolt answers one no listener takes only after
 * its 3 s acknowledgement window, so one at a time would be slow.
 * Reproduce a failure with FUZZ_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { ACTIONS } from '../../src/slack/render-blocks.js';
import type { FakeSlack } from '../helpers/fake-slack.js';
import { rawHttp } from '../helpers/raw-http.js';
import { clearFaults, setFault } from '../helpers/sim-agent.js';
import { blockActionPayload, postToSlackEndpoint, slashCommandBody } from '../helpers/slack-sign.js';
import { SLACK_CHANNEL, SLACK_USERS, startSlackStack } from '../helpers/slack-stack.js';
import { buttonValue, SIGNING_SECRET } from '../helpers/slack-user.js';
import { basicAuth, type Stack, waitFor, waitForTask } from '../helpers/stack.js';
import { type StoreSnapshot, storeSnapshot } from '../helpers/store-snapshot.js';

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** Runs (× FUZZ_SCALE) of BATCH interactions each. */
const RUNS = 5;
const BATCH = { minLength: 16, maxLength: 24 };

const CHANNEL = SLACK_CHANNEL;
const USERS = SLACK_USERS;
const TASK_BUTTONS = [ACTIONS.retry, ACTIONS.skip, ACTIONS.rollback, ACTIONS.cancel];

interface Click {
  kind: 'click' | 'mangled' | 'garbage';
  user?: string;
  actionId?: string;
  /** The role the click needs, when it is a well-formed click on one of our buttons. */
  needs?: 'TASK_MANAGER' | 'HOST_MANAGER' | 'none';
  /** Names the failed task or the pending batch (a manager's click there would really act). */
  live?: boolean;
  body: string;
  contentType?: string;
  responseUrl?: string;
}

describe('Slack interaction fuzzing: any click or payload is answered below 500 and stores nothing', () => {
  let fake: FakeSlack;
  let stack: Stack;
  let port: number;
  let eventsUrl: string;
  let okTask: number;
  let failedTask: number;
  let failedSubtask: number;
  let batchValue: string;
  let before_: StoreSnapshot;

  before(async () => {
    process.env.TEST_LOG_LEVEL ??= 'error';
    ({ fake, stack, port, eventsUrl } = await startSlackStack({ hosts: 3 }));

    // tasks to click on: one SUCCESSFUL, one FAILED (its start fails); and a batch awaiting confirmation
    const restart = async (hostId: number) => {
      const a = await rawHttp(port, 'POST', `/compute/hosts/${hostId}/agent/restart`, {
        authorization: basicAuth('operator'),
      });
      assert.equal(a.status, 200, a.text);
      return (JSON.parse(a.text) as { data: { id: number } }).data.id;
    };
    okTask = await restart(101);
    setFault(stack.sshd.hosts[1]!.agentHome, 'start', 'fail');
    failedTask = await restart(102);
    assert.equal((await waitForTask(stack.nc, okTask, undefined, 60_000)).status, 'SUCCESSFUL');
    const failed = await waitForTask(stack.nc, failedTask, undefined, 60_000);
    assert.equal(failed.status, 'FAILED');
    failedSubtask = failed.subtasks.find((s) => s.status === 'FAILED')!.id;
    clearFaults(stack.sshd.hosts[1]!.agentHome);

    const responseUrl = fake.responseUrl();
    const cmd = slashCommandBody({
      command: '/ocp-agent',
      text: 'restart 101,103 batch for the fuzz',
      user_id: USERS.manager,
      channel_id: CHANNEL,
      trigger_id: `${Date.now()}.batch`,
      response_url: responseUrl,
    });
    assert.equal((await postToSlackEndpoint(eventsUrl, SIGNING_SECRET, cmd)).status, 200);
    const confirm = await waitFor('the batch confirmation', () => fake.responses.find((r) => r.url === responseUrl));
    batchValue = buttonValue(confirm.body as { blocks?: unknown[] }, ACTIONS.confirmBatch) as string;
    assert.ok(batchValue, 'a Confirm button');

    // the ended tasks' follow-up (work items acknowledged, host locks freed) is over before the snapshot
    before_ = await waitFor(
      'the store to settle',
      async () => {
        const a = await storeSnapshot(stack.nc);
        await new Promise((r) => setTimeout(r, 500));
        const b = await storeSnapshot(stack.nc);
        return a.streams.OCP_WORK?.messages === 0 && JSON.stringify(a) === JSON.stringify(b) ? b : undefined;
      },
      30_000,
    );
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
  });

  function clickArb(): fc.Arbitrary<Click> {
    const user = fc.constantFrom<string>(USERS.nobody, USERS.viewer, USERS.manager);
    const id = fc.oneof(
      fc.constantFrom(okTask, failedTask, failedSubtask, 999_999, 0, -1, 1.5, 2 ** 53),
      fc.constantFrom('1', null, true, [], {}, '$(id)'),
    );
    const value = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .record({ taskId: id, subtaskId: fc.option(id, { nil: undefined }) }, { requiredKeys: ['taskId'] })
          .map((v) => JSON.stringify(v)),
      },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          batchValue,
          JSON.stringify({ batchId: randomUUID() }),
          '{"batchId":"../../x"}',
          '{"batchId":1}',
        ),
      },
      {
        weight: 2,
        arbitrary: fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.json({ maxDepth: 2 }),
          fc.constantFrom('', '{', 'null', '[]', 'x'.repeat(5000), '{"__proto__":{"taskId":1}}'),
        ),
      },
    );
    const actionId = fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom<string>(...Object.values(ACTIONS)) },
      { weight: 1, arbitrary: fc.constantFrom('unknown_action', '', 'task_retry ', 'TASK_RETRY') },
    );
    const click = fc
      .record({ user, actionId, value, ephemeral: fc.boolean() })
      .map(({ user, actionId, value, ephemeral }) => {
        const responseUrl = fake.responseUrl();
        const payload = blockActionPayload({
          user_id: user,
          channel_id: CHANNEL,
          action_id: actionId,
          value,
          response_url: responseUrl,
          trigger_id: `${Date.now()}.${randomUUID().slice(0, 8)}`,
          ...(ephemeral ? {} : { message_ts: '1700000000.000100' }),
        });
        const known = (Object.values(ACTIONS) as string[]).includes(actionId);
        const needs = !known
          ? undefined
          : actionId === ACTIONS.cancelBatch || actionId === ACTIONS.confirmBatch
            ? ('HOST_MANAGER' as const)
            : ('TASK_MANAGER' as const);
        const live =
          ((actionId === ACTIONS.confirmBatch || actionId === ACTIONS.cancelBatch) && value === batchValue) ||
          (TASK_BUTTONS.includes(actionId as (typeof TASK_BUTTONS)[number]) && value.includes(String(failedTask)));
        return {
          kind: 'click' as const,
          user,
          actionId,
          ...(needs ? { needs } : {}),
          live,
          body: new URLSearchParams({ payload: JSON.stringify(payload) }).toString(),
          responseUrl,
        };
      });
    /** A click with fields taken away or of the wrong type. */
    const mangled = fc
      .record({
        user,
        actionId,
        value,
        drop: fc.subarray([
          'user',
          'actions',
          'container',
          'channel',
          'team',
          'response_url',
          'trigger_id',
          'type',
          'api_app_id',
        ]),
        wrong: fc.dictionary(
          fc.constantFrom(
            'user',
            'actions',
            'container',
            'channel',
            'team',
            'response_url',
            'trigger_id',
            'type',
            'message',
          ),
          fc.constantFrom<unknown>(null, 'x', 1, [], {}, [{}], { id: 123 }, 'block_actions', 'http://127.0.0.1:1/x'),
          { maxKeys: 2 },
        ),
      })
      .filter(({ drop, wrong }) => drop.length > 0 || Object.keys(wrong).length > 0)
      .map(({ user, actionId, value, drop, wrong }) => {
        const p: Record<string, unknown> = blockActionPayload({
          user_id: user,
          channel_id: CHANNEL,
          action_id: actionId,
          value,
          response_url: fake.responseUrl(),
          trigger_id: `${Date.now()}.${randomUUID().slice(0, 8)}`,
        });
        for (const k of drop) delete p[k];
        Object.assign(p, wrong);
        const live = value === batchValue || value.includes(String(failedTask));
        return {
          kind: 'mangled' as const,
          user,
          actionId,
          live,
          body: new URLSearchParams({ payload: JSON.stringify(p) }).toString(),
        };
      });
    /** Bodies that are no interaction at all. */
    const garbage = fc
      .oneof(
        fc.string({ maxLength: 200 }).map((s) => ({ body: new URLSearchParams({ payload: s }).toString() })),
        fc.json({ maxDepth: 3 }).map((s) => ({ body: new URLSearchParams({ payload: s }).toString() })),
        fc.string({ maxLength: 200 }).map((s) => ({ body: s })),
        fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 20 }), { maxKeys: 4 }).map((d) => ({
          body: new URLSearchParams(d).toString(),
        })),
        fc.json({ maxDepth: 3 }).map((s) => ({ body: s, contentType: 'application/json' })),
        fc.constantFrom(
          { body: 'ssl_check=1' },
          { body: 'type=url_verification&challenge=abc' },
          { body: '{"type":"url_verification","challenge":"<script>"}', contentType: 'application/json' },
          {
            body: '{"type":"event_callback","event":{"type":"app_mention","text":"restart 101"}}',
            contentType: 'application/json',
          },
          { body: 'payload=%7B%22type%22%3A%22view_submission%22%7D' },
          { body: 'payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A%5B%5D%7D' },
          { body: 'payload=%E0%A4%A' },
          { body: 'payload=' },
          { body: '' },
          { body: 'command=%2Focp-agent' },
        ),
      )
      .map((g) => ({ kind: 'garbage' as const, live: false, ...g }));
    // a manager's click that names the failed task or the pending batch would really act: not ours to send
    const any: fc.Arbitrary<Click> = fc.oneof(
      { weight: 4, arbitrary: click },
      { weight: 2, arbitrary: mangled },
      { weight: 1, arbitrary: garbage },
    );
    return any.filter((c) => !(c.live && c.user === USERS.manager));
  }

  it('answers every interaction below 500; a click without the role is refused naming it', async (t: TestContext) => {
    const tally = new Map<string, number>();
    const count = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
    const details = await fc.check(
      fc.asyncProperty(fc.array(clickArb(), BATCH), async (clicks) => {
        const answers = await Promise.all(
          clicks.map((c) =>
            postToSlackEndpoint(eventsUrl, SIGNING_SECRET, c.body, c.contentType ? { contentType: c.contentType } : {}),
          ),
        );
        for (const [i, c] of clicks.entries()) {
          const a = answers[i]!;
          const what = `${c.kind} ${c.user ?? ''} ${c.actionId ?? ''} ${c.body.slice(0, 400)}`;
          assert.ok(a.status < 500, `${what}: answered HTTP ${a.status} ${a.text.slice(0, 200)}`);
          count(`${c.kind} ${a.status}`);
          if (c.kind !== 'click' || c.needs === undefined) continue;
          assert.equal(a.status, 200, `${what}: acknowledged`);
          const holds = c.user === USERS.manager;
          if (c.needs === 'none' || holds) {
            // the manager: an ephemeral reason (or the click's own effect); none for a click that changed nothing silently
            const r = fake.responses.find((x) => x.url === c.responseUrl);
            if (r && r.body.response_type !== undefined) assert.equal(r.body.response_type, 'ephemeral', what);
            continue;
          }
          const r = await waitFor(
            `${what}: the refusal`,
            () => fake.responses.find((x) => x.url === c.responseUrl),
            30_000,
          );
          assert.equal(r.body.response_type, 'ephemeral', `${what}: ephemeral`);
          assert.match(String(r.body.text), new RegExp(c.needs), `${what}: names ${c.needs}: ${r.body.text}`);
          count(`refused ${c.needs}`);
        }
      }),
      {
        numRuns: Math.max(1, Math.round(RUNS * SCALE)),
        endOnFailure: true,
        ...(SEED === undefined ? {} : { seed: SEED }),
      },
    );
    t.diagnostic(
      `${details.numRuns} runs, seed ${details.seed}; ${[...tally]
        .sort()
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ')}`,
    );
    if (details.failed) assert.fail((await fc.asyncDefaultReportMessage(details)) ?? 'property failed');
  });

  it('stored nothing: tasks, events, locks, requests and the pending batch are exactly as before', async () => {
    assert.deepEqual(await storeSnapshot(stack.nc), before_);
  });

  it('keeps serving: a restart from Slack still runs', async () => {
    const responseUrl = fake.responseUrl();
    const trigger = `${Date.now()}.after`;
    const sub = stack.nc.subscribe(`ocp.events.request.slack-${trigger.replace('.', '_')}`, {
      max: 1,
      timeout: 15_000,
    });
    const body = slashCommandBody({
      command: '/ocp-agent',
      text: 'restart 103 after the fuzz',
      user_id: USERS.manager,
      channel_id: CHANNEL,
      trigger_id: trigger,
      response_url: responseUrl,
    });
    assert.equal((await postToSlackEndpoint(eventsUrl, SIGNING_SECRET, body)).status, 200);
    let taskId = 0;
    for await (const m of sub) taskId = m.json<{ taskId: number }>().taskId;
    assert.equal((await waitForTask(stack.nc, taskId, undefined, 60_000)).status, 'SUCCESSFUL');
  });
});
