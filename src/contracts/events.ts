/**
 * Every NATS payload, as zod schemas (SPEC §5). Types come from z.infer.
 */
import { z } from 'zod';
import { BATCH_OPTION_FIELDS } from './batch-options.js';
import { hostIdList, oneOfHosts, oneWayToNameHosts } from './host-list.js';
import { Id, OcpTask, SubtaskStatus, TaskStatus } from './ocp-task.js';
import { SelectorJson } from './selector.js';

/** `[A-Za-z0-9_-]{1,64}` (SPEC §5). */
export const RequestId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match [A-Za-z0-9_-]{1,64}');

/** A Long id given as a JSON number or as a decimal string without sign or leading zero. */
export const HostIdInput = z.union(
  [
    Id,
    z
      .string()
      .regex(/^[1-9][0-9]{0,15}$/, 'must be a positive integer')
      .transform(Number)
      .pipe(Id),
  ],
  { error: 'must be a positive integer host id (a number, or digits in a string)' },
);

/** Where a Slack request came from, so answers go back there. */
export const SlackOrigin = z.object({
  kind: z.literal('slack'),
  teamId: z.string().max(32).optional(),
  channelId: z.string().regex(/^[CGD][A-Z0-9]+$/, 'must be a Slack channel id'),
  userId: z.string().regex(/^[UW][A-Z0-9]+$/, 'must be a Slack user id'),
  responseUrl: z.url().max(512).optional(),
  triggerId: z.string().max(128).optional(),
});
export type SlackOrigin = z.infer<typeof SlackOrigin>;

/**
 * Request ids the service makes itself: `api-<uuid>` (HTTP and ocp.api.*),
 * `slack-<trigger_id>` (Slack) and `msg-<stream sequence>` (a command that
 * brought none). A request found under its id is answered with what that id
 * made, so a publisher who took one of these first would answer — and so
 * swallow — someone else's request (`msg-<n>` is easy to guess).
 */
const RESERVED_REQUEST_ID_PREFIXES = ['api-', 'slack-', 'msg-'] as const;

/** A request id a publisher on ocp.cmd.* may choose: not one the service makes. */
export const PublisherRequestId = z
  .string()
  .regex(
    new RegExp(`^(?!${RESERVED_REQUEST_ID_PREFIXES.join('|')})[A-Za-z0-9_-]{1,64}$`),
    `must match [A-Za-z0-9_-]{1,64} and not begin with ${RESERVED_REQUEST_ID_PREFIXES.join(', ')} (the service makes those ids itself)`,
  );

/** The hosts of a request: one host, several (a batch), or a selector; one way only (SPEC §8, §10). */
const HostIdsInput = hostIdList(HostIdInput);

/** An operation's parameters as sent; each is checked against the operation's declaration on intake. */
const ParamsInput = z.record(z.string().max(64), z.string().max(256));

/**
 * ocp.cmd.agent.<op> and ocp.cmd.op.<name>: a request from a NATS publisher,
 * recorded as nats:<creator>.
 */
export const AgentCommand = z
  .object({
    hostId: HostIdInput.optional(),
    hostIds: HostIdsInput.optional(),
    selector: SelectorJson.optional(),
    params: ParamsInput.optional(),
    // A batch's rolling options (SPEC §10); a single host ignores them.
    ...BATCH_OPTION_FIELDS,
    creator: z.string().trim().min(1).max(128),
    requestId: PublisherRequestId.optional(),
    reason: z.string().max(500).optional(),
    /**
     * Refused: only the Slack door (its own subject, which publishers may not
     * use) says a request comes from a Slack user. Accepted here, anyone who may
     * publish a command could have the notifier post in any channel as anyone.
     */
    origin: z
      .never({
        error: 'not accepted on ocp.cmd.*: a NATS request is recorded as nats:<creator>; only Slack sets an origin',
      })
      .describe('not accepted: a request over NATS is recorded as nats:<creator> (10001 naming origin)')
      .optional(),
  })
  .superRefine(oneWayToNameHosts())
  .meta(oneOfHosts());
export type AgentCommand = z.infer<typeof AgentCommand>;

/**
 * ocp.door.slack.op.<name>: a request from the Slack front door, on a subject
 * (and stream, OCP_DOOR) of its own that publishers are not given; the
 * creator is recorded as slack:<user id>.
 */
export const SlackDoorCommand = z
  .object({
    hostId: HostIdInput.optional(),
    hostIds: HostIdsInput.optional(),
    selector: SelectorJson.optional(),
    params: ParamsInput.optional(),
    ...BATCH_OPTION_FIELDS,
    requestId: RequestId,
    reason: z.string().max(500).optional(),
    origin: SlackOrigin,
  })
  .superRefine(oneWayToNameHosts())
  .meta(oneOfHosts());
export type SlackDoorCommand = z.infer<typeof SlackDoorCommand>;

export const ErrorPayload = z.object({ code: z.number().int(), message: z.string() });

export const RequestEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('accepted'), requestId: z.string(), taskId: Id, task: OcpTask }),
  z.object({ type: z.literal('rejected'), requestId: z.string(), error: ErrorPayload }),
]);
export type RequestEvent = z.infer<typeof RequestEvent>;

const taskEventType = z.enum([
  // A batch paused or resumed by an operator (SPEC §10): `status` is the task's, RUNNING.
  'task.paused',
  'task.resumed',
  ...TaskStatus.options.map((s) => `task.${s.toLowerCase()}` as const),
  ...SubtaskStatus.options.map((s) => `subtask.${s.toLowerCase()}` as const),
] as [string, ...string[]]);

export const TaskEvent = z.object({
  type: taskEventType,
  taskId: Id,
  subtaskId: Id.optional(),
  /**
   * A batch's subtask event: its host chain (the subtask's parallelIdx). A
   * batch numbers the events of each chain on their own (and the task's own
   * events on theirs): `seq` orders the events of one chain.
   */
  chain: z.number().int().nonnegative().optional(),
  status: z.union([TaskStatus, SubtaskStatus]),
  /** OCP timestamp of the change. */
  at: z.string(),
  traceId: z.string(),
  /**
   * Position of this event in the task's history, from 1; consumers can check
   * order. A batch: in its chain's history (`chain`), or the task's own.
   */
  seq: z.number().int().positive(),
  /** The task at the change; a batch's (context.parallel) holds only this event's subtask, if any. */
  task: OcpTask,
});
export type TaskEvent = z.infer<typeof TaskEvent>;

/**
 * "Run this subtask's host chain, from this run of it": one message per chain
 * run, on the work queue. `chain`: a batch's chain (stored on its own).
 */
export const WorkItem = z.object({
  taskId: Id,
  subtaskId: Id,
  runTime: z.number().int().positive(),
  chain: z.number().int().nonnegative().optional(),
});
export type WorkItem = z.infer<typeof WorkItem>;
