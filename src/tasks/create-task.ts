/**
 * Create a task for a request: check the hosts, take their locks (all or
 * none), store the task, queue what may start. Every step is idempotent per requestId, so a request
 * redelivered after a crash finishes what the first attempt began and gets the
 * same answer; a request seen before gets its first answer again.
 */

import { findRunbook } from '../config.js';
import type { RequestHosts } from '../contracts/host-list.js';
import type { Origin } from '../contracts/origin.js';
import { paramsSchema } from '../contracts/params.js';
import { selectorText } from '../contracts/selector.js';
import {
  type BatchOptions,
  type BatchRequest,
  firstOpening,
  optionsStringMap,
  resolveBatchOptions,
} from '../core/rolling.js';
import { idsNeeded, planTask } from '../core/task.js';
import type { TaskRecord } from '../core/task-record.js';
import { CodedError, describeZodError, ErrorCode, errorBody } from '../errors.js';
import { batchTitle, findOperation, type OperationDef } from '../operations/registry.js';
import type { TaskDeps } from './deps.js';
import { hostOrThrow, hostsMatchingOrThrow } from './find-or-throw.js';
import { type Claim, claimHosts, releaseClaims } from './host-claims.js';
import { type RequestEntry, StoreOutcomeUnknown, TaskIdTaken } from './ports.js';
import { queueReady } from './queue-ready.js';
import { stepsOfPlan } from './step-plans.js';

/**
 * `hostIds`, or a `selector` resolved here against the inventory of the moment
 * (SPEC §10). One host makes a task of the operation's runbook; several make a batch.
 */
export type CreateTaskInput = RequestHosts & {
  /** The registry's name of the operation (SPEC §8): `restart`, or one of one's own. */
  operation: string;
  /** The operation's parameters, checked against its declaration here. */
  params?: Readonly<Record<string, unknown>>;
  creator: string;
  requestId: string;
  traceId: string;
  reason?: string;
  origin?: Origin;
  /** A batch's rolling options as the request gives them, over config `batch:` (SPEC §10); one host ignores them. */
  batch?: BatchRequest;
};

export interface Created {
  record: TaskRecord;
  /** The request had been answered before (same requestId): nothing new happened. */
  repeated: boolean;
}

/** A request answered before with a rejection; `repeated` tells the front door not to announce it twice. */
export class RepeatedRejection extends CodedError {}

/** A request accepted before whose task has since been removed from the store: answered already, nothing to do. */
export class RequestGone extends CodedError {
  constructor(taskId: number, requestId: string) {
    super(ErrorCode.taskNotFound, `task ${taskId} of request ${requestId} was removed from the store`, 'taskId');
  }
}

/** Fresh ids tried when a request's ids turn out to be taken by older tasks. */
const ID_ATTEMPTS = 5;

/** The registry's entry for `name`; an unknown one is 404 / 10002 (SPEC §8). */
export function operationOrThrow(deps: Pick<TaskDeps, 'config'>, name: string): OperationDef {
  const op = findOperation(deps.config.operations, name);
  if (!op) {
    const known = deps.config.operations.map((o) => o.name).join(', ');
    throw new CodedError(ErrorCode.notFound, `unknown operation ${name}; operations: ${known}`, 'operation');
  }
  return op;
}

/** An operation's parameters as its declaration takes them; a missing, unknown or bad one is 400 / 10001 naming it. */
export function checkParams(
  op: OperationDef,
  given: Readonly<Record<string, unknown>> | undefined,
): Record<string, string> {
  const parsed = paramsSchema(op.params).safeParse(given ?? {});
  if (parsed.success) return parsed.data;
  const named = { issues: parsed.error.issues.map((i) => ({ ...i, path: ['params', ...i.path] })) };
  const { message, field } = describeZodError(named, 'params');
  throw new CodedError(ErrorCode.badRequest, message, field);
}

export async function createTask(deps: TaskDeps, input: CreateTaskInput, attempt = 1): Promise<Created> {
  const op = operationOrThrow(deps, input.operation);
  const params = checkParams(op, input.params);
  const { selector } = input;
  const named =
    selector === undefined ? input.hostIds.map((id) => hostOrThrow(deps, id)) : hostsMatchingOrThrow(deps, selector);
  const runbook = findRunbook(deps.config, op.runbook);
  // Checked before anything is reserved: a refused request leaves nothing behind.
  optionsOrThrow(deps, input.batch, named.length);
  // What a selector matched is kept with the ids counted for it: a redelivery runs on the same hosts.
  const matched = selector === undefined ? undefined : named.map((h) => h.id);
  const entry = await reserve(deps, input.requestId, idsNeeded(runbook, named.length), matched);
  if (entry.state === 'rejected') {
    throw new RepeatedRejection(entry.error.code, entry.error.message, entry.error.target);
  }
  if (entry.state === 'accepted') {
    const stored = await deps.store.get(entry.taskId);
    if (stored) return { record: stored.record, repeated: true };
    throw new RequestGone(entry.taskId, input.requestId);
  }

  const hosts = entry.hostIds ? entry.hostIds.map((id) => hostOrThrow(deps, id)) : named;
  const taskId = entry.ids[0] as number;
  const batch = hosts.length > 1;
  const options = batch ? optionsOrThrow(deps, input.batch, hosts.length) : undefined;
  const maxParallel = options?.maxParallel;
  const plan = planTask({
    name: batch ? batchTitle(op.title) : op.title,
    // An operation of one's own names itself and its parameters in the task (SPEC §8); a selector shows as typed.
    stringMap: {
      ...(op.builtin ? {} : { ...params, operation: op.name }),
      ...(selector === undefined ? {} : { selector: selectorText(selector) }),
      ...(options ? optionsStringMap(options) : {}),
    },
    prohibitRollback: !op.rollback,
    runbook,
    hosts: hosts.map((h) => ({ id: h.id, agentHome: h.agentHome })),
    ids: entry.ids,
    creator: input.creator,
    executor: deps.address,
    now: deps.now(),
    // Only the chains that open first (the canary's, or maxParallel of them) are READY.
    ...(options ? { maxParallel: firstOpening(options, hosts.length) } : {}),
    ...(input.reason ? { reason: input.reason } : {}),
  });
  // Which configured step each subtask runs, and digests of what they render now: never the scripts.
  const steps = stepsOfPlan(deps.config, runbook.name, plan.steps, params);
  let claims: Claim[] = [];
  try {
    // An operation that is not exclusive (reading logs, say) runs beside whatever holds the host.
    if (op.exclusive) claims = await claimHosts(deps, hosts, taskId);
  } catch (err) {
    if (err instanceof CodedError) {
      // The origin stays with the rejection so the notifier can answer the requester.
      const origin = input.origin ? { origin: input.origin } : {};
      await deps.requests.settle(input.requestId, { state: 'rejected', error: errorBody(err), ...origin });
    }
    throw err;
  }

  let record: TaskRecord;
  try {
    record = await deps.store.create({
      task: plan.task,
      ...steps,
      requestId: input.requestId,
      traceId: input.traceId,
      ...(maxParallel === undefined ? {} : { maxParallel }),
      ...(options ? { options } : {}),
      ...(op.exclusive ? {} : { shared: true }),
      ...(input.origin ? { origin: input.origin } : {}),
    });
  } catch (err) {
    if (err instanceof TaskIdTaken && attempt < ID_ATTEMPTS) {
      // The id counter went back (its bucket was reset): this request's ids are an
      // old task's. Move the counter on (doubling: a few collisions find the end of
      // the ids in use) and start again with fresh ids; the locks named the old id.
      deps.logger.warn({ taskId, requestId: input.requestId }, 'task id in use by an older task; taking new ids');
      await releaseClaims(deps, claims, taskId);
      await deps.ids.skipPast(2 * taskId + 1000);
      await deps.requests.forget(input.requestId);
      return createTask(deps, input, attempt + 1);
    }
    // When the outcome is unknown the task may exist: its locks stay. Locks have
    // no max age; one whose task was never stored is replaced by the next
    // request once it is older than the lease (holderIsGone). Otherwise nothing
    // was stored, and this call frees what it took.
    if (!(err instanceof StoreOutcomeUnknown)) await releaseClaims(deps, claims, taskId).catch(() => undefined);
    throw err;
  }
  // Stored: from here the task is accepted and will run, whatever fails next.
  // Its events wait in the record's outbox and what is READY is queued again by
  // the sweeper (or this request's redelivery), so an error now must not turn
  // into an error answer for a task that runs anyway.
  try {
    await deps.store.publishOutbox(record);
    await queueReady(deps, record);
    await deps.requests.settle(input.requestId, { state: 'accepted', taskId });
  } catch (err) {
    deps.logger.warn(
      { taskId, requestId: input.requestId, traceId: input.traceId, err: (err as Error).message },
      'task stored; announcing or queueing it failed and is left to the sweeper',
    );
  }
  deps.logger.info(
    {
      taskId,
      ...(selector === undefined ? { hostIds: input.hostIds } : { selector: selectorText(selector) }),
      requestId: input.requestId,
      traceId: input.traceId,
    },
    'task created',
  );
  return { record, repeated: false };
}

/**
 * A batch's rolling options: the request's over config `batch:`, checked
 * against the batch's size; a bad one is 400 / 10001 naming its field.
 */
function optionsOrThrow(
  deps: Pick<TaskDeps, 'config'>,
  request: BatchRequest | undefined,
  hosts: number,
): BatchOptions {
  const resolved = resolveBatchOptions(deps.config.batch, request, hosts);
  if (!resolved.ok) throw new CodedError(ErrorCode.badRequest, resolved.problem.message, resolved.problem.field);
  return resolved.options;
}

/** The request's entry; a new request reserves its ids first, so a redelivery reuses them. */
async function reserve(
  deps: TaskDeps,
  requestId: string,
  idCount: number,
  hostIds: number[] | undefined,
): Promise<RequestEntry> {
  for (;;) {
    const existing = await deps.requests.get(requestId);
    if (existing) return existing;
    const entry: RequestEntry = {
      state: 'pending',
      ids: await deps.ids.take(idCount),
      ...(hostIds ? { hostIds } : {}),
    };
    if (await deps.requests.reserve(requestId, entry)) return entry;
    // else: a concurrent delivery won; read its entry
  }
}
