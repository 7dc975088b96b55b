/**
 * Block Kit rendering (src/slack/render-blocks.ts): what the parent message,
 * thread replies and ephemeral answers show, for tasks planned from the
 * built-in runbooks; and that every message stays valid Block Kit (≤ 50
 * blocks, mrkdwn ≤ 3000, button text ≤ 75, values ≤ 2000) for 1, 5 and 2000 hosts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KnownBlock } from '@slack/types';
import type { OcpSubtask, OcpTask, SubtaskStatus } from '../../src/contracts/ocp-task.js';
import { builtinRunbooks, RESTART } from '../../src/core/runbooks/builtin.js';
import type { Runbook } from '../../src/core/runbooks/runbook.js';
import { idsNeeded, planTask } from '../../src/core/task.js';
import { formatOcpTime } from '../../src/core/time.js';
import {
  ACTIONS,
  type ButtonValue,
  formatDuration,
  LIMITS,
  outputTail,
  type Rendered,
  renderAgentStatus,
  renderConfirm,
  renderFinalReply,
  renderParent,
  renderSubtaskReply,
  renderTaskList,
  renderTaskStatus,
  SELECTION_SHOWN,
  selectionSummary,
  textLength,
} from '../../src/slack/render-blocks.js';

const restart = builtinRunbooks.find((r) => r.name === RESTART) as Runbook;
const T0 = new Date('2021-09-03T06:17:06.000Z');
const at = (ms: number) => formatOcpTime(new Date(T0.getTime() + ms));
const after = (ms: number) => new Date(T0.getTime() + ms);

interface Planned {
  task: OcpTask;
  hostNames: Record<number, string>;
  hostOfSubtask: Record<number, number>;
}

/** A restart of hosts 101, 102, … (a batch when more than one), planned at T0. */
function plan(hostCount: number, over: { reason?: string; creator?: string } = {}): Planned {
  const hosts = Array.from({ length: hostCount }, (_, i) => ({ id: 101 + i, agentHome: '/home/admin/ocp_agent' }));
  const ids = Array.from({ length: idsNeeded(restart, hostCount) }, (_, i) => 30_000 + i);
  const { task, steps } = planTask({
    runbook: restart,
    ...(hostCount > 1 ? { name: 'Batch restart OCP agent' } : {}),
    hosts,
    ids,
    creator: over.creator ?? 'slack:U0123ABC',
    executor: '10.0.0.1',
    now: T0,
    ...(over.reason ? { reason: over.reason } : {}),
  });
  return {
    task,
    hostNames: Object.fromEntries(hosts.map((h) => [h.id, `sim-host-${h.id}`])),
    hostOfSubtask: Object.fromEntries(Object.entries(steps).map(([id, s]) => [Number(id), s.hostId])),
  };
}

type Change = Partial<Pick<OcpSubtask, 'status' | 'operation' | 'startTime' | 'finishTime' | 'runTime'>>;

/** The task with subtask i (in order) changed as given. */
function change(task: OcpTask, changes: Record<number, Change>, top: Partial<OcpTask> = {}): OcpTask {
  return { ...task, ...top, subtasks: task.subtasks.map((s, i) => ({ ...s, ...(changes[i] ?? {}) })) };
}

/** A step that ran from `start` ms to `end` ms after T0. */
const ran = (status: SubtaskStatus, start: number, end?: number): Change => ({
  status,
  startTime: at(start),
  ...(end !== undefined ? { finishTime: at(end) } : {}),
});

const sections = (r: Rendered) => r.blocks.flatMap((b) => (b.type === 'section' && b.text ? [b.text.text] : []));
const allText = (r: Rendered) => JSON.stringify(r.blocks);
const buttons = (r: Rendered) => r.blocks.flatMap((b) => (b.type === 'actions' ? b.elements : []));

/** Every limit of Slack's Block Kit that these messages could break. */
function assertValid(r: Rendered): void {
  assert.ok(r.blocks.length <= LIMITS.blocks, `${r.blocks.length} blocks`);
  assert.ok(textLength(r.blocks) <= LIMITS.messageText, `${textLength(r.blocks)} characters in all`);
  assert.ok(r.text.length > 0 && r.text.length <= 4000, 'fallback text');
  assert.deepEqual(JSON.parse(JSON.stringify(r.blocks)), r.blocks, 'plain JSON');
  const textOk = (t: { type: string; text: string }, max: number, what: string) => {
    assert.ok(t.type === 'mrkdwn' || t.type === 'plain_text', what);
    assert.ok(t.text.length > 0 && t.text.length <= max, `${what}: ${t.text.length} chars`);
  };
  for (const b of r.blocks as KnownBlock[]) {
    if (b.type === 'section') {
      assert.ok(b.text, 'section has text');
      textOk(b.text, LIMITS.sectionText, 'section');
    } else if (b.type === 'context') {
      assert.ok(b.elements.length >= 1 && b.elements.length <= LIMITS.contextElements, 'context elements');
      for (const e of b.elements) if ('text' in e) textOk(e, LIMITS.sectionText, 'context');
    } else if (b.type === 'actions') {
      assert.ok(b.elements.length >= 1 && b.elements.length <= 25, 'actions elements');
      const ids = b.elements.map((e) => ('action_id' in e ? e.action_id : undefined));
      assert.equal(new Set(ids).size, ids.length, 'action ids unique in a block');
      for (const e of b.elements) {
        assert.equal(e.type, 'button');
        if (e.type !== 'button') continue;
        textOk(e.text, LIMITS.buttonText, 'button');
        assert.ok((e.value ?? '').length <= LIMITS.actionValue, 'button value');
        if (e.confirm) {
          textOk(e.confirm.title ?? { type: 'plain_text', text: 'x' }, 100, 'confirm title');
          textOk(e.confirm.text, 300, 'confirm text');
          textOk(e.confirm.confirm ?? { type: 'plain_text', text: 'x' }, 30, 'confirm button');
          textOk(e.confirm.deny ?? { type: 'plain_text', text: 'x' }, 30, 'deny button');
        }
      }
    } else {
      assert.fail(`unexpected block type ${b.type}`);
    }
  }
}

describe('formatDuration', () => {
  const cases: Array<[number, string]> = [
    [0, '0.0 s'],
    [49, '0.0 s'],
    [400, '0.4 s'],
    [3000, '3.0 s'],
    [4_240, '4.2 s'],
    [9_949, '9.9 s'],
    [9_950, '10 s'],
    [12_000, '12 s'],
    [59_499, '59 s'],
    [59_500, '1 min 00 s'],
    [185_000, '3 min 05 s'],
    [3_599_499, '59 min 59 s'],
    [3_599_500, '1 h 00 min'],
    [3_720_000, '1 h 02 min'],
    [90_000_000, '25 h 00 min'],
    [-5, '0.0 s'],
    [Number.NaN, '0.0 s'],
  ];
  for (const [ms, out] of cases) test(`${ms} ms → ${out}`, () => assert.equal(formatDuration(ms), out));
});

describe('renderParent: one host', () => {
  test('title, who asked, why, and a line per subtask', () => {
    const { task, ...ctx } = plan(1, { reason: 'agent stuck' });
    const r = renderParent(task, { now: T0, ...ctx, requester: '<@U0123ABC>' });
    assert.equal(r.text, 'Restart OCP agent — host 101 (sim-host-101) — RUNNING');
    assertValid(r);
    const [title, ...lines] = sections(r);
    assert.equal(title, ':hourglass_flowing_sand: *Restart OCP agent — host 101 (sim-host-101) — RUNNING*');
    assert.match(allText(r), /asked by <@U0123ABC>/);
    assert.match(allText(r), /reason: agent stuck/);
    assert.match(allText(r), /Task \*30000\*/);
    assert.deepEqual(lines.join('\n').split('\n'), [
      ':large_blue_circle: Prepare restart OCP agent — READY',
      ':white_circle: Restart pos proxy — PENDING',
      ':white_circle: Stop all OCP agent processes — PENDING',
      ':white_circle: Start all OCP agent processes — PENDING',
      ':white_circle: Finish OCP agent operation — PENDING',
    ]);
  });

  test('links to the task’s web page when web.publicUrl is set, and not otherwise', () => {
    const { task, ...ctx } = plan(1);
    const linked = renderParent(task, { now: T0, ...ctx, publicUrl: 'https://ops.example.com' });
    assertValid(linked);
    assert.match(allText(linked), /<https:\/\/ops\.example\.com\/ui\/tasks\/30000\|View task>/);
    assert.doesNotMatch(allText(renderParent(task, { now: T0, ...ctx })), /View task/);
  });

  const emojis: Array<[Change, string]> = [
    [{ status: 'PENDING' }, ':white_circle: Prepare restart OCP agent — PENDING'],
    [{ status: 'READY' }, ':large_blue_circle: Prepare restart OCP agent — READY'],
    [ran('RUNNING', 0), ':hourglass_flowing_sand: Prepare restart OCP agent — RUNNING · 12 s'],
    [ran('CANCELING', 0), ':no_entry_sign: Prepare restart OCP agent — CANCELING · 12 s'],
    [ran('SUCCESSFUL', 0, 400), ':white_check_mark: Prepare restart OCP agent — SUCCESSFUL · 0.4 s'],
    [ran('FAILED', 0, 3000), ':x: Prepare restart OCP agent — FAILED · 3.0 s'],
    [{ ...ran('SUCCESSFUL', 0, 3000), operation: 'SKIP' }, ':fast_forward: Prepare restart OCP agent — skipped'],
    [
      { ...ran('RUNNING', 0), runTime: 2, operation: 'RETRY' },
      ':hourglass_flowing_sand: Prepare restart OCP agent (run 2) — RUNNING · 12 s',
    ],
    [{ status: 'SUCCESSFUL' }, ':white_check_mark: Prepare restart OCP agent — SUCCESSFUL'],
  ];
  for (const [c, line] of emojis) {
    test(`${c.operation ?? ''} ${c.status}: ${line}`, () => {
      const { task, ...ctx } = plan(1);
      const r = renderParent(change(task, { 0: c }), { now: after(12_000), ...ctx });
      assert.equal(sections(r)[1]?.split('\n')[0], line);
    });
  }

  test('elapsed while running counts to now; once done, to the finish time', () => {
    const { task, ...ctx } = plan(1);
    const t = change(task, { 0: ran('SUCCESSFUL', 0, 400), 1: ran('SUCCESSFUL', 400, 600), 2: ran('RUNNING', 600) });
    const lines = (now: number) => sections(renderParent(t, { now: after(now), ...ctx }))[1]?.split('\n') ?? [];
    assert.equal(lines(185_600)[2], ':hourglass_flowing_sand: Stop all OCP agent processes — RUNNING · 3 min 05 s');
    assert.equal(lines(3_720_600)[2], ':hourglass_flowing_sand: Stop all OCP agent processes — RUNNING · 1 h 02 min');
    assert.equal(lines(3_720_600)[1], ':white_check_mark: Restart pos proxy — SUCCESSFUL · 0.2 s');
  });

  test('rollback steps are marked, and the title says it rolls back', () => {
    const { task, ...ctx } = plan(1);
    const rb: OcpSubtask = { ...(task.subtasks[3] as OcpSubtask), id: 39_999, operation: 'ROLLBACK', status: 'READY' };
    const t: OcpTask = { ...task, operation: 'ROLLBACK', subtasks: [...task.subtasks, rb] };
    const r = renderParent(t, { now: T0, ...ctx });
    assert.equal(r.text, 'Restart OCP agent — host 101 (sim-host-101) — RUNNING (rolling back)');
    assert.match(allText(r), /:large_blue_circle: Start all OCP agent processes \(rollback\) — READY/);
  });
});

describe('renderParent: buttons per task state', () => {
  const { task, ...ctx } = plan(1);
  const parse = (v: string | undefined) => JSON.parse(v ?? '') as ButtonValue;

  test('RUNNING with a RUNNING subtask: Cancel, danger, behind a confirmation dialog', () => {
    const t = change(task, { 0: ran('SUCCESSFUL', 0, 400), 1: ran('RUNNING', 400) });
    const r = renderParent(t, { now: after(1000), ...ctx });
    assertValid(r);
    const [cancel, ...more] = buttons(r);
    assert.equal(more.length, 0);
    assert.ok(cancel && cancel.type === 'button');
    assert.equal(cancel.action_id, ACTIONS.cancel);
    assert.equal(cancel.text.text, 'Cancel');
    assert.equal(cancel.style, 'danger');
    assert.deepEqual(parse(cancel.value), { taskId: 30_000, subtaskId: t.subtasks[1]?.id });
    assert.equal(cancel.confirm?.title?.text, 'Cancel this step?');
    assert.equal(cancel.confirm?.confirm?.text, 'Cancel it');
    assert.equal(cancel.confirm?.deny?.text, 'Keep running');
    assert.match(cancel.confirm?.text.text ?? '', /Restart pos proxy/);
  });

  test('RUNNING with nothing RUNNING (READY, CANCELING): no buttons', () => {
    for (const t of [task, change(task, { 0: ran('CANCELING', 0) })]) {
      const r = renderParent(t, { now: T0, ...ctx });
      assert.equal(r.blocks.filter((b) => b.type === 'actions').length, 0);
    }
  });

  test('FAILED: Retry, Skip (the first failed subtask), Rollback (danger)', () => {
    const t = change(
      task,
      { 0: ran('SUCCESSFUL', 0, 400), 1: ran('SUCCESSFUL', 400, 600), 2: ran('FAILED', 600, 3600) },
      { status: 'FAILED', finishTime: at(3600) },
    );
    const r = renderParent(t, { now: after(4000), ...ctx });
    assertValid(r);
    assert.equal(r.text, 'Restart OCP agent — host 101 (sim-host-101) — FAILED');
    const b = buttons(r).filter((e) => e.type === 'button');
    assert.deepEqual(
      b.map((e) => [e.action_id, e.text.text, e.style, parse(e.value)]),
      [
        [ACTIONS.retry, 'Retry', undefined, { taskId: 30_000 }],
        [ACTIONS.skip, 'Skip', undefined, { taskId: 30_000, subtaskId: t.subtasks[2]?.id }],
        [ACTIONS.rollback, 'Rollback', 'danger', { taskId: 30_000 }],
      ],
    );
  });

  test('FAILED when rollback is prohibited: no Rollback', () => {
    const t = change(task, { 0: ran('FAILED', 0, 400) }, { status: 'FAILED' });
    const prohibited = {
      ...t,
      context: { ...t.context, stringMap: { ...t.context.stringMap, prohibit_rollback: 'true' } },
    };
    const ids = buttons(renderParent(prohibited, { now: T0, ...ctx })).map((e) =>
      'action_id' in e ? e.action_id : '',
    );
    assert.deepEqual(ids, [ACTIONS.retry, ACTIONS.skip]);
  });

  test('SUCCESSFUL: no buttons', () => {
    const done = change(
      task,
      Object.fromEntries(task.subtasks.map((_, i) => [i, ran('SUCCESSFUL', i * 1000, i * 1000 + 500)])),
      { status: 'SUCCESSFUL', finishTime: at(5000) },
    );
    const r = renderParent(done, { now: after(6000), ...ctx });
    assert.equal(r.blocks.filter((b) => b.type === 'actions').length, 0);
    assert.equal(sections(r)[0], ':white_check_mark: *Restart OCP agent — host 101 (sim-host-101) — SUCCESSFUL*');
  });
});

describe('renderParent: a batch, one line per host', () => {
  test('5 hosts: each host its current or last step and state, in host order', () => {
    const { task, ...ctx } = plan(5, { reason: 'rolling restart' });
    // host 101 done; 102 failed at Stop all; 103 running Start all; 104 ready; 105 waiting
    const t = change(task, {
      0: ran('SUCCESSFUL', 0, 100),
      1: ran('SUCCESSFUL', 100, 300),
      2: ran('SUCCESSFUL', 300, 1300),
      3: ran('SUCCESSFUL', 1300, 2300),
      4: ran('SUCCESSFUL', 2300, 2500),
      5: ran('SUCCESSFUL', 0, 100),
      6: ran('SUCCESSFUL', 100, 300),
      7: ran('FAILED', 300, 3300),
      10: ran('SUCCESSFUL', 0, 100),
      11: ran('SUCCESSFUL', 100, 300),
      12: ran('SUCCESSFUL', 300, 1300),
      13: ran('RUNNING', 1300),
      15: { status: 'READY' },
      20: { status: 'PENDING' },
    });
    const r = renderParent(t, { now: after(13_300), ...ctx });
    assertValid(r);
    assert.equal(r.text, 'Batch restart OCP agent — 5 hosts — RUNNING');
    assert.deepEqual(sections(r).slice(1).join('\n').split('\n'), [
      ':white_check_mark: host 101 (sim-host-101) — done · 2.5 s',
      ':x: host 102 (sim-host-102) — Stop all OCP agent processes — FAILED · 3.0 s',
      ':hourglass_flowing_sand: host 103 (sim-host-103) — Start all OCP agent processes — RUNNING · 12 s',
      ':large_blue_circle: host 104 (sim-host-104) — Prepare restart OCP agent — READY',
      ':white_circle: host 105 (sim-host-105) — waiting',
    ]);
    assert.match(
      allText(r),
      /1 :white_check_mark: · 1 :x: · 1 :hourglass_flowing_sand: · 1 :large_blue_circle: · 1 :white_circle:/,
    );
    // A running batch is paused, resumed or canceled as a whole (SPEC §10).
    const [pause, cancel, ...more] = buttons(r);
    assert.equal(more.length, 0);
    assert.ok(pause && pause.type === 'button' && cancel && cancel.type === 'button');
    assert.equal(pause.action_id, ACTIONS.pause);
    assert.equal(pause.text.text, 'Pause');
    assert.deepEqual(JSON.parse(pause.value ?? ''), { taskId: 30_000 });
    assert.equal(cancel.action_id, ACTIONS.cancelTask);
    assert.equal(cancel.style, 'danger');
    assert.deepEqual(JSON.parse(cancel.value ?? ''), { taskId: 30_000 });
    assert.equal(cancel.confirm?.title?.text, 'Cancel this batch?');
    // Paused: Resume instead of Pause.
    const paused = { ...t, context: { ...t.context, stringMap: { ...t.context.stringMap, paused: 'true' } } };
    const [resume] = buttons(renderParent(paused, { now: after(13_300), ...ctx }));
    assert.ok(resume && resume.type === 'button');
    assert.equal(resume.action_id, ACTIONS.resume);
    assert.equal(resume.text.text, 'Resume');
  });

  test('without hostOfSubtask, hosts come from listMap.host_ids', () => {
    const { task, hostNames } = plan(3);
    const r = renderParent(task, { now: T0, hostNames, hostOfSubtask: {} });
    assert.match(allText(r), /host 103 \(sim-host-103\) — Prepare/);
  });

  for (const hostCount of [1, 5, 2000]) {
    test(`${hostCount} hosts: at most 50 blocks, every block valid, in every state`, () => {
      const { task, ...ctx } = plan(hostCount, { reason: 'r'.repeat(500) });
      const running = change(
        task,
        Object.fromEntries(task.subtasks.map((_, i) => [i, i % 5 === 0 ? ran('RUNNING', 0) : {}])),
      );
      const failed = change(
        task,
        Object.fromEntries(task.subtasks.map((_, i) => [i, i % 5 === 0 ? ran('FAILED', 0, 1000) : {}])),
        { status: 'FAILED' },
      );
      for (const t of [task, running, failed]) {
        const r = renderParent(t, { now: after(60_000), ...ctx, requester: '<@U0123ABC>' });
        assertValid(r);
        const hostsShown = sections(r).slice(1).join('\n').split('\n').length;
        const more = /… and (\d+) more (?:hosts|steps)/.exec(allText(r));
        const expected = hostCount === 1 ? 5 : hostCount;
        assert.equal(hostsShown + Number(more?.[1] ?? 0), expected);
        if (hostCount === 2000) assert.ok(more, 'says how many hosts are not shown');
        else assert.equal(more, null);
      }
    });
  }

  test('2000 hosts: when not all fit, the hosts that need a look come first', () => {
    const { task, ...ctx } = plan(2000);
    // The last host failed, host 1500 runs, the rest are done.
    const done = (i: number) => ran('SUCCESSFUL', i, i + 1);
    const t = change(task, {
      ...Object.fromEntries(task.subtasks.map((_, i) => [i, done(i)])),
      [1999 * 5 + 2]: ran('FAILED', 0, 1000),
      [1999 * 5 + 3]: { status: 'PENDING' },
      [1999 * 5 + 4]: { status: 'PENDING' },
      [1499 * 5 + 4]: ran('RUNNING', 0),
    });
    const r = renderParent(t, { now: after(5000), ...ctx });
    assertValid(r);
    const lines = sections(r).slice(1).join('\n').split('\n');
    assert.match(lines[0] ?? '', /^:x: host 2100 \(sim-host-2100\) — Stop all/);
    assert.match(lines[1] ?? '', /^:hourglass_flowing_sand: host 1600 \(sim-host-1600\) — Finish/);
    assert.match(lines[2] ?? '', /^:white_check_mark: host 101 /);
    assert.match(
      allText(r),
      new RegExp(`… and ${2000 - lines.length} more hosts \\(${2000 - lines.length} :white_check_mark:\\)`),
    );
  });
});

describe('renderParent: text from users is escaped', () => {
  test('reason and creator cannot mention, link or break the markup', () => {
    const { task, ...ctx } = plan(1, {
      reason: 'ping <!channel> & <@U999> <http://evil|click>',
      creator: 'nats:<bot>&co',
    });
    const r = renderParent(task, { now: T0, ...ctx });
    const json = allText(r);
    assert.match(json, /reason: ping &lt;!channel&gt; &amp; &lt;@U999&gt; &lt;http:\/\/evil\|click&gt;/);
    assert.match(json, /asked by nats:&lt;bot&gt;&amp;co/);
    assert.doesNotMatch(json, /<!channel>|<@U999>|<http/);
  });

  test('a Slack creator becomes a mention; a requester mention stays one', () => {
    const { task, ...ctx } = plan(1);
    assert.match(allText(renderParent(task, { now: T0, ...ctx })), /asked by <@U0123ABC>/);
    assert.match(allText(renderParent(task, { now: T0, ...ctx, requester: '<@W42>' })), /asked by <@W42>/);
  });

  test('the reason passed in wins over the stored one', () => {
    const { task, ...ctx } = plan(1, { reason: 'stored' });
    assert.match(allText(renderParent(task, { now: T0, ...ctx, reason: 'given' })), /reason: given/);
  });
});

describe('renderSubtaskReply', () => {
  const { task, ...ctx } = plan(1);
  const cases: Array<[string, Change, number, string]> = [
    ['successful', ran('SUCCESSFUL', 0, 200), 1, ':white_check_mark: *Restart pos proxy* SUCCESSFUL in 0.2 s'],
    ['skipped', { ...ran('SUCCESSFUL', 0, 200), operation: 'SKIP' }, 1, ':fast_forward: *Restart pos proxy* skipped'],
    ['failed', ran('FAILED', 0, 3000), 2, ':x: *Stop all OCP agent processes* FAILED in 3.0 s'],
    [
      'a retry',
      { ...ran('SUCCESSFUL', 0, 4200), runTime: 2 },
      1,
      ':white_check_mark: *Restart pos proxy (run 2)* SUCCESSFUL in 4.2 s',
    ],
  ];
  for (const [what, c, i, line] of cases) {
    test(what, () => {
      const t = change(task, { [i]: c });
      const r = renderSubtaskReply(t, t.subtasks[i]?.id ?? 0, ctx);
      assertValid(r);
      assert.deepEqual(sections(r), [line]);
      assert.equal(r.text, line);
    });
  }

  test('failed: the error, then the last lines of output in a code block', () => {
    const t = change(task, { 2: ran('FAILED', 0, 3000) });
    const log = `${Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join('\n')}\n\n`;
    const r = renderSubtaskReply(t, t.subtasks[2]?.id ?? 0, { ...ctx, log: { log, error: 'exit code 3 <oops>' } });
    assertValid(r);
    const [line, code] = sections(r);
    assert.equal(line, ':x: *Stop all OCP agent processes* FAILED in 3.0 s: exit code 3 &lt;oops&gt;');
    assert.equal(code, `\`\`\`\n${Array.from({ length: 15 }, (_, i) => `line ${i + 26}`).join('\n')}\n\`\`\``);
  });

  test('a 100 KB log: at most 2500 characters and 15 lines, the last ones kept, fences intact', () => {
    const t = change(task, { 2: ran('FAILED', 0, 3000) });
    const lines = Array.from({ length: 2000 }, (_, i) => `${String(i).padStart(5, '0')} ${'x'.repeat(44)} \`\`\` <&>`);
    const log = lines.join('\n');
    assert.ok(log.length >= 100_000);
    const r = renderSubtaskReply(t, t.subtasks[2]?.id ?? 0, { ...ctx, log: { log, error: 'timed out after 600 s' } });
    assertValid(r);
    const code = sections(r)[1] ?? '';
    assert.ok(code.startsWith('```\n') && code.endsWith('\n```'));
    const body = code.slice(4, -4);
    assert.ok(body.length <= 2500, `${body.length} chars`);
    assert.ok(!body.includes('`'), 'no backtick can close the block early');
    const shown = body.split('\n');
    assert.ok(shown.length <= 15);
    assert.match(shown.at(-1) ?? '', /^01999 x{44} ˋˋˋ &lt;&amp;&gt;$/);
    assert.match(shown.at(-2) ?? '', /^01998 /);
  });

  test('one huge line: its end, marked as cut', () => {
    const tail = outputTail(`${'a'.repeat(100_000)}THE END`);
    assert.ok(tail.length <= 2500);
    assert.ok(tail.startsWith('…'));
    assert.ok(tail.endsWith('aTHE END'));
  });

  const tails: Array<[string, string, string]> = [
    ['ANSI colours and carriage returns dropped', '\x1b[31mred\x1b[0m\r\nnext\x07', 'red\nnext'],
    ['escaping is counted in the limit', '<'.repeat(1000), `…${'&lt;'.repeat(624)}`],
    ['empty output', '\n\n', ''],
  ];
  for (const [what, log, out] of tails) test(`outputTail: ${what}`, () => assert.equal(outputTail(log), out));

  test('no output: no code block', () => {
    const t = change(task, { 0: ran('FAILED', 0, 100) });
    const r = renderSubtaskReply(t, t.subtasks[0]?.id ?? 0, { ...ctx, log: { log: '' } });
    assert.deepEqual(sections(r), [':x: *Prepare restart OCP agent* FAILED in 0.1 s']);
  });

  test('a batch: the host name comes first', () => {
    const b = plan(3);
    const t = change(b.task, { 7: ran('FAILED', 0, 3000) });
    const r = renderSubtaskReply(t, t.subtasks[7]?.id ?? 0, { hostNames: b.hostNames, hostOfSubtask: b.hostOfSubtask });
    assert.equal(sections(r)[0], ':x: sim-host-102 · *Stop all OCP agent processes* FAILED in 3.0 s');
  });

  test('an unknown subtask says so', () => {
    assert.match(renderSubtaskReply(task, 1, ctx).text, /Subtask 1 is not part of task 30000/);
  });
});

describe('renderFinalReply', () => {
  const { task } = plan(1);
  const cases: Array<[string, OcpTask, string]> = [
    [
      'successful',
      { ...task, status: 'SUCCESSFUL', finishTime: at(4200) },
      ':white_check_mark: Restart OCP agent SUCCESSFUL in 4.2 s',
    ],
    ['failed', { ...task, status: 'FAILED', finishTime: at(185_000) }, ':x: Restart OCP agent FAILED in 3 min 05 s'],
    ['failed, no finish time yet: until now', { ...task, status: 'FAILED' }, ':x: Restart OCP agent FAILED in 12 s'],
    [
      'rolled back',
      { ...task, status: 'SUCCESSFUL', operation: 'ROLLBACK', finishTime: at(4200) },
      ':white_check_mark: Restart OCP agent SUCCESSFUL (rolled back) in 4.2 s',
    ],
  ];
  for (const [what, t, text] of cases) {
    test(what, () => {
      const r = renderFinalReply(t, { now: after(12_000) });
      assertValid(r);
      assert.equal(r.text, text);
      assert.equal(sections(r)[0], text);
    });
  }

  test('a batch counts the hosts that failed', () => {
    const b = plan(3);
    const t = change(b.task, { 7: ran('FAILED', 0, 1000) }, { status: 'FAILED', finishTime: at(62_000) });
    assert.equal(
      renderFinalReply(t, { now: after(70_000) }).text,
      ':x: Batch restart OCP agent FAILED in 1 min 02 s — 1 of 3 hosts failed',
    );
  });
});

describe('renderTaskStatus', () => {
  test('one host: each subtask with its id and state', () => {
    const { task, ...ctx } = plan(1, { reason: 'why <not>' });
    const t = change(task, { 0: ran('SUCCESSFUL', 0, 400), 1: ran('RUNNING', 400) });
    const r = renderTaskStatus(t, { now: after(12_400), ...ctx });
    assertValid(r);
    assert.equal(r.text, 'Task 30000: Restart OCP agent — host 101 (sim-host-101) — RUNNING');
    const lines = sections(r).slice(1).join('\n').split('\n');
    assert.equal(
      lines[0],
      `:white_check_mark: \`#${t.subtasks[0]?.id}\` Prepare restart OCP agent — SUCCESSFUL · 0.4 s`,
    );
    assert.equal(lines[1], `:hourglass_flowing_sand: \`#${t.subtasks[1]?.id}\` Restart pos proxy — RUNNING · 12 s`);
    assert.match(allText(r), /reason: why &lt;not&gt;/);
    assert.match(allText(r), /running for 12 s/);
    assert.equal(buttons(r).length, 0);
  });

  for (const hostCount of [5, 2000]) {
    test(`${hostCount} hosts: a line per host with the current subtask id, ≤ 50 blocks`, () => {
      const { task, ...ctx } = plan(hostCount);
      const r = renderTaskStatus(task, { now: T0, ...ctx });
      assertValid(r);
      assert.match(allText(r), new RegExp(`host 101 \\(sim-host-101\\) — \`#${task.subtasks[0]?.id}\` Prepare`));
    });
  }
});

describe('renderTaskList', () => {
  const { task } = plan(1, { reason: 'disk <full> & slow' });
  const { subtasks: _s, ...row } = task;
  const batch = (() => {
    const { subtasks: _b, ...b } = plan(4).task;
    return { ...b, id: 40_000, status: 'FAILED' as const, creator: 'admin' };
  })();

  test('id, name, host, status, creator, reason and start time', () => {
    const r = renderTaskList('Recent tasks on sim-host-101 (101)', [row, batch], { now: after(185_000) });
    assertValid(r);
    const [title, body] = sections(r);
    assert.equal(title, '*Recent tasks on sim-host-101 (101)*');
    const [first, second] = (body ?? '').split('\n');
    assert.match(
      first ?? '',
      /^:hourglass_flowing_sand: \*30000\* Restart OCP agent — host 101 — RUNNING · by <@U0123ABC> · started <!date\^1630649826\^\{date_short_pretty\} \{time_secs\}\|[^>]+> \(3 min 05 s ago\) · “disk &lt;full&gt; &amp; slow”$/,
    );
    assert.match(second ?? '', /^:x: \*40000\* Batch restart OCP agent — host 101 \+3 — FAILED · by admin · started/);
  });

  test('a host’s history shows its labels under the title, and stays within the limits', () => {
    const rows = Array.from({ length: 2000 }, (_, i) => ({ ...row, id: i + 1 }));
    const r = renderTaskList('Recent tasks on sim-host-101 (101)', rows, {
      now: T0,
      labels: { env: 'prod', zone: 'z1' },
    });
    assertValid(r);
    const ctx = r.blocks[1];
    assert.equal(ctx?.type, 'context');
    assert.match(JSON.stringify(ctx), /labels `env=prod` `zone=z1`/);
  });

  test('no tasks', () => {
    const r = renderTaskList('Running and recent tasks', [], { now: T0 });
    assert.deepEqual(sections(r), ['*Running and recent tasks*', 'No tasks.']);
  });

  test('2000 tasks: ≤ 50 blocks, then how many more', () => {
    const rows = Array.from({ length: 2000 }, (_, i) => ({
      ...row,
      id: i + 1,
      context: { ...row.context, stringMap: { reason: 'r'.repeat(500) } },
    }));
    const r = renderTaskList('Running and recent tasks', rows, { now: T0 });
    assertValid(r);
    const shown = sections(r).slice(1).join('\n').split('\n').length;
    assert.match(allText(r), new RegExp(`… and ${2000 - shown} more tasks`));
  });

  test('a title from a user is escaped', () => {
    assert.equal(sections(renderTaskList('tasks of <@U1>', [], { now: T0 }))[0], '*tasks of &lt;@U1&gt;*');
  });
});

describe('renderAgentStatus', () => {
  test('a line per process, with its pid and state', () => {
    const r = renderAgentStatus({
      hostId: 101,
      name: 'sim-host-101',
      labels: { cluster: 'obcluster1', zone: 'z1' },
      installHome: '/home/admin/ocp_agent',
      status: 'PARTIAL',
      processes: [
        { name: 'ocp_agentd', pid: 1234, status: 'RUNNING' },
        { name: 'pos_proxy', pid: null, status: 'STOPPED' },
      ],
    });
    assertValid(r);
    assert.equal(r.text, 'OCP agent on host 101 (sim-host-101) — PARTIAL');
    assert.deepEqual(sections(r), [
      ':warning: *OCP agent on host 101 (sim-host-101) — PARTIAL*',
      ':white_check_mark: `ocp_agentd` pid 1234 — RUNNING\n:red_circle: `pos_proxy` — STOPPED',
    ]);
    assert.match(allText(r), /installed in `\/home\/admin\/ocp_agent`/);
    assert.match(allText(r), /labels `cluster=obcluster1` `zone=z1`/);
  });

  test('many labels are clipped to fit their context element', () => {
    const labels = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`key-${i}`, 'v'.repeat(40)]));
    const r = renderAgentStatus({ hostId: 1, name: 'h', labels, installHome: '/x', status: 'STOPPED', processes: [] });
    assertValid(r);
    assert.match(allText(r), /labels `key-0=v+` .*…/);
  });

  test('no processes', () => {
    const r = renderAgentStatus({
      hostId: 1,
      name: 'h',
      labels: {},
      installHome: '/x',
      status: 'STOPPED',
      processes: [],
    });
    assert.equal(sections(r)[1], 'No agent processes reported.');
    assert.match(sections(r)[0] ?? '', /^:red_circle: /);
  });
});

test('a task whose hosts a selector named shows the selector, in its parent and its status', () => {
  const p = plan(3);
  const task = {
    ...p.task,
    context: { ...p.task.context, stringMap: { ...p.task.context.stringMap, selector: 'zone=z1' } },
  };
  const parent = renderParent(task, { ...p, now: after(1000) });
  const status = renderTaskStatus(task, { ...p, now: after(1000) });
  for (const r of [parent, status]) {
    assertValid(r);
    assert.match(allText(r), /selector: `zone=z1`/);
  }
  assert.doesNotMatch(allText(renderParent(p.task, { ...p, now: after(1000) })), /selector/);
});

describe('renderConfirm', () => {
  const restart = { summary: 'restart the OCP agent', title: 'Restart OCP agent' };
  const hosts = (n: number) => Array.from({ length: n }, (_, i) => ({ id: 101 + i, name: `sim-host-${101 + i}` }));

  test('the question, the hosts, the reason, Confirm (primary) and Cancel carrying the value', () => {
    const value = JSON.stringify({ hostIds: [101, 102, 103], reason: 'x' });
    const r = renderConfirm(restart, hosts(3), { reason: 'rolling <fix>' }, value);
    assertValid(r);
    assert.equal(r.text, 'Restart the OCP agent on 3 hosts?');
    assert.match(sections(r)[0] ?? '', /^:warning: \*Restart the OCP agent on 3 hosts\?\*/);
    assert.equal(sections(r)[1], '`101` sim-host-101, `102` sim-host-102, `103` sim-host-103');
    assert.match(allText(r), /reason: rolling &lt;fix&gt;/);
    const b = buttons(r).filter((e) => e.type === 'button');
    assert.deepEqual(
      b.map((e) => [e.action_id, e.text.text, e.style, e.value]),
      [
        [ACTIONS.confirmBatch, 'Confirm', 'primary', value],
        [ACTIONS.cancelBatch, 'Cancel', undefined, value],
      ],
    );
  });

  test("an operation of one's own on one host: its parameters shown", () => {
    const op = { summary: 'restart one OCP agent process', title: 'Restart one OCP agent process' };
    const r = renderConfirm(op, hosts(1), { params: { process: 'ocp_monagent' } }, 'k');
    assertValid(r);
    assert.equal(r.text, 'Restart one OCP agent process on 1 host?');
    assert.match(allText(r), /process=ocp_monagent/);
  });

  test('no reason', () => {
    assert.match(allText(renderConfirm(restart, hosts(2), {}, 'k')), /no reason given/);
  });

  describe('a selector: the preview of what it matches (SPEC §10)', () => {
    const labelled = (n: number, clusters: number, zones: number) =>
      hosts(n).map((h, i) => ({ ...h, labels: { cluster: `ob${i % clusters}`, zone: `z${i % zones}`, env: 'prod' } }));

    test('how many hosts in how many clusters and zones, thousands separated', () => {
      assert.equal(selectionSummary(labelled(1234, 3, 9)), '1,234 hosts in 3 clusters, 9 zones');
      assert.equal(selectionSummary(labelled(1, 1, 1)), '1 host in 1 cluster, 1 zone');
      assert.equal(selectionSummary([{ labels: {} }, { labels: { zone: 'z1' } }]), '2 hosts in 1 zone');
      assert.equal(selectionSummary([{ labels: { env: 'prod' } }]), '1 host');
    });

    test('the question counts them, the selector is shown, the first few hosts are listed and the rest counted', () => {
      const r = renderConfirm(
        restart,
        labelled(1234, 3, 9),
        { reason: 'upgrade', selector: 'env=prod' },
        JSON.stringify({ batchId: 'b' }),
      );
      assertValid(r);
      assert.equal(r.text, 'Restart the OCP agent on 1,234 hosts in 3 clusters, 9 zones?');
      assert.match(allText(r), /selector `env=prod` matches them now/);
      assert.match(allText(r), /reason: upgrade/);
      const listed = allText(r).match(/`\d+` sim-host-\d+/g) ?? [];
      assert.equal(listed.length, SELECTION_SHOWN);
      assert.equal(listed[0], '`101` sim-host-101');
      assert.match(allText(r), /… and 1,224 more hosts/);
      assert.equal(r.blocks.at(-1)?.type, 'actions');
    });

    test('a few hosts: all of them listed', () => {
      const r = renderConfirm(restart, labelled(2, 1, 2), { selector: 'cluster=ob0' }, 'k');
      assertValid(r);
      assert.equal(r.text, 'Restart the OCP agent on 2 hosts in 1 cluster, 2 zones?');
      assert.equal(sections(r)[1], '`101` sim-host-101, `102` sim-host-102');
      assert.doesNotMatch(allText(r), /more hosts/);
    });
  });

  test('2000 hosts: ≤ 50 blocks, buttons last', () => {
    const r = renderConfirm(restart, hosts(2000), { reason: 'r'.repeat(500) }, 'batch-key-1');
    assertValid(r);
    assert.equal(r.blocks.at(-1)?.type, 'actions');
    const shown = sections(r).slice(1).join(', ').split(', ').length;
    const more = /… and (\d+) more hosts/.exec(allText(r));
    assert.equal(shown + Number(more?.[1] ?? 0), 2000);
  });
});
