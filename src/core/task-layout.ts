/**
 * How a batch is stored: a head, a progress record and one record per host
 * chain (docs/ARCHITECTURE.md, "Batches of any size"), so that a change on one
 * host writes only that host's part. A single-host task (and every record of
 * an older version) stays one TaskRecord; `assemble` makes a batch's parts
 * into the same TaskRecord, so one code path reads both. Pure: no I/O.
 */
import type { TaskEvent } from '../contracts/events.js';
import type { OcpSubtask, OcpTask } from '../contracts/ocp-task.js';
import type { Origin } from '../contracts/origin.js';
import { isAtRest } from './dag.js';
import { diffEvents } from './events.js';
import type { BatchOptions, RollingState } from './rolling.js';
import type { OutboxEvent, StepPlan, StoredStep, TaskRecord } from './task-record.js';
import { formatOcpTime } from './time.js';

/** The task as listings show it: without its subtasks. */
export type TaskSummaryOf = Omit<OcpTask, 'subtasks'>;

export type { BatchOptions } from './rolling.js';

/** A record with its own event sequence and outbox (see task-record.ts). */
export interface Sequenced {
  eventSeq: number;
  publishedSeq: number;
  outbox: OutboxEvent[];
  /** Tokens of the latest writes, newest last: a writer whose answer was lost looks for its own. */
  writes?: string[];
}

/** `task.<id>` of a batch. */
export interface TaskHead extends Sequenced {
  layout: 'chains';
  task: TaskSummaryOf;
  requestId: string;
  traceId: string;
  origin?: Origin;
  shared?: true;
  plans: StepPlan[];
  /** How many chains: `task.<id>.c.0` … `task.<id>.c.<chains - 1>`. */
  chains: number;
  options: BatchOptions;
  /** Id of chain 0's first subtask, and the step between chains' first ids (chain j's is start + j × stride). */
  chainStart?: number;
  chainStride?: number;
  /** The progress's `pauseRev` the head's `stringMap.paused` shows: a slower pause or resume never undoes a later one. */
  pauseRev?: number;
}

/** `task.<id>.c.<idx>`: one host's chain. */
export interface ChainRecord extends Sequenced {
  taskId: number;
  idx: number;
  hostId: number;
  /** Digest of the host's settings when its steps were planned (see tasks/step-plans.ts). */
  hostDigest?: string;
  subtasks: OcpSubtask[];
  /** Per subtask (same order), its plan as an index into the head's plans. */
  plans: number[];
}

/** `task.<id>.p`: which chains may start, and which are at rest (bitmaps, hex). */
export interface Progress {
  opened: number;
  rested: string;
  failed: string;
  /** Paused by an operator: no chain opens until Resume (core/rolling.ts). */
  paused?: boolean;
  /** Canceled by an operator: no chain opens again; the batch ends once what runs has stopped. */
  canceled?: boolean;
  /** Counts every pause and resume, so the head shows the latest of racing ones. */
  pauseRev?: number;
  /**
   * The batch is being rolled back (set by the operation that reopened it):
   * kept here, read by compare-and-set, rather than judged from a head a
   * process may hold from before the rollback.
   */
  rollingBack?: boolean;
}

export function isHead(value: unknown): value is TaskHead {
  return (value as { layout?: unknown } | null)?.layout === 'chains';
}

// ---- bitmaps (hex, 4 chains a digit) ---------------------------------------

export function emptyBits(n: number): string {
  return '0'.repeat(Math.ceil(n / 4));
}

export function bitOf(bits: string, i: number): boolean {
  return ((Number.parseInt(bits[i >> 2] ?? '0', 16) >> (i & 3)) & 1) === 1;
}

export function withBits(bits: string, changes: ReadonlyMap<number, boolean>): string {
  const digits = bits.split('');
  for (const [i, on] of changes) {
    while (digits.length <= i >> 2) digits.push('0');
    const d = Number.parseInt(digits[i >> 2] ?? '0', 16);
    digits[i >> 2] = (on ? d | (1 << (i & 3)) : d & ~(1 << (i & 3))).toString(16);
  }
  return digits.join('');
}

const ONES = [0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4];

export function countBits(bits: string): number {
  let n = 0;
  for (const c of bits) n += ONES[Number.parseInt(c, 16)] ?? 0;
  return n;
}

/** What the rolling rules (core/rolling.ts) read of a batch: its head's options and operation, its progress. */
export function rollingStateOf(head: Pick<TaskHead, 'chains' | 'options' | 'task'>, p: Progress): RollingState {
  const canary = Math.min(head.options.canary ?? 0, head.chains);
  let canaryFailed = false;
  let canaryRested = true;
  for (let i = 0; i < canary; i++) {
    if (!bitOf(p.rested, i)) canaryRested = false;
    if (bitOf(p.failed, i)) canaryFailed = true;
  }
  return {
    chains: head.chains,
    opened: p.opened,
    rested: countBits(p.rested),
    failed: countBits(p.failed),
    canaryFailed,
    canaryRested,
    paused: p.paused === true,
    canceled: p.canceled === true,
    rollingBack: p.rollingBack ?? head.task.operation === 'ROLLBACK',
  };
}

// ---- from a whole record to parts, and back ---------------------------------

/** The chains of a record's subtasks, by parallelIdx, in order of first appearance. */
function chainsOf(task: OcpTask): Map<number, OcpSubtask[]> {
  const chains = new Map<number, OcpSubtask[]>();
  for (const s of task.subtasks) {
    const c = chains.get(s.parallelIdx);
    if (c) c.push(s);
    else chains.set(s.parallelIdx, [s]);
  }
  return chains;
}

/** The chain part of a record draft: its subtasks, their plans, its host. */
export function chainPartOf(
  record: Pick<TaskRecord, 'steps' | 'hostDigests'>,
  taskId: number,
  idx: number,
  subtasks: OcpSubtask[],
): Omit<ChainRecord, keyof Sequenced> {
  const first = subtasks[0] as OcpSubtask;
  const hostId = record.steps[String(first.id)]?.hostId as number;
  const digest = record.hostDigests?.[String(hostId)];
  return {
    taskId,
    idx,
    hostId,
    ...(digest === undefined ? {} : { hostDigest: digest }),
    subtasks,
    plans: subtasks.map((s) => record.steps[String(s.id)]?.plan ?? -1),
  };
}

export type HeadDraft = Omit<TaskHead, keyof Sequenced>;
export type ChainDraft = Omit<ChainRecord, keyof Sequenced>;

/** A batch record (as drafted) in parts: its head and its chains, by parallelIdx. */
export function splitDraft(
  record: Omit<TaskRecord, keyof Sequenced>,
  options: BatchOptions,
): { head: HeadDraft; chains: ChainDraft[] } {
  const { subtasks: _subtasks, ...summary } = record.task;
  const chains = [...chainsOf(record.task)].map(([idx, subtasks]) =>
    chainPartOf(record, record.task.id, idx, subtasks),
  );
  chains.sort((a, b) => a.idx - b.idx);
  return {
    head: {
      layout: 'chains',
      task: summary,
      requestId: record.requestId,
      traceId: record.traceId,
      ...(record.origin ? { origin: record.origin } : {}),
      ...(record.shared ? { shared: true as const } : {}),
      plans: record.plans ?? [],
      chains: chains.length,
      options,
    },
    chains,
  };
}

/**
 * A chain's first subtask shows READY once the progress has opened the chain
 * and no executor has taken it yet (the work item is its READY).
 */
function shownSubtasks(chain: ChainRecord, progress: Progress | undefined, running: boolean): OcpSubtask[] {
  if (!progress || !running || chain.idx >= progress.opened) return chain.subtasks;
  const first = chain.subtasks[0];
  if (first?.status !== 'PENDING' || first.upstreams.length > 0) return chain.subtasks;
  return [{ ...first, status: 'READY' }, ...chain.subtasks.slice(1)];
}

/** The whole TaskRecord of a batch, assembled from its parts (chains in index order). */
export function assemble(head: TaskHead, chains: readonly ChainRecord[], progress?: Progress): TaskRecord {
  const running = head.task.status === 'RUNNING';
  const subtasks: OcpSubtask[] = [];
  const steps: Record<string, StoredStep> = {};
  const hostDigests: Record<string, string> = {};
  for (const c of [...chains].sort((a, b) => a.idx - b.idx)) {
    const shown = shownSubtasks(c, progress, running);
    shown.forEach((s, i) => {
      subtasks.push(s);
      const plan = c.plans[i] ?? -1;
      steps[String(s.id)] = plan < 0 ? { hostId: c.hostId } : { hostId: c.hostId, plan };
    });
    if (c.hostDigest !== undefined) hostDigests[String(c.hostId)] = c.hostDigest;
  }
  return {
    task: { ...head.task, subtasks },
    steps,
    plans: head.plans,
    hostDigests,
    requestId: head.requestId,
    traceId: head.traceId,
    ...(head.origin ? { origin: head.origin } : {}),
    ...(head.options.maxParallel === undefined ? {} : { maxParallel: head.options.maxParallel }),
    options: head.options,
    ...(head.shared ? { shared: true as const } : {}),
    eventSeq: head.eventSeq,
    publishedSeq: head.publishedSeq,
    outbox: head.outbox,
  };
}

/**
 * One chain seen as a task record of its own: the head's task with only the
 * chain's subtasks. The pure functions of task.ts and step-plans.ts work on it
 * as on a whole task; the store keeps only what changed of the chain.
 */
export function chainScoped(head: TaskHead, chain: ChainRecord): TaskRecord {
  // The chain's record is the truth for the chain; the head's status (ended, or
  // reopened since) is not the chain's to judge: a chain runs while it has work.
  const { finishTime: _f, ...task } = head.task;
  return assemble({ ...head, task: { ...task, status: 'RUNNING' } }, [chain]);
}

/** Whether a chain has nothing left to run. */
export function chainAtRest(subtasks: readonly OcpSubtask[]): boolean {
  return isAtRest(subtasks);
}

/** A chain at rest failed when its last run left a subtask FAILED (a rollback: one of its rollback steps). */
export function chainFailed(subtasks: readonly OcpSubtask[], rollingBack: boolean): boolean {
  const judged = rollingBack ? subtasks.filter((s) => s.operation === 'ROLLBACK') : subtasks;
  return !judged.every((s) => s.status === 'SUCCESSFUL');
}

// ---- events ---------------------------------------------------------------

/** Events of a batch that no status change shows: an operator paused or resumed it (SPEC §10). */
export type HeadNote = 'task.paused' | 'task.resumed';

/** The head after its task changed: task events join its outbox (and `note`, after them). */
export function headChange<H extends HeadDraft>(
  before: TaskHead | undefined,
  next: H,
  now: Date,
  knownPublished = 0,
  note?: HeadNote,
): H & Sequenced {
  const asTask = (h: Pick<TaskHead, 'task'>): OcpTask => ({ ...h.task, subtasks: [] });
  const at = formatOcpTime(now);
  const lastSeq = before?.eventSeq ?? 0;
  const events: OutboxEvent[] = diffEvents(before && asTask(before), asTask(next), {
    at,
    traceId: next.traceId,
    lastSeq,
  }).map(({ task: _task, ...rest }) => rest);
  if (note) {
    const seq = lastSeq + events.length + 1;
    events.push({ type: note, taskId: next.task.id, status: next.task.status, at, traceId: next.traceId, seq });
  }
  return sequenced(before, next, events, knownPublished);
}

/** The chain after its subtasks changed: subtask events (with `chain`) join its outbox. */
export function chainChange<C extends ChainDraft>(
  before: ChainRecord | undefined,
  next: C,
  meta: { now: Date; traceId: string; knownPublished?: number },
): C & Sequenced {
  const old = new Map(before?.subtasks.map((s) => [s.id, s]) ?? []);
  const at = formatOcpTime(meta.now);
  let seq = before?.eventSeq ?? 0;
  const events: OutboxEvent[] = [];
  for (const s of next.subtasks) {
    const prev = old.get(s.id);
    if (!before && s.status === 'PENDING') continue;
    if (prev && prev.status === s.status && prev.runTime === s.runTime) continue;
    seq += 1;
    events.push({
      type: `subtask.${s.status.toLowerCase()}`,
      taskId: next.taskId,
      subtaskId: s.id,
      chain: next.idx,
      status: s.status,
      at,
      traceId: meta.traceId,
      seq,
    });
  }
  return sequenced(before, next, events, meta.knownPublished ?? 0);
}

function sequenced<T extends object>(
  before: Sequenced | undefined,
  next: T,
  events: OutboxEvent[],
  knownPublished: number,
): T & Sequenced {
  const publishedSeq = Math.max(before?.publishedSeq ?? 0, knownPublished);
  const { writes } = next as { writes?: string[] };
  return {
    ...next,
    eventSeq: (before?.eventSeq ?? 0) + events.length,
    publishedSeq,
    outbox: [...(before?.outbox ?? []), ...events].filter((e) => e.seq > publishedSeq),
    ...(writes ? { writes } : {}),
  };
}

/** A batch's events as published: the head's task with only the event's subtask and host. */
export function headEvents(head: TaskHead): TaskEvent[] {
  const task: OcpTask = { ...head.task, context: { ...head.task.context, listMap: {} }, subtasks: [] };
  return head.outbox.map((e) => ({ ...e, task }));
}

export function chainEvents(head: Pick<TaskHead, 'task'>, chain: ChainRecord): TaskEvent[] {
  const context = { ...head.task.context, listMap: { host_ids: [String(chain.hostId)] } };
  return chain.outbox.map((e) => ({
    ...e,
    task: { ...head.task, context, subtasks: chain.subtasks.filter((s) => s.id === e.subtaskId) },
  }));
}

/** Message id of an event: per task, or per chain of a batch. */
export function eventMsgId(e: Pick<TaskEvent, 'taskId' | 'seq'> & { chain?: number }): string {
  return e.chain === undefined ? `task-${e.taskId}-event-${e.seq}` : `task-${e.taskId}-c${e.chain}-event-${e.seq}`;
}
