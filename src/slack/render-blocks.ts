/**
 * Block Kit for what Slack shows (SPEC §4): the parent message of a task and
 * its thread replies (the notifier), and the ephemeral answers to `status`,
 * `list`, `history`, `agent` and a batch's confirmation. Pure: no I/O.
 *
 * Every message stays within Slack's limits, whatever the input: at most 50
 * blocks, mrkdwn text ≤ 3000 characters per section, ≤ 10 context elements,
 * button text ≤ 75 and values ≤ 2000 characters (a value passed in, as for a
 * batch's confirmation, is the caller's to keep short). Text from outside
 * (reasons, creators, output, errors, names) has `&`, `<`, `>` escaped, so it
 * cannot mention anyone or forge a link.
 */
import type { ActionsBlock, Button, ContextBlock, KnownBlock, SectionBlock } from '@slack/types';
import type { OcpSubtask, OcpTask, SubtaskStatus, TaskStatus } from '../contracts/ocp-task.js';

export interface Rendered {
  /** Plain fallback, shown in notifications (Slack reads it as mrkdwn too). */
  text: string;
  blocks: KnownBlock[];
}

/** action_id of each button; the Slack app registers a handler per id. */
export const ACTIONS = {
  retry: 'task_retry',
  skip: 'subtask_skip',
  rollback: 'task_rollback',
  cancel: 'subtask_cancel',
  confirmBatch: 'batch_confirm',
  cancelBatch: 'batch_cancel',
  /** A running batch held, let go, or canceled as a whole (SPEC §10). */
  pause: 'task_pause',
  resume: 'task_resume',
  cancelTask: 'task_cancel',
} as const;

/** What a task button carries, as JSON in its `value`. */
export interface ButtonValue {
  taskId: number;
  subtaskId?: number;
}

/** Slack's Block Kit limits that this file keeps to. */
export const LIMITS = {
  blocks: 50,
  sectionText: 3000,
  contextElements: 10,
  buttonText: 75,
  actionValue: 2000,
  /**
   * Text of all blocks together. Slack refuses more with msg_blocks_too_long
   * (undocumented, near 12,000 characters); this keeps well below.
   */
  messageText: 8000,
  /** Characters of a failed subtask's output shown in its reply, and lines. */
  outputChars: 2500,
  outputLines: 15,
} as const;

/** Longest single line (a subtask, host or task) before it is cut. */
const MAX_LINE = 1000;

export const SUBTASK_EMOJI: Record<SubtaskStatus, string> = {
  PENDING: ':white_circle:',
  READY: ':large_blue_circle:',
  RUNNING: ':hourglass_flowing_sand:',
  CANCELING: ':no_entry_sign:',
  SUCCESSFUL: ':white_check_mark:',
  FAILED: ':x:',
};
export const SKIPPED_EMOJI = ':fast_forward:';

const TASK_EMOJI: Record<TaskStatus, string> = {
  RUNNING: ':hourglass_flowing_sand:',
  SUCCESSFUL: ':white_check_mark:',
  FAILED: ':x:',
};

// ---------------------------------------------------------------- text helpers

/** `&`, `<`, `>` as Slack wants them in mrkdwn (and in `text`). */
export function escapeMrkdwn(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** Cut to `max` characters with "…", never inside an entity, a `<…>` sequence or a surrogate pair. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - 1);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  cut = cut.replace(/&[a-z]{0,4}$/, '').replace(/<[^>]*$/, '');
  return `${cut}…`;
}

/** "0.4 s", "12 s", "3 min 05 s", "1 h 02 min". Negative or not a number: "0.0 s". */
export function formatDuration(ms: number): string {
  const safe = Number.isFinite(ms) && ms > 0 ? ms : 0;
  const tenths = Math.round(safe / 100);
  if (tenths < 100) return `${(tenths / 10).toFixed(1)} s`;
  const secs = Math.round(safe / 1000);
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ${String(secs % 60).padStart(2, '0')} s`;
  const mins = Math.floor(secs / 60);
  return `${Math.floor(mins / 60)} h ${String(mins % 60).padStart(2, '0')} min`;
}

function parseTime(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

/** finishTime − startTime, or now − startTime while it runs; undefined when not started. */
function elapsedOf(s: { startTime?: string; finishTime?: string }, now?: Date): number | undefined {
  const start = parseTime(s.startTime);
  if (start === undefined) return undefined;
  const end = parseTime(s.finishTime) ?? now?.getTime();
  return end === undefined ? undefined : end - start;
}

/** An OCP time in the reader's own time zone (Slack's date token), with the OCP string as fallback. */
function slackDate(ocpTime: string): string {
  const t = parseTime(ocpTime);
  if (t === undefined) return escapeMrkdwn(ocpTime);
  return `<!date^${Math.floor(t / 1000)}^{date_short_pretty} {time_secs}|${escapeMrkdwn(ocpTime)}>`;
}

/**
 * Who asked, as mrkdwn: a Slack mention stays one (`<@U123>`, or `slack:U123`
 * as OCP's creator); anything else is shown as text.
 */
function who(requester: string): string {
  if (/^<@[UW][A-Z0-9]+>$/.test(requester)) return requester;
  const slack = /^slack:([UW][A-Z0-9]+)$/.exec(requester);
  if (slack) return `<@${slack[1]}>`;
  return escapeMrkdwn(requester);
}

// ------------------------------------------------------------- block helpers

const mrkdwn = (text: string) => ({ type: 'mrkdwn' as const, text: clip(text, LIMITS.sectionText) });
const plain = (text: string, max: number) => ({ type: 'plain_text' as const, text: clip(text, max), emoji: true });

function section(text: string): SectionBlock {
  return { type: 'section', text: mrkdwn(text) };
}

function context(parts: readonly string[]): ContextBlock {
  return { type: 'context', elements: parts.slice(0, LIMITS.contextElements).map((p) => mrkdwn(p)) };
}

function button(text: string, actionId: string, value: string, extra: Pick<Button, 'style' | 'confirm'> = {}): Button {
  return { type: 'button', text: plain(text, LIMITS.buttonText), action_id: actionId, value, ...extra };
}

/** Characters of text in blocks: every `text` string, however deep. */
export function textLength(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + textLength(v), 0);
  if (value === null || typeof value !== 'object') return 0;
  return Object.entries(value).reduce(
    (n, [k, v]) => n + (k === 'text' && typeof v === 'string' ? v.length : textLength(v)),
    0,
  );
}

/** What is left for the body of a message once its head and tail blocks are set. */
interface Room {
  blocks: number;
  chars: number;
}

function roomBeside(...fixed: KnownBlock[]): Room {
  return { blocks: LIMITS.blocks - fixed.length, chars: LIMITS.messageText - textLength(fixed) };
}

/** Room kept for the "… and N more" note. */
const NOTE_CHARS = 300;

/**
 * Lines packed into as few sections as fit (each ≤ 3000 characters), within
 * `room`; when they do not all fit, a last block says "… and N more <noun>"
 * (with `more(rest)` added when given).
 */
function packLines(
  lines: readonly string[],
  room: Room,
  noun: string,
  more?: (rest: number) => string,
  separator = '\n',
): KnownBlock[] {
  const pack = (maxBlocks: number, maxChars: number) => {
    const blocks: SectionBlock[] = [];
    let current = '';
    let chars = 0;
    let used = 0;
    for (const raw of lines) {
      const line = clip(raw, MAX_LINE);
      const joined = current === '' ? line : `${current}${separator}${line}`;
      if (chars + joined.length > maxChars) break;
      if (joined.length <= LIMITS.sectionText) {
        current = joined;
      } else {
        if (blocks.length + 1 >= maxBlocks) break; // `current` takes the last block
        blocks.push(section(current));
        chars += current.length;
        current = line;
      }
      used += 1;
    }
    if (current !== '' && blocks.length < maxBlocks) blocks.push(section(current));
    return { blocks, used };
  };
  if (lines.length === 0 || room.blocks <= 0) return [];
  const all = pack(room.blocks, room.chars);
  if (all.used === lines.length) return all.blocks;
  const some = pack(room.blocks - 1, room.chars - NOTE_CHARS);
  const rest = lines.length - some.used;
  const tail = more ? ` ${more(rest)}` : '';
  return [...some.blocks, context([`… and ${rest} more ${noun}${tail}`])];
}

// --------------------------------------------------------------- task model

interface HostCtx {
  hostNames: Record<number, string>;
  hostOfSubtask: Record<number, number>;
}

/** "host 101 (sim-host-101)", or "host 101" when its name is unknown. */
function hostLabel(hostId: number | undefined, hostNames: Record<number, string>): string {
  if (hostId === undefined) return 'unknown host';
  const name = hostNames[hostId];
  return name ? `host ${hostId} (${escapeMrkdwn(name)})` : `host ${hostId}`;
}

function hostOf(task: OcpTask, s: OcpSubtask, hostOfSubtask: Record<number, number>): number | undefined {
  const known = hostOfSubtask[s.id];
  if (known !== undefined) return known;
  if (!task.context.parallel) return task.hostId;
  const listed = Number(task.context.listMap.host_ids?.[s.parallelIdx]);
  return Number.isSafeInteger(listed) && listed > 0 ? listed : undefined;
}

function isSkipped(s: OcpSubtask): boolean {
  return s.operation === 'SKIP' && s.status === 'SUCCESSFUL';
}

function subtaskEmoji(s: OcpSubtask): string {
  return isSkipped(s) ? SKIPPED_EMOJI : SUBTASK_EMOJI[s.status];
}

/** Subtask name as mrkdwn, marked when it is a rollback step or a later run. */
function subtaskName(s: OcpSubtask): string {
  const tags: string[] = [];
  if (s.operation === 'ROLLBACK') tags.push('rollback');
  if (s.runTime > 1) tags.push(`run ${s.runTime}`);
  return `${escapeMrkdwn(s.name)}${tags.length > 0 ? ` (${tags.join(', ')})` : ''}`;
}

/** "SUCCESSFUL · 0.4 s", "RUNNING · 12 s", "skipped", "PENDING". */
function stateOf(s: OcpSubtask, now: Date): string {
  if (isSkipped(s)) return 'skipped';
  const running = s.status === 'RUNNING' || s.status === 'CANCELING';
  const ms = running ? elapsedOf({ startTime: s.startTime }, now) : elapsedOf(s);
  return ms === undefined ? s.status : `${s.status} · ${formatDuration(ms)}`;
}

function subtaskLine(s: OcpSubtask, now: Date, withId: boolean): string {
  const id = withId ? `\`#${s.id}\` ` : '';
  return `${subtaskEmoji(s)} ${id}${subtaskName(s)} — ${stateOf(s, now)}`;
}

/** A batch's chains, one per host, in host order. */
function chainsOf(task: OcpTask): Array<{ idx: number; subtasks: OcpSubtask[] }> {
  const map = new Map<number, OcpSubtask[]>();
  for (const s of task.subtasks) map.set(s.parallelIdx, [...(map.get(s.parallelIdx) ?? []), s]);
  return [...map].sort(([a], [b]) => a - b).map(([idx, subtasks]) => ({ idx, subtasks }));
}

/** A chain's state, as one subtask status: what a reader should look at first wins. */
function chainState(chain: readonly OcpSubtask[]): SubtaskStatus {
  for (const st of ['FAILED', 'CANCELING', 'RUNNING', 'READY'] as const) {
    if (chain.some((s) => s.status === st)) return st;
  }
  if (chain.every((s) => s.status === 'SUCCESSFUL')) return 'SUCCESSFUL';
  return 'PENDING';
}

/** Where a reader should look first when not every host fits. */
const ATTENTION: Record<SubtaskStatus, number> = {
  FAILED: 0,
  CANCELING: 1,
  RUNNING: 2,
  READY: 3,
  PENDING: 4,
  SUCCESSFUL: 5,
};

interface HostLine {
  state: SubtaskStatus;
  line: string;
}

/** One line per host of a batch: its current (or last) step and its state. */
function hostLines(task: OcpTask, ctx: HostCtx & { now: Date }, withId: boolean): HostLine[] {
  return chainsOf(task).map(({ subtasks: chain }) => {
    const first = chain[0] as OcpSubtask;
    const host = hostLabel(hostOf(task, first, ctx.hostOfSubtask), ctx.hostNames);
    const state = chainState(chain);
    const current =
      chain.find((s) => s.status === state && state !== 'SUCCESSFUL' && state !== 'PENDING') ??
      [...chain].reverse().find((s) => s.status !== 'PENDING');
    if (!current) return { state, line: `${SUBTASK_EMOJI.PENDING} ${host} — waiting` };
    if (state === 'SUCCESSFUL') {
      const start = Math.min(...chain.map((s) => parseTime(s.startTime) ?? Number.POSITIVE_INFINITY));
      const end = Math.max(...chain.map((s) => parseTime(s.finishTime) ?? Number.NEGATIVE_INFINITY));
      const total = Number.isFinite(start) && Number.isFinite(end) ? ` · ${formatDuration(end - start)}` : '';
      const anySkipped = chain.some(isSkipped) ? ' (with skipped steps)' : '';
      return { state, line: `${SUBTASK_EMOJI.SUCCESSFUL} ${host} — done${anySkipped}${total}` };
    }
    const emoji = state === 'PENDING' ? subtaskEmoji(current) : SUBTASK_EMOJI[state];
    const id = withId ? ` \`#${current.id}\`` : '';
    return { state, line: `${emoji} ${host} —${id} ${subtaskName(current)} — ${stateOf(current, ctx.now)}` };
  });
}

/** "3 :white_check_mark: · 1 :x: · 1 :hourglass_flowing_sand:" for a set of host states. */
function tally(states: readonly SubtaskStatus[]): string {
  const order: SubtaskStatus[] = ['SUCCESSFUL', 'FAILED', 'CANCELING', 'RUNNING', 'READY', 'PENDING'];
  return order
    .map((st) => [st, states.filter((s) => s === st).length] as const)
    .filter(([, n]) => n > 0)
    .map(([st, n]) => `${n} ${SUBTASK_EMOJI[st]}`)
    .join(' · ');
}

/** "Restart OCP agent — host 101 (sim-host-101) — RUNNING", or "… — 3 hosts — …" for a batch. */
function titleOf(task: OcpTask, hostNames: Record<number, string>): string {
  const hosts = task.context.listMap.host_ids;
  const where = task.context.parallel
    ? `${hosts?.length ?? chainsOf(task).length} hosts`
    : hostLabel(task.hostId, hostNames);
  const op =
    task.operation !== 'ROLLBACK'
      ? ''
      : task.status === 'RUNNING'
        ? ' (rolling back)'
        : task.status === 'SUCCESSFUL'
          ? ' (rolled back)'
          : ' (rollback failed)';
  return `${escapeMrkdwn(task.name)} — ${where} — ${task.status}${op}`;
}

/** The body of a task: a line per subtask, or per host for a batch, within `room`. */
function taskBody(task: OcpTask, ctx: HostCtx & { now: Date }, room: Room, withId: boolean): KnownBlock[] {
  if (!task.context.parallel) {
    const lines = task.subtasks.map((s) => subtaskLine(s, ctx.now, withId));
    return packLines(lines, room, 'steps');
  }
  const all = hostLines(task, ctx, withId);
  // Host order while every host fits; else those that need a look come first.
  const fits = packLines(
    all.map((h) => h.line),
    room,
    'hosts',
  );
  if (fits.every((b) => b.type === 'section')) return fits;
  const ranked = all.map((h, i) => ({ ...h, i })).sort((a, b) => ATTENTION[a.state] - ATTENTION[b.state] || a.i - b.i);
  return packLines(
    ranked.map((h) => h.line),
    room,
    'hosts',
    (rest) => `(${tally(ranked.slice(ranked.length - rest).map((h) => h.state))})`,
  );
}

function firstWith(task: OcpTask, status: SubtaskStatus): OcpSubtask | undefined {
  return task.subtasks.find((s) => s.status === status);
}

const buttonValue = (v: ButtonValue) => JSON.stringify(v);

/**
 * Buttons for the task's state: FAILED → Retry, Skip, Rollback; a RUNNING batch → Pause (or
 * Resume) and Cancel of the batch; another RUNNING task with a RUNNING subtask → Cancel.
 */
function taskActions(
  task: OcpTask,
  hostNames: Record<number, string>,
  hostOfSubtask: Record<number, number>,
): ActionsBlock | undefined {
  const elements: Button[] = [];
  if (task.status === 'FAILED') {
    elements.push(button('Retry', ACTIONS.retry, buttonValue({ taskId: task.id })));
    const failed = firstWith(task, 'FAILED');
    if (failed) elements.push(button('Skip', ACTIONS.skip, buttonValue({ taskId: task.id, subtaskId: failed.id })));
    const prohibited =
      task.context.stringMap.prohibit_rollback === 'true' || task.subtasks.some((s) => s.prohibitRollback);
    if (!prohibited)
      elements.push(button('Rollback', ACTIONS.rollback, buttonValue({ taskId: task.id }), { style: 'danger' }));
  } else if (task.status === 'RUNNING' && task.context.parallel) {
    elements.push(...batchControls(task.id, task.status, task.context.stringMap.paused === 'true'));
  } else if (task.status === 'RUNNING') {
    const running = firstWith(task, 'RUNNING');
    if (running) {
      const where = task.context.parallel ? ` on ${hostLabel(hostOf(task, running, hostOfSubtask), hostNames)}` : '';
      elements.push(
        button('Cancel', ACTIONS.cancel, buttonValue({ taskId: task.id, subtaskId: running.id }), {
          style: 'danger',
          confirm: {
            title: plain('Cancel this step?', 100),
            text: mrkdwnClipped(
              `*${escapeMrkdwn(running.name)}*${where} is stopped on the host and marked FAILED; the task then fails. You can retry or roll it back afterwards.`,
              300,
            ),
            confirm: plain('Cancel it', 30),
            deny: plain('Keep running', 30),
            style: 'danger',
          },
        }),
      );
    }
  }
  return elements.length > 0 ? { type: 'actions', elements } : undefined;
}

/**
 * A running batch's buttons (SPEC §10): Pause, or Resume when it is paused,
 * and Cancel of the whole batch (with a confirmation dialog). Exported for
 * whichever renderer draws a batch's parent.
 */
export function batchControls(taskId: number, status: OcpTask['status'], paused: boolean): Button[] {
  if (status !== 'RUNNING') return [];
  const value = buttonValue({ taskId });
  return [
    paused ? button('Resume', ACTIONS.resume, value, { style: 'primary' }) : button('Pause', ACTIONS.pause, value),
    button('Cancel', ACTIONS.cancelTask, value, {
      style: 'danger',
      confirm: {
        title: plain('Cancel this batch?', 100),
        text: mrkdwnClipped(
          'No new host starts, the steps that run are stopped on their hosts and the batch fails; hosts not started stay waiting. Retry runs them later.',
          300,
        ),
        confirm: plain('Cancel the batch', 30),
        deny: plain('Keep running', 30),
        style: 'danger',
      },
    }),
  ];
}

function mrkdwnClipped(text: string, max: number) {
  return { type: 'mrkdwn' as const, text: clip(text, max) };
}

// ------------------------------------------------------------------ renderers

/** The selector a task's hosts were named by (SPEC §10), as a fact of its header; none when named by ids. */
function selectorFact(task: OcpTask): string[] {
  const selector = task.context.stringMap.selector;
  return selector ? [`selector: \`${escapeMrkdwn(clip(selector, 300))}\``] : [];
}

/** `<{publicUrl}/ui/tasks/{id}|View task>`: the task's web page (SPEC §12); the URL is the configuration's, checked at start-up. */
export function viewTaskLink(publicUrl: string, taskId: number): string {
  return `<${publicUrl.replace(/[<>|]/g, '')}/ui/tasks/${taskId}|View task>`;
}

/** The parent message in the channel, kept current with chat.update. */
export function renderParent(
  task: OcpTask,
  ctx: {
    now: Date;
    hostNames: Record<number, string>;
    hostOfSubtask: Record<number, number>;
    /** Who asked, as mrkdwn (`<@U123>`) or as text; default: the task's creator. */
    requester?: string;
    /** Default: context.stringMap.reason. */
    reason?: string;
    /** `web.publicUrl`: the parent links to the task's page there (SPEC §12). */
    publicUrl?: string;
  },
): Rendered {
  const title = titleOf(task, ctx.hostNames);
  const head: KnownBlock[] = [section(`${TASK_EMOJI[task.status]} *${title}*`)];
  const facts = [`Task *${task.id}*`, `asked by ${who(ctx.requester ?? task.creator)}`];
  const reason = ctx.reason ?? task.context.stringMap.reason;
  if (reason) facts.push(`reason: ${escapeMrkdwn(reason)}`);
  facts.push(...selectorFact(task));
  facts.push(`started ${slackDate(task.startTime)}`);
  if (task.context.parallel) facts.push(tally(chainsOf(task).map((c) => chainState(c.subtasks))));
  if (ctx.publicUrl) facts.push(viewTaskLink(ctx.publicUrl, task.id));
  head.push(context(facts));
  const actions = taskActions(task, ctx.hostNames, ctx.hostOfSubtask);
  const body = taskBody(task, ctx, roomBeside(...head, ...(actions ? [actions] : [])), false);
  return { text: title, blocks: [...head, ...body, ...(actions ? [actions] : [])] };
}

/**
 * The last lines of a subtask's output, safe inside a mrkdwn code block: at
 * most `maxLines` lines and `maxChars` characters (after escaping), the end
 * kept; terminal control sequences dropped; backticks replaced by `ˋ` so the
 * block cannot be closed early.
 */
export function outputTail(
  log: string,
  maxLines: number = LIMITS.outputLines,
  maxChars: number = LIMITS.outputChars,
): string {
  const clean = log
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences are what this removes
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, '') // ANSI colours and cursor moves
    .replace(/\r\n?/g, '\n')
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this removes
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
  const lines = clean.split('\n');
  while (lines.length > 0 && (lines[lines.length - 1] ?? '').trim() === '') lines.pop();
  const safe = (s: string) => escapeMrkdwn(s.replaceAll('`', 'ˋ'));
  const kept: string[] = [];
  let used = 0;
  for (const line of lines.slice(-maxLines).reverse()) {
    const shown = safe(line);
    const cost = shown.length + (kept.length > 0 ? 1 : 0);
    if (used + cost <= maxChars) {
      kept.unshift(shown);
      used += cost;
      continue;
    }
    // The line does not fit whole: keep its end, marked with "…".
    const room = maxChars - used - (kept.length > 0 ? 1 : 0) - 1;
    let end = '';
    for (const ch of [...line].reverse()) {
      const next = safe(ch) + end;
      if (next.length > room) break;
      end = next;
    }
    if (end !== '') kept.unshift(`…${end}`);
    break;
  }
  return kept.join('\n');
}

/** A thread reply for a subtask that ended (SUCCESSFUL, FAILED or skipped). */
export function renderSubtaskReply(
  task: OcpTask,
  subtaskId: number,
  ctx: {
    hostNames: Record<number, string>;
    hostOfSubtask: Record<number, number>;
    log?: { log: string; error?: string };
  },
): Rendered {
  const s = task.subtasks.find((x) => x.id === subtaskId);
  if (!s) {
    const text = `Subtask ${subtaskId} is not part of task ${task.id}.`;
    return { text, blocks: [section(text)] };
  }
  const prefix = task.context.parallel
    ? (() => {
        const hostId = hostOf(task, s, ctx.hostOfSubtask);
        const name = hostId === undefined ? undefined : ctx.hostNames[hostId];
        return `${name ? escapeMrkdwn(name) : hostLabel(hostId, ctx.hostNames)} · `;
      })()
    : '';
  const ms = elapsedOf(s);
  const took = ms === undefined ? '' : ` in ${formatDuration(ms)}`;
  const name = `*${subtaskName(s)}*`;
  if (isSkipped(s)) {
    const text = `${SKIPPED_EMOJI} ${prefix}${name} skipped`;
    return { text, blocks: [section(text)] };
  }
  if (s.status !== 'FAILED') {
    const text = `${subtaskEmoji(s)} ${prefix}${name} ${s.status}${took}`;
    return { text, blocks: [section(text)] };
  }
  const error = ctx.log?.error ? `: ${clip(escapeMrkdwn(ctx.log.error.trim()), 1000)}` : '';
  const line = `${SUBTASK_EMOJI.FAILED} ${prefix}${name} FAILED${took}${error}`;
  const blocks: KnownBlock[] = [section(line)];
  const tail = ctx.log ? outputTail(ctx.log.log) : '';
  if (tail !== '') blocks.push(section(`\`\`\`\n${tail}\n\`\`\``));
  return { text: clip(line, 500), blocks };
}

/** The thread's last reply: SUCCESSFUL or FAILED, with the task's duration. */
export function renderFinalReply(task: OcpTask, ctx: { now: Date }): Rendered {
  const ms = elapsedOf(task, ctx.now);
  const took = ms === undefined ? '' : ` in ${formatDuration(ms)}`;
  const rolled =
    task.operation === 'ROLLBACK' ? (task.status === 'SUCCESSFUL' ? ' (rolled back)' : ' (rollback failed)') : '';
  let hosts = '';
  if (task.context.parallel) {
    const states = chainsOf(task).map((c) => chainState(c.subtasks));
    const failed = states.filter((s) => s === 'FAILED').length;
    hosts = failed > 0 ? ` — ${failed} of ${states.length} hosts failed` : ` — ${states.length} hosts`;
  }
  const text = `${TASK_EMOJI[task.status]} ${escapeMrkdwn(task.name)} ${task.status}${rolled}${took}${hosts}`;
  const blocks: KnownBlock[] = [section(text), context([`Task *${task.id}*`])];
  return { text, blocks };
}

/** The ephemeral answer to `status <taskId>`: the DAG state, with subtask ids. */
export function renderTaskStatus(
  task: OcpTask,
  ctx: { now: Date; hostNames: Record<number, string>; hostOfSubtask: Record<number, number> },
): Rendered {
  const title = `Task ${task.id}: ${titleOf(task, ctx.hostNames)}`;
  const facts = [`by ${who(task.creator)}`];
  const reason = task.context.stringMap.reason;
  if (reason) facts.push(`reason: ${escapeMrkdwn(reason)}`);
  facts.push(...selectorFact(task));
  facts.push(`started ${slackDate(task.startTime)}`);
  const ms = elapsedOf(task, ctx.now);
  if (ms !== undefined) facts.push(`${task.status === 'RUNNING' ? 'running for' : 'took'} ${formatDuration(ms)}`);
  if (task.operation !== 'EXECUTE') facts.push(`operation ${task.operation}`);
  if (task.context.parallel) facts.push(tally(chainsOf(task).map((c) => chainState(c.subtasks))));
  const head: KnownBlock[] = [section(`${TASK_EMOJI[task.status]} *${title}*`), context(facts)];
  return { text: title, blocks: [...head, ...taskBody(task, ctx, roomBeside(...head), true)] };
}

/** The ephemeral answer to `list` and `history <host>`: a line per task. */
export function renderTaskList(
  title: string,
  tasks: Array<Omit<OcpTask, 'subtasks'>>,
  ctx: { now: Date; labels?: Readonly<Record<string, string>> },
): Rendered {
  const labels = ctx.labels && labelsLine(ctx.labels);
  const top = section(`*${escapeMrkdwn(title)}*`);
  // A host's history: its labels under the title.
  const heads: KnownBlock[] = labels ? [top, context([labels])] : [top];
  if (tasks.length === 0) return { text: title, blocks: [...heads, section('No tasks.')] };
  const lines = tasks.map((t) => {
    const others = (t.context.listMap.host_ids?.length ?? 1) - 1;
    const host = `host ${t.hostId}${t.context.parallel && others > 0 ? ` +${others}` : ''}`;
    const start = parseTime(t.startTime);
    const ago = start === undefined ? '' : ` (${formatDuration(ctx.now.getTime() - start)} ago)`;
    const reason = t.context.stringMap.reason;
    const why = reason ? ` · “${escapeMrkdwn(clip(reason, 300))}”` : '';
    return `${TASK_EMOJI[t.status]} *${t.id}* ${escapeMrkdwn(t.name)} — ${host} — ${t.status} · by ${who(t.creator)} · started ${slackDate(t.startTime)}${ago}${why}`;
  });
  return {
    text: `${title}: ${tasks.length} tasks`,
    blocks: [...heads, ...packLines(lines, roomBeside(...heads), 'tasks')],
  };
}

const AGENT_EMOJI: Record<string, string> = {
  STARTED: ':white_check_mark:',
  STOPPED: ':red_circle:',
  PARTIAL: ':warning:',
};
const PROCESS_EMOJI: Record<string, string> = { RUNNING: ':white_check_mark:', STOPPED: ':red_circle:' };

/**
 * A host's labels as `key=value` pairs, clipped to fit a context element
 * (their characters, `[A-Za-z0-9._-]`, need no escaping); none: undefined.
 */
export function labelsLine(labels: Readonly<Record<string, string>>): string | undefined {
  const pairs = Object.entries(labels).map(([k, v]) => `\`${k}=${v}\``);
  return pairs.length === 0 ? undefined : clip(`labels ${pairs.join(' ')}`, 1000);
}

/** The ephemeral answer to `agent <host>`: the agent's processes. */
export function renderAgentStatus(s: {
  hostId: number;
  name: string;
  labels: Readonly<Record<string, string>>;
  installHome: string;
  status: string;
  processes: Array<{ name: string; pid: number | null; status: string }>;
}): Rendered {
  const title = `OCP agent on host ${s.hostId} (${escapeMrkdwn(s.name)}) — ${escapeMrkdwn(s.status)}`;
  const labels = labelsLine(s.labels);
  const head: KnownBlock[] = [
    section(`${AGENT_EMOJI[s.status] ?? ':grey_question:'} *${title}*`),
    context([`installed in \`${escapeMrkdwn(s.installHome.replaceAll('`', 'ˋ'))}\``, ...(labels ? [labels] : [])]),
  ];
  const lines = s.processes.map(
    (p) =>
      `${PROCESS_EMOJI[p.status] ?? ':grey_question:'} \`${escapeMrkdwn(p.name.replaceAll('`', 'ˋ'))}\`${p.pid === null ? '' : ` pid ${p.pid}`} — ${escapeMrkdwn(p.status)}`,
  );
  const body =
    lines.length > 0 ? packLines(lines, roomBeside(...head), 'processes') : [section('No agent processes reported.')];
  return { text: title, blocks: [...head, ...body] };
}

/** A count with thousands separators: 1,234. */
const count = (n: number) => n.toLocaleString('en-US');

/**
 * How many hosts, and over how many distinct clusters and zones (their
 * `cluster` and `zone` labels, when they have them): "1,234 hosts in 3
 * clusters, 9 zones".
 */
export function selectionSummary(hosts: ReadonlyArray<{ labels: Readonly<Record<string, string>> }>): string {
  const n = hosts.length;
  const spread = (['cluster', 'zone'] as const).flatMap((key) => {
    const values = new Set(hosts.flatMap((h) => (Object.hasOwn(h.labels, key) ? [h.labels[key]] : [])));
    return values.size === 0 ? [] : [`${count(values.size)} ${key}${values.size === 1 ? '' : 's'}`];
  });
  return `${count(n)} ${n === 1 ? 'host' : 'hosts'}${spread.length > 0 ? ` in ${spread.join(', ')}` : ''}`;
}

/** Hosts a selector's confirmation names; the rest are counted. */
export const SELECTION_SHOWN = 10;

/**
 * The confirmation asked before a batch, a selector (SPEC §10) or an
 * operation that always asks: what will run, on which hosts, with which
 * parameters and why; Confirm and Cancel carry `value`. For a selector, the
 * preview of what it matches: how many hosts over how many clusters and
 * zones, and the first few.
 */
export function renderConfirm(
  op: { summary: string; title: string },
  hosts: Array<{ id: number; name: string; labels?: Readonly<Record<string, string>> }>,
  request: {
    params?: Readonly<Record<string, string>>;
    /** A batch's rolling options (`canary`, `maxFailures`, `maxParallel`), shown as `name=value`. */
    options?: Readonly<Record<string, string>>;
    reason?: string | undefined;
    selector?: string;
  },
  value: string,
): Rendered {
  const n = hosts.length;
  const does = op.summary.charAt(0).toUpperCase() + op.summary.slice(1);
  const selected = request.selector !== undefined;
  const question = selected
    ? `${does} on ${selectionSummary(hosts.map((h) => ({ labels: h.labels ?? {} })))}?`
    : `${does} on ${n} ${n === 1 ? 'host' : 'hosts'}?`;
  const how =
    n === 1
      ? `The host runs the steps of ${escapeMrkdwn(op.title)}.`
      : `Each host runs the steps of ${escapeMrkdwn(op.title)}; hosts run in parallel, a few at a time, and a failing host does not stop the others.`;
  const params = Object.entries({ ...request.params, ...request.options }).map(
    ([k, v]) => `${escapeMrkdwn(k)}=${escapeMrkdwn(v)}`,
  );
  const matched = selected ? [`selector \`${escapeMrkdwn(clip(request.selector ?? '', 300))}\` matches them now`] : [];
  const head: KnownBlock[] = [
    section(`:warning: *${escapeMrkdwn(question)}* ${how}`),
    context([...matched, ...params, request.reason ? `reason: ${escapeMrkdwn(request.reason)}` : 'no reason given']),
  ];
  const actions: ActionsBlock = {
    type: 'actions',
    elements: [
      button('Confirm', ACTIONS.confirmBatch, value, { style: 'primary' }),
      button('Cancel', ACTIONS.cancelBatch, value),
    ],
  };
  const line = (h: { id: number; name: string }) => `\`${h.id}\` ${escapeMrkdwn(h.name)}`;
  if (selected && n > SELECTION_SHOWN) {
    const more = context([`… and ${count(n - SELECTION_SHOWN)} more hosts`]);
    const first = packLines(hosts.slice(0, SELECTION_SHOWN).map(line), roomBeside(...head, more, actions), 'hosts');
    return { text: question, blocks: [...head, ...first, more, actions] };
  }
  const body = packLines(hosts.map(line), roomBeside(...head, actions), 'hosts', undefined, ', ');
  return { text: question, blocks: [...head, ...body, actions] };
}
