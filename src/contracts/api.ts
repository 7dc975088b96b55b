/**
 * Inputs of the API's operations (HTTP bodies, path and query parameters, and
 * ocp.api.<name> payloads on NATS), as zod schemas.
 */
import { z } from 'zod';
import { BATCH_OPTION_FIELDS } from './batch-options.js';
import { hostIdList, oneOfHosts, oneWayToNameHosts } from './host-list.js';
import { TaskStatus } from './ocp-task.js';
import { type ParamSpec, paramsSchema } from './params.js';
import { SelectorAny, SelectorJson } from './selector.js';

/** Ids beyond 2^53 − 1 are valid Longs but never issued: they stand for "no such id". */
export const NEVER_ISSUED = -1;

/** An id for a message: the never-issued stand-in says what it stands for. */
export function idText(id: number): string {
  return id === NEVER_ISSUED ? '(beyond 2^53 - 1, never issued)' : String(id);
}

/**
 * An id as OCP takes it: `[1-9][0-9]*` within Long range, as a string (a path
 * segment) or a JSON number. So 0, -1, 0100, +1, 1e3, 1.5 and " " all fail.
 */
export const IdParam = z
  .union([z.string(), z.number()], { error: 'must be a positive integer id' })
  .transform((v, ctx) => {
    const text = typeof v === 'number' ? (Number.isSafeInteger(v) ? String(v) : '') : v;
    if (!/^[1-9][0-9]*$/.test(text) || BigInt(text) > 9223372036854775807n) {
      ctx.addIssue({ code: 'custom', message: 'must be a positive integer id ([1-9][0-9]*, at most 2^63 - 1)' });
      return z.NEVER;
    }
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : NEVER_ISSUED;
  });

const Creator = z.string().trim().min(1).max(128);
const Reason = z.string().max(500);

export const AgentInput = z
  .object({ hostId: IdParam, reason: Reason.optional(), creator: Creator.optional() })
  .strict();
/** OCP's batch restart: `hostIds`, or (ours, SPEC §10) a `selector`; never both. */
const BATCH_HOSTS = ['hostIds', 'selector'] as const;
export const BatchInput = z
  .strictObject({
    hostIds: hostIdList(IdParam).optional(),
    selector: SelectorJson.optional(),
    reason: Reason.optional(),
    creator: Creator.optional(),
    ...BATCH_OPTION_FIELDS,
  })
  .superRefine(oneWayToNameHosts(BATCH_HOSTS))
  .meta(oneOfHosts(BATCH_HOSTS));
export const TaskInput = z.object({ taskId: IdParam }).strict();
/** GET of a task: `subtasks=false` leaves its `subtasks` key out (a batch's head only, as listings show it). */
export const TaskGetInput = z
  .object({
    taskId: IdParam,
    subtasks: z
      .union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')], {
        error: 'must be true or false',
      })
      .optional(),
  })
  .strict();
export const SubtaskInput = z.object({ taskId: IdParam, subtaskId: IdParam }).strict();
const PageNumber = z.coerce.number().int().min(1).max(1_000_000);
export const ListInput = z
  .object({
    status: TaskStatus.optional(),
    hostId: IdParam.optional(),
    name: z.string().min(1).max(200).optional(),
    /** The task's creator, exactly: a Basic user, `slack:<user id>` or `nats:<creator>`. */
    creator: z.string().min(1).max(200).optional(),
    page: PageNumber.default(1),
    size: z.coerce.number().int().min(1).max(2000).default(10),
  })
  .strict();

export const HostInput = z.object({ hostId: IdParam }).strict();

/**
 * The hosts a selector matches (SPEC §10's preview): as text in a query string
 * (`selector=cluster=obcluster1,zone=z1`) or JSON over NATS; none: every host.
 */
export const HostListInput = z.strictObject({ selector: SelectorAny.optional() });

/**
 * What `op.<name>` takes (SPEC §8): one host, several (a batch) or a selector
 * (SPEC §10), the operation's parameters, a reason. Parameters are checked here, with the
 * rest of the input, before the caller's permission (SPEC §3's order).
 */
export function operationInput(params: Readonly<Record<string, ParamSpec>>) {
  return z
    .strictObject({
      hostId: IdParam.optional(),
      hostIds: hostIdList(IdParam).optional(),
      selector: SelectorJson.optional(),
      params: Object.keys(params).length === 0 ? paramsSchema(params).optional() : paramsSchema(params),
      reason: Reason.optional(),
      creator: Creator.optional(),
      // A batch's rolling options (SPEC §10); a single host ignores them.
      ...BATCH_OPTION_FIELDS,
    })
    .superRefine(oneWayToNameHosts())
    .meta(oneOfHosts());
}

/** The input of a built-in operation (no parameters), as published in docs/schemas/. */
export const BuiltinOperationInput = operationInput({});
