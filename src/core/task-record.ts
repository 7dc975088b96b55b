/**
 * What the store keeps per task: the OCP task, how to run each subtask, who
 * asked and why, and the events of the latest change (the outbox), which are
 * published after the change is stored and published again, deduplicated, by
 * whoever takes over from a process that died in between.
 */
import type { TaskEvent } from '../contracts/events.js';
import type { OcpTask } from '../contracts/ocp-task.js';
import { diffEvents } from './events.js';
import type { PlannedStep } from './task.js';
import { formatOcpTime } from './time.js';

/** Where a request came from, so notifiers know where to answer. */
export type Origin = Record<string, string>;

export type OutboxEvent = Omit<TaskEvent, 'task'>;

export interface TaskRecord {
  task: OcpTask;
  steps: Record<string, PlannedStep>;
  requestId: string;
  traceId: string;
  origin?: Origin;
  /** seq of the last event this task has produced. */
  eventSeq: number;
  outbox: OutboxEvent[];
}

/** The record after `task` replaced `before.task` (or a new record's first version). */
export function recordChange(
  before: TaskRecord | undefined,
  next: Omit<TaskRecord, 'eventSeq' | 'outbox'>,
  now: Date,
): TaskRecord {
  const events = diffEvents(before?.task, next.task, {
    at: formatOcpTime(now),
    traceId: next.traceId,
    lastSeq: before?.eventSeq ?? 0,
  });
  const outbox = events.map(({ task: _task, ...rest }) => rest);
  return { ...next, eventSeq: before ? before.eventSeq + outbox.length : outbox.length, outbox };
}

/** The outbox as full events, each carrying the task as it is now. */
export function outboxEvents(record: TaskRecord): TaskEvent[] {
  return record.outbox.map((e) => ({ ...e, task: record.task }));
}
