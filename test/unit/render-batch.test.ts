/**
 * A batch's Slack messages (SPEC §10): counts, a progress bar, the time left
 * and the first 20 failed hosts, within Slack's limits whatever the size;
 * failures grouped by error; text from hosts escaped.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type BatchView,
  type FailedHost,
  groupFailures,
  progressBar,
  renderBatchEnd,
  renderBatchParent,
  renderCanaryReply,
  renderFailureReply,
  timeLeftMs,
} from '../../src/slack/render-batch.js';
import { LIMITS, textLength } from '../../src/slack/render-blocks.js';

const T0 = Date.parse('2026-12-03T10:00:00Z');
const failedHosts = (
  n: number,
  error: (i: number) => string = (i) =>
    i % 3 === 0 ? 'exit code 1: agentctl: not found' : 'host unreachable: connect ETIMEDOUT',
) => Array.from({ length: n }, (_, i): FailedHost => ({ hostId: 1000 + i, name: `ob-${1000 + i}`, error: error(i) }));

function view(over: Partial<BatchView> = {}): BatchView {
  return {
    taskId: 42,
    name: 'Batch restart OCP agent',
    status: 'RUNNING',
    requester: '<@U1>',
    startedAt: T0,
    hosts: 5000,
    counts: { successful: 2000, failed: 1234, running: 50, pending: 1716 },
    failed: failedHosts(1234),
    ...over,
  };
}
const all = (r: { blocks: unknown[] }) => JSON.stringify(r.blocks);

describe('a batch parent', () => {
  test('5,000 hosts: counts, bar, time left and the first 20 failures, within Slack limits', () => {
    const r = renderBatchParent(view(), T0 + 60_000);
    const text = all(r);
    assert.ok(r.blocks.length <= LIMITS.blocks);
    assert.ok(textLength(r.blocks) <= LIMITS.messageText, `${textLength(r.blocks)} characters`);
    assert.match(
      text,
      /2,000 :white_check_mark: succeeded · 1,234 :x: failed · 50 :hourglass_flowing_sand: running · 1,716 :white_circle: waiting/,
    );
    assert.match(text, /3,234 of 5,000 hosts done/);
    assert.match(text, /▰{12}▱{8} 64%/);
    assert.match(text, /about 3[23] s left/);
    assert.equal((text.match(/:x: 10\d\d \(ob-/g) ?? []).length, 20, 'twenty failed hosts named');
    assert.match(text, /\+1,214 more/);
    assert.match(r.text, /5,000 hosts — RUNNING/);
  });

  test('a paused batch says so; an ended one says how long it took and no time left', () => {
    assert.match(renderBatchParent(view({ paused: true }), T0 + 1000).text, /— PAUSED/);
    const ended = renderBatchParent(
      view({
        status: 'FAILED',
        finishedAt: T0 + 125_000,
        counts: { successful: 4000, failed: 1000, running: 0, pending: 0 },
      }),
      T0 + 200_000,
    );
    assert.match(all(ended), /took 2 min 05 s/);
    assert.doesNotMatch(all(ended), /left/);
  });

  test('no failure: no failed section', () => {
    const r = renderBatchParent(
      view({ counts: { successful: 10, failed: 0, running: 5, pending: 0 }, hosts: 15, failed: [] }),
      T0 + 1,
    );
    assert.doesNotMatch(all(r), /Failed hosts/);
  });

  test('an error or a name from a host cannot mention anyone or forge a link', () => {
    const r = renderBatchParent(
      view({
        failed: [{ hostId: 1, name: 'x', error: '<!channel> <https://evil|click>' }],
        counts: { successful: 0, failed: 1, running: 0, pending: 0 },
        hosts: 1,
      }),
      T0,
    );
    assert.doesNotMatch(all(r), /<!channel>|<https:/);
    assert.match(all(r), /&lt;!channel&gt;/);
  });
});

describe('progress and time left', () => {
  test('the bar fills with the hosts at rest', () => {
    assert.equal(progressBar(0, 10), `${'▱'.repeat(20)} 0%`);
    assert.equal(progressBar(5, 10), `${'▰'.repeat(10)}${'▱'.repeat(10)} 50%`);
    assert.equal(progressBar(10, 10), `${'▰'.repeat(20)} 100%`);
  });
  test('time left at the pace so far; none before the first host ends or after the last', () => {
    const v = { hosts: 100, startedAt: 0, counts: { successful: 20, failed: 5, running: 10, pending: 65 } };
    assert.equal(timeLeftMs(v, 50_000), 150_000);
    assert.equal(
      timeLeftMs({ ...v, counts: { successful: 0, failed: 0, running: 10, pending: 90 } }, 50_000),
      undefined,
    );
    assert.equal(
      timeLeftMs({ ...v, counts: { successful: 100, failed: 0, running: 0, pending: 0 } }, 50_000),
      undefined,
    );
  });
});

describe('thread replies of a batch', () => {
  test('failures grouped by error, the biggest group first, within limits', () => {
    const failed = failedHosts(300);
    assert.deepEqual(
      groupFailures(failed).map((g) => [g.error, g.hosts.length]),
      [
        ['host unreachable: connect ETIMEDOUT', 200],
        ['exit code 1: agentctl: not found', 100],
      ],
    );
    const r = renderFailureReply(failed);
    assert.match(r.text, /300 hosts failed/);
    assert.match(all(r), /\*200 hosts\*: host unreachable: connect ETIMEDOUT/);
    assert.match(all(r), /and 190 more/);
    assert.ok(textLength(r.blocks) <= LIMITS.messageText);
  });

  test('many distinct errors: ten groups shown, the rest counted', () => {
    const r = renderFailureReply(failedHosts(40, (i) => `error number ${i}`));
    assert.match(all(r), /\+30 other errors/);
  });

  test('the canary passed, or failed naming its hosts', () => {
    assert.match(
      renderCanaryReply({ canary: 2, failed: [], rest: 98 }).text,
      /Canary passed: 2 hosts succeeded; the other 98 start now/,
    );
    assert.match(
      renderCanaryReply({ canary: 2, failed: failedHosts(1), rest: 98 }).text,
      /Canary failed on 1000 \(ob-1000\): the other 98 hosts do not start \(Retry resumes them\)/,
    );
  });

  test('the end names, grouped, the failed hosts no earlier reply named, and counts those beyond', () => {
    const r = renderBatchEnd(
      view({ status: 'FAILED', finishedAt: T0 + 1000, counts: { successful: 0, failed: 5, running: 0, pending: 0 } }),
      { unnamed: failedHosts(3), more: 2 },
    );
    assert.match(all(r), /5 hosts failed since the last reply/);
    assert.match(all(r), /\*2 hosts\*: host unreachable: connect ETIMEDOUT/);
    assert.match(all(r), /1001 \(ob-1001\), 1002 \(ob-1002\)/);
    assert.match(all(r), /\+2 more failed hosts/);
    assert.equal(renderBatchEnd(view({ status: 'SUCCESSFUL' })).blocks.length, 1, 'nothing left: counts only');
  });

  test('a failed batch’s parent offers Retry, Skip (the first failed host’s step) and Rollback; a running one Pause (or Resume) and Cancel', () => {
    const failed = [{ hostId: 7, error: 'exit code 3', subtaskId: 70 }];
    const ended = renderBatchParent(
      view({ status: 'FAILED', failed, counts: { successful: 1, failed: 1, running: 0, pending: 0 }, hosts: 2 }),
      T0,
    );
    const actions = ended.blocks.find((b) => b.type === 'actions') as {
      elements: Array<{ action_id: string; value: string }>;
    };
    assert.deepEqual(
      actions.elements.map((e) => [e.action_id, JSON.parse(e.value)]),
      [
        ['task_retry', { taskId: 42 }],
        ['subtask_skip', { taskId: 42, subtaskId: 70 }],
        ['task_rollback', { taskId: 42 }],
      ],
    );
    const noRollback = renderBatchParent(view({ status: 'FAILED', failed, prohibitRollback: true }), T0);
    assert.doesNotMatch(all(noRollback), /task_rollback/);
    const controls = (v: Parameters<typeof view>[0]) =>
      (
        renderBatchParent(view(v), T0).blocks.find((b) => b.type === 'actions') as {
          elements: Array<{ action_id: string; value: string; confirm?: unknown }>;
        }
      ).elements.map((e) => [e.action_id, JSON.parse(e.value), 'confirm' in e]);
    assert.deepEqual(controls({}), [
      ['task_pause', { taskId: 42 }, false],
      ['task_cancel', { taskId: 42 }, true],
    ]);
    assert.deepEqual(controls({ paused: true }), [
      ['task_resume', { taskId: 42 }, false],
      ['task_cancel', { taskId: 42 }, true],
    ]);
    assert.match(all(renderBatchParent(view({ paused: true }), T0)), /PAUSED/);
  });

  test('with web.publicUrl, the parent links to the batch’s page; without it, no link', () => {
    assert.match(
      all(renderBatchParent(view({ publicUrl: 'http://127.0.0.1:8080' }), T0)),
      /<http:\/\/127\.0\.0\.1:8080\/ui\/tasks\/42\|View task>/,
    );
    assert.doesNotMatch(all(renderBatchParent(view(), T0)), /View task/);
  });

  test('the end in counts, naming the hosts never started', () => {
    const r = renderBatchEnd(
      view({
        status: 'FAILED',
        finishedAt: T0 + 61_000,
        counts: { successful: 90, failed: 6, running: 0, pending: 4 },
        hosts: 100,
      }),
    );
    assert.match(
      r.text,
      /FAILED in 1 min 01 s: 90 of 100 hosts succeeded, 6 failed; 4 never started \(Retry resumes them\)/,
    );
  });
});
