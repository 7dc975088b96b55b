/**
 * What the store keeps per task: the OCP task, how to run each subtask, who
 * asked and why, and the outbox: events not yet known to be on the stream.
 *
 * Whoever stores a change then publishes the whole outbox, oldest first,
 * waiting for each publish; the stream drops repeats by message id. So events
 * reach the stream in seq order even when two processes change one task at
 * once, and events of a process that died after storing are published by the
 * next one to change the task (or to take its work over). Later changes trim
 * what their writer saw published.
 */
import type { SlackOrigin, TaskEvent } from '../contracts/events.js';
import type { OcpSubtask, OcpTask } from '../contracts/ocp-task.js';
import { isAtRest } from './dag.js';
import { diffEvents } from './events.js';
import type { PlannedStep } from './task.js';
import { formatOcpTime } from './time.js';

export type OutboxEvent = Omit<TaskEvent, 'task'>;

/** A subtask's step as stored: its host, and its script as an index into the record's `scripts`. */
export interface StoredStep {
  hostId: number;
  script: number;
}

export interface TaskRecord {
  task: OcpTask;
  /** Per subtask id. */
  steps: Record<string, StoredStep>;
  /**
   * Each distinct script once: a fleet's hosts mostly share an agentHome, so a
   * 200-host batch holds 5 scripts, not 1,000 (the record is rewritten on every
   * change; the scripts were half of it).
   */
  scripts: string[];
  requestId: string;
  traceId: string;
  /** Where the request came from (Slack), so the notifier answers there. */
  origin?: SlackOrigin;
  /** Batch: chains that may run at once (config batch.maxParallel when created). */
  maxParallel?: number;
  /** seq of the last event this task has produced. */
  eventSeq: number;
  /** Events up to this seq are known to be on the stream. */
  publishedSeq: number;
  /** Events not yet known to be published, oldest first. */
  outbox: OutboxEvent[];
  /** Tokens of the latest writes, newest last: a writer whose answer was lost looks for its own. */
  writes?: string[];
}

type Draft = Omit<TaskRecord, 'eventSeq' | 'publishedSeq' | 'outbox'>;

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

/** Add planned steps to a record's steps and scripts (each distinct script stored once). */
export function addSteps(
  stored: Pick<TaskRecord, 'steps' | 'scripts'>,
  planned: Record<string, PlannedStep>,
): Pick<TaskRecord, 'steps' | 'scripts'> {
  const scripts = [...stored.scripts];
  const index = new Map(scripts.map((script, i) => [script, i]));
  const steps = { ...stored.steps };
  for (const [id, step] of Object.entries(planned)) {
    let i = index.get(step.script);
    if (i === undefined) {
      i = scripts.push(step.script) - 1;
      index.set(step.script, i);
    }
    steps[id] = { hostId: step.hostId, script: i };
  }
  return { steps, scripts };
}

/** How to run a subtask: its host and script, if the record has it. */
export function stepOf(record: TaskRecord, subtaskId: number): PlannedStep | undefined {
  const step = record.steps[String(subtaskId)];
  const script = step && record.scripts[step.script];
  return step && script !== undefined ? { hostId: step.hostId, script } : undefined;
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

function subtasksByHost(record: TaskRecord): Map<number, OcpSubtask[]> {
  const byHost = new Map<number, OcpSubtask[]>();
  for (const s of record.task.subtasks) {
    const hostId = record.steps[String(s.id)]?.hostId;
    if (hostId !== undefined) byHost.set(hostId, [...(byHost.get(hostId) ?? []), s]);
  }
  return byHost;
}

/** Hosts whose chain has nothing left to run (all of them once the task has ended). */
export function hostsAtRest(record: TaskRecord): number[] {
  const byHost = subtasksByHost(record);
  if (record.task.status !== 'RUNNING') return [...byHost.keys()];
  return [...byHost].filter(([, chain]) => isAtRest(chain)).map(([hostId]) => hostId);
}

/** Hosts whose chain still runs or waits to run. */
export function hostsStillToRun(record: TaskRecord): number[] {
  const resting = new Set(hostsAtRest(record));
  return [...subtasksByHost(record).keys()].filter((h) => !resting.has(h));
}
