/** What task operations need, passed in by the composition root. */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { StepRunner } from '../executor/ports.js';
import type { EnqueueWork, HostLocks, IdAllocator, RequestLog, SubtaskLogs, TaskIndex, TaskStore } from './ports.js';

export interface TaskDeps {
  config: Config;
  store: TaskStore;
  /** Every task without subtasks, for listings (a watch, started on first use). */
  index: TaskIndex;
  locks: HostLocks;
  ids: IdAllocator;
  requests: RequestLog;
  logs: SubtaskLogs;
  enqueue: EnqueueWork;
  /** Names this store in run keys on hosts (see storeEpoch). */
  epoch: string;
  /** Largest NATS message the server takes (bytes): a task must fit in one. */
  maxPayload: number;
  /** Address of this process, shown as a task's `executor`. */
  address: string;
  logger: Logger;
  now(): Date;
}

/** What the API needs besides: the step runner (cancel, the agent's status). */
export interface OperationDeps extends TaskDeps {
  runner: StepRunner;
}
