/**
 * Block Kit for a batch of any size (SPEC §10 "Slack, for a batch"): one live
 * parent — counts per state, a progress bar, the time left, the failed hosts
 * (the first 20, then "+N more") — and thread replies for the canary's
 * outcome, for failures grouped by error, and for the end; never one per
 * host. Pure: the notifier gathers a BatchView and calls these. What a
 * message holds grows with the failures shown, never with the batch's size.
 */
import type { ActionsBlock, Button, KnownBlock } from '@slack/types';
import type { TaskStatus } from '../contracts/ocp-task.js';
import {
  ACTIONS,
  type ButtonValue,
  batchControls,
  clip,
  escapeMrkdwn,
  formatDuration,
  LIMITS,
  type Rendered,
  viewTaskLink,
} from './render-blocks.js';

/** Failed hosts named in the parent; the rest are counted. */
export const FAILED_SHOWN = 20;
/** Cells of the progress bar. */
const BAR_CELLS = 20;
/** Longest error text kept per failed host or group. */
const ERROR_CHARS = 200;

export interface FailedHost {
  hostId: number;
  /** Its name in the inventory, when it is still there. */
  name?: string;
  /** Why its chain failed, as its log ends ("exit code 1: …"). */
  error: string;
  /** Its subtask that failed (the parent's Skip button skips the first failed host's). */
  subtaskId?: number;
}

/** A batch as its parent shows it: counts of hosts, never its subtasks. */
export interface BatchView {
  taskId: number;
  name: string;
  status: TaskStatus;
  /** Who asked, as mrkdwn (`<@U123>`) or as text. */
  requester: string;
  reason?: string;
  /** Epoch ms the batch began. */
  startedAt: number;
  /** Epoch ms it ended, when it has. */
  finishedAt?: number;
  hosts: number;
  /** Hosts by where their chain is: every host counted once. */
  counts: { successful: number; failed: number; running: number; pending: number };
  /** Failed hosts in request order; the first FAILED_SHOWN at least, when that many failed. */
  failed: readonly FailedHost[];
  paused?: boolean;
  /** The selector that named the hosts, when one did ("cluster=obcluster1"). */
  selector?: string;
  /** context.stringMap.prohibit_rollback: a failed batch offers no Rollback. */
  prohibitRollback?: boolean;
  /** `web.publicUrl`: the parent links to the batch's page there (SPEC §12). */
  publicUrl?: string;
}

const number = (n: number) => n.toLocaleString('en-US');
const percent = (part: number, whole: number) => (whole === 0 ? 0 : Math.floor((part * 100) / whole));

/** "▰▰▰▰▰▱▱▱▱▱ 52%": the share of hosts at rest (succeeded or failed). */
export function progressBar(done: number, total: number): string {
  const filled = total === 0 ? BAR_CELLS : Math.min(BAR_CELLS, Math.floor((done * BAR_CELLS) / total));
  return `${'▰'.repeat(filled)}${'▱'.repeat(BAR_CELLS - filled)} ${percent(done, total)}%`;
}

/**
 * The time left at the pace so far (hosts at rest per ms since the start);
 * undefined before any host came to rest, or once none is left.
 */
export function timeLeftMs(v: Pick<BatchView, 'counts' | 'hosts' | 'startedAt'>, now: number): number | undefined {
  const done = v.counts.successful + v.counts.failed;
  const left = v.hosts - done;
  if (done === 0 || left <= 0) return undefined;
  return Math.round(((now - v.startedAt) / done) * left);
}

function hostName(h: FailedHost): string {
  return h.name ? `${h.hostId} (${escapeMrkdwn(h.name)})` : String(h.hostId);
}

const STATUS_EMOJI: Record<TaskStatus, string> = {
  RUNNING: ':hourglass_flowing_sand:',
  SUCCESSFUL: ':white_check_mark:',
  FAILED: ':x:',
};

/** The batch's parent message, kept current with chat.update. */
export function renderBatchParent(v: BatchView, now: number): Rendered {
  const { counts } = v;
  const done = counts.successful + counts.failed;
  const state = v.status === 'RUNNING' && v.paused ? 'PAUSED' : v.status;
  const title = `${escapeMrkdwn(v.name)} — ${number(v.hosts)} hosts — ${state}`;
  const facts = [`Task *${v.taskId}*`, `asked by ${v.requester}`];
  if (v.selector) facts.push(`selector: \`${escapeMrkdwn(clip(v.selector, 200))}\``);
  if (v.reason) facts.push(`reason: ${escapeMrkdwn(clip(v.reason, 500))}`);
  if (v.publicUrl) facts.push(viewTaskLink(v.publicUrl, v.taskId));
  const tallies = [
    `${number(counts.successful)} :white_check_mark: succeeded`,
    `${number(counts.failed)} :x: failed`,
    `${number(counts.running)} :hourglass_flowing_sand: running`,
    `${number(counts.pending)} :white_circle: waiting`,
  ];
  const left = v.status === 'RUNNING' ? timeLeftMs(v, now) : undefined;
  const timing =
    v.finishedAt !== undefined
      ? `took ${formatDuration(v.finishedAt - v.startedAt)}`
      : `running ${formatDuration(now - v.startedAt)}${left === undefined ? '' : ` · about ${formatDuration(left)} left`}`;
  const blocks: KnownBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `${STATUS_EMOJI[v.status]} *${title}*` } },
    { type: 'context', elements: facts.map((text) => ({ type: 'mrkdwn', text })) },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `\`${progressBar(done, v.hosts)}\` ${number(done)} of ${number(v.hosts)} hosts done · ${timing}\n${tallies.join(' · ')}`,
      },
    },
  ];
  if (counts.failed > 0) {
    const shown = v.failed.slice(0, FAILED_SHOWN);
    const lines = shown.map((h) => `:x: ${hostName(h)} — ${escapeMrkdwn(clip(h.error, ERROR_CHARS))}`);
    const more = counts.failed - shown.length;
    if (more > 0) lines.push(`+${number(more)} more`);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(`*Failed hosts*\n${lines.join('\n')}`, 3000) } });
  }
  const actions = batchActions(v);
  if (actions) blocks.push(actions);
  return { text: `${title} (${number(done)} of ${number(v.hosts)} done)`, blocks };
}

const button = (text: string, actionId: string, value: ButtonValue, style?: 'danger'): Button => ({
  type: 'button',
  text: { type: 'plain_text', text: clip(text, LIMITS.buttonText) },
  action_id: actionId,
  value: JSON.stringify(value),
  ...(style ? { style } : {}),
});

/**
 * A running batch's buttons: Pause or Resume, and Cancel. A failed batch's, as
 * a single task's: Retry (which also starts the hosts never started), Skip
 * (the first failed host's step), Rollback.
 */
function batchActions(v: BatchView): ActionsBlock | undefined {
  if (v.status === 'RUNNING')
    return { type: 'actions', elements: batchControls(v.taskId, v.status, v.paused === true) };
  if (v.status !== 'FAILED') return undefined;
  const skip = v.failed.find((h) => h.subtaskId !== undefined)?.subtaskId;
  const elements: Button[] = [button('Retry', ACTIONS.retry, { taskId: v.taskId })];
  if (skip !== undefined) elements.push(button('Skip', ACTIONS.skip, { taskId: v.taskId, subtaskId: skip }));
  if (!v.prohibitRollback) elements.push(button('Rollback', ACTIONS.rollback, { taskId: v.taskId }, 'danger'));
  return { type: 'actions', elements };
}

/** Failures grouped by their error, biggest group first, each naming its first hosts. */
export function groupFailures(failed: readonly FailedHost[]): Array<{ error: string; hosts: FailedHost[] }> {
  const groups = new Map<string, FailedHost[]>();
  for (const h of failed) {
    const key = clip(h.error.trim(), ERROR_CHARS);
    groups.set(key, [...(groups.get(key) ?? []), h]);
  }
  return [...groups].map(([error, hosts]) => ({ error, hosts })).sort((a, b) => b.hosts.length - a.hosts.length);
}

/** Hosts named per group of a failure reply. */
const HOSTS_PER_GROUP = 10;
/** Groups shown per failure reply; the rest are counted. */
const GROUPS_SHOWN = 10;

/** Lines of failures grouped by error: the biggest groups, each naming its first hosts. */
function groupLines(failed: readonly FailedHost[]): string[] {
  const groups = groupFailures(failed);
  const lines = groups.slice(0, GROUPS_SHOWN).map(({ error, hosts }) => {
    const named = hosts.slice(0, HOSTS_PER_GROUP).map(hostName).join(', ');
    const more = hosts.length > HOSTS_PER_GROUP ? ` and ${number(hosts.length - HOSTS_PER_GROUP)} more` : '';
    return `:x: *${number(hosts.length)} host${hosts.length === 1 ? '' : 's'}*: ${escapeMrkdwn(error)}\n${named}${more}`;
  });
  const rest = groups.length - GROUPS_SHOWN;
  if (rest > 0) lines.push(`+${number(rest)} other errors`);
  return lines;
}

/** A thread reply for hosts that failed since the last one, grouped by error. */
export function renderFailureReply(failed: readonly FailedHost[]): Rendered {
  const text = `${number(failed.length)} host${failed.length === 1 ? '' : 's'} failed`;
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: clip(`*${text}*\n${groupLines(failed).join('\n')}`, 3000) } },
    ],
  };
}

/** A thread reply for the canary's outcome: the rest start, or the batch stops. */
export function renderCanaryReply(c: { canary: number; failed: readonly FailedHost[]; rest: number }): Rendered {
  const text =
    c.failed.length === 0
      ? `Canary passed: ${number(c.canary)} host${c.canary === 1 ? '' : 's'} succeeded; the other ${number(c.rest)} start now`
      : `Canary failed on ${c.failed.map(hostName).slice(0, HOSTS_PER_GROUP).join(', ')}: the other ${number(c.rest)} hosts do not start (Retry resumes them)`;
  const emoji = c.failed.length === 0 ? ':white_check_mark:' : ':x:';
  return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: clip(`${emoji} ${text}`, 3000) } }] };
}

/**
 * The thread's last reply: how the batch ended, in counts, with the failed
 * hosts no earlier reply named (`unnamed`, grouped by error; `more` of them
 * beyond those counted only).
 */
export function renderBatchEnd(v: BatchView, left: { unnamed?: readonly FailedHost[]; more?: number } = {}): Rendered {
  const took = v.finishedAt === undefined ? '' : ` in ${formatDuration(v.finishedAt - v.startedAt)}`;
  const never = v.counts.pending > 0 ? `; ${number(v.counts.pending)} never started (Retry resumes them)` : '';
  const text = `${STATUS_EMOJI[v.status]} ${escapeMrkdwn(v.name)} ${v.status}${took}: ${number(v.counts.successful)} of ${number(v.hosts)} hosts succeeded, ${number(v.counts.failed)} failed${never}`;
  const blocks: KnownBlock[] = [{ type: 'section', text: { type: 'mrkdwn', text: clip(text, 3000) } }];
  const unnamed = left.unnamed ?? [];
  const more = left.more ?? 0;
  if (unnamed.length > 0) {
    const lines = groupLines(unnamed);
    if (more > 0) lines.push(`+${number(more)} more failed hosts (the parent counts them)`);
    const head = `*${number(unnamed.length + more)} host${unnamed.length + more === 1 ? '' : 's'} failed since the last reply*`;
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(`${head}\n${lines.join('\n')}`, 3000) } });
  }
  return { text, blocks };
}
