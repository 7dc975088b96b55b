/**
 * What the store keeps per task: the OCP task, which configured step each
 * subtask runs (never a script: whoever can write the bucket must not be able
 * to make a host run anything), who asked and why, and the outbox: events not
 * yet known to be on the stream.
 *
 * Whoever stores a change then publishes the whole outbox, oldest first,
 * waiting for each publish; the stream drops repeats by message id. So events
 * reach the stream in seq order even when two processes change one task at
 * once, and events of a process that died after storing are published by the
 * next one to change the task (or to take its work over). Later changes trim
 * what their writer saw published.
 */
import type { TaskEvent } from '../contracts/events.js';
import type { OcpSubtask, OcpTask } from '../contracts/ocp-task.js';
import type { Origin } from '../contracts/origin.js';
import { isAtRest } from './dag.js';
import { diffEvents } from './events.js';
import type { BatchOptions } from './rolling.js';
import { formatOcpTime } from './time.js';

export type OutboxEvent = Omit<TaskEvent, 'task'>;

/**
 * A runbook step as a task was planned with it: which step of which configured
 * runbook, and a digest of what it rendered then (its name, timeout and script
 * for the hosts that share it). The executor renders the step again from the
 * configuration when it starts and runs that; a different digest means the
 * configuration changed since ("configuration changed", SPEC §9). The digest
 * detects change, it does not authenticate: what runs is always rendered from
 * the configuration, whatever the record says.
 */
export interface StepPlan {
  runbook: string;
  /** Index of the step in the runbook. */
  step: number;
  digest: string;
}

/** A subtask's step as stored: its host, and its plan as an index into the record's `plans`. */
export interface StoredStep {
  hostId: number;
  /** Absent in records of older versions, which held `script` instead. */
  plan?: number;
  /** Older versions: an index into `scripts`. Compared with what the configuration renders, never run. */
  script?: number;
}

export interface TaskRecord {
  task: OcpTask;
  /** Per subtask id. */
  steps: Record<string, StoredStep>;
  /**
   * Each distinct plan once: a fleet's hosts mostly share an agentHome, so a
   * 200-host batch holds 5 plans, not 1,000 (the record is rewritten on every
   * change). Absent in records of older versions.
   */
  plans?: StepPlan[];
  /**
   * Per host id, a digest of the host's settings a step depends on (where and
   * as whom it runs, what its script quotes in) when its steps were planned.
   * Per host rather than per step: a fleet's hosts all differ. Absent in
   * records of older versions.
   */
  hostDigests?: Record<string, string>;
  /** Older versions: each distinct rendered script. Never run (see StoredStep.script). */
  scripts?: string[];
  requestId: string;
  traceId: string;
  /**
   * Where the request came from, so a notifier answers there. Records of older
   * versions hold the Slack door's own shape; the store reads it as an Origin
   * (contracts/origin.ts).
   */
  origin?: Origin;
  /** Batch: chains that may run at once (config batch.maxParallel when created). */
  maxParallel?: number;
  /** Batch: its rolling options (core/rolling.ts), fixed when created; a batch stored in parts keeps them in its head. */
  options?: BatchOptions;
  /** Its operation is not exclusive: it takes no host lock and runs beside whoever holds one. */
  shared?: true;
  /** seq of the last event this task has produced. */
  eventSeq: number;
  /** Events up to this seq are known to be on the stream. */
  publishedSeq: number;
  /** Events not yet known to be published, oldest first. */
  outbox: OutboxEvent[];
  /** Tokens of the latest writes, newest last: a writer whose answer was lost looks for its own. */
  writes?: string[];
  /**
   * Set when read: a batch stored as a head and one record per host chain
   * (core/task-layout.ts), assembled into this record; never stored.
   */
  layout?: 'chains';
  /** Set when read: this record is only that chain of a batch (its `task.subtasks` are the chain's). */
  chain?: number;
}

/** A record as a change proposes it: what the store derives (event seq, outbox) left out. */
export type Draft = Omit<TaskRecord, 'eventSeq' | 'publishedSeq' | 'outbox'>;

/**
 * The record after `next.task` replaced `before.task` (or a new record's first
 * version): the change's events join the outbox, and events up to
 * `knownPublished` (what the writer saw the stream accept) leave it.
 */
export function recordChange(before: TaskRecord | undefined, next: Draft, now: Date, knownPublished = 0): TaskRecord {
  const events = diffEvents(before?.task, next.task, {
    at: formatOcpTime(now),
    traceId: next.traceId,
    lastSeq: before?.eventSeq ?? 0,
  }).map(({ task: _task, ...rest }) => rest);
  const publishedSeq = Math.max(before?.publishedSeq ?? 0, knownPublished);
  return {
    ...next,
    eventSeq: (before?.eventSeq ?? 0) + events.length,
    publishedSeq,
    outbox: [...(before?.outbox ?? []), ...events].filter((e) => e.seq > publishedSeq),
  };
}

/** What a planner decided for one subtask: its host and its plan. */
export interface PlannedRef {
  hostId: number;
  plan: StepPlan;
}

export type RecordSteps = Required<Pick<TaskRecord, 'steps' | 'plans' | 'hostDigests'>>;

/**
 * Set the plans of the given subtasks (new ones, or ones planned again) and
 * the digests of their hosts. Each distinct plan is stored once, and plans no
 * subtask uses any more are dropped. Steps of an older version that are not
 * planned again stay as they are (their script index is only ever compared).
 */
export function addSteps(
  stored: Pick<TaskRecord, 'steps' | 'plans' | 'hostDigests'>,
  planned: Record<string, PlannedRef>,
  hostDigests: Record<string, string>,
): RecordSteps {
  const oldPlans = stored.plans ?? [];
  const plans: StepPlan[] = [];
  const index = new Map<string, number>();
  const indexOf = (p: StepPlan): number => {
    const key = `${p.runbook}\u0000${p.step}\u0000${p.digest}`;
    let i = index.get(key);
    if (i === undefined) {
      i = plans.push(p) - 1;
      index.set(key, i);
    }
    return i;
  };
  const steps: Record<string, StoredStep> = {};
  for (const [id, step] of Object.entries(stored.steps)) {
    const mine = planned[id];
    const kept = step.plan === undefined ? undefined : oldPlans[step.plan];
    if (mine) steps[id] = { hostId: mine.hostId, plan: indexOf(mine.plan) };
    else if (kept) steps[id] = { hostId: step.hostId, plan: indexOf(kept) };
    else steps[id] = step;
  }
  for (const [id, mine] of Object.entries(planned)) {
    if (!steps[id]) steps[id] = { hostId: mine.hostId, plan: indexOf(mine.plan) };
  }
  return { steps, plans, hostDigests: { ...stored.hostDigests, ...hostDigests } };
}

/**
 * The outbox as full events, each carrying the task as it is now. A batch's
 * event carries only the subtask it is about (none for the task's own
 * events): with every subtask on every event, a fleet's events would grow with
 * hosts² (a 200-host batch: ~1 GB); the whole task is one API call away.
 */
export function outboxEvents(record: TaskRecord): TaskEvent[] {
  const { task } = record;
  if (!task.context.parallel) return record.outbox.map((e) => ({ ...e, task }));
  return record.outbox.map((e) => ({
    ...e,
    task: { ...task, subtasks: task.subtasks.filter((s) => s.id === e.subtaskId) },
  }));
}

function subtasksByHost(record: Pick<TaskRecord, 'task' | 'steps'>): Map<number, OcpSubtask[]> {
  const byHost = new Map<number, OcpSubtask[]>();
  for (const s of record.task.subtasks) {
    const hostId = record.steps[String(s.id)]?.hostId;
    if (hostId !== undefined) byHost.set(hostId, [...(byHost.get(hostId) ?? []), s]);
  }
  return byHost;
}

/** Hosts whose chain has nothing left to run (all of them once the task has ended). */
export function hostsAtRest(record: Pick<TaskRecord, 'task' | 'steps'>): number[] {
  const byHost = subtasksByHost(record);
  if (record.task.status !== 'RUNNING') return [...byHost.keys()];
  return [...byHost].filter(([, chain]) => isAtRest(chain)).map(([hostId]) => hostId);
}

/** Hosts whose chain still runs or waits to run. */
export function hostsStillToRun(record: Pick<TaskRecord, 'task' | 'steps'>): number[] {
  const resting = new Set(hostsAtRest(record));
  return [...subtasksByHost(record).keys()].filter((h) => !resting.has(h));
}
