/**
 * The consumer of ocp.cmd.agent.<op> (NATS publishers) and of
 * ocp.door.slack.agent.<op> (the Slack front door): each request becomes a
 * task or a rejection, announced once on ocp.events.request.<requestId>. An
 * invalid payload is rejected (10001) and terminated, never redelivered
 * forever. Which door a request came through is the subject's word, never the
 * payload's: from NATS the creator is nats:<creator>, and only the Slack door
 * (a subject publishers are not given) sets a Slack user and channel.
 */
import { type JetStreamClient, type JsMsg, headers as natsHeaders } from 'nats';
import {
  AGENT_OPERATIONS,
  AgentCommand,
  type AgentOperation,
  PublisherRequestId,
  RequestEvent,
  RequestId,
  SlackDoorCommand,
} from '../contracts/events.js';
import { originFromSlack } from '../contracts/origin.js';
import { asCodedError, CodedError, describeZodError, ErrorCode } from '../errors.js';
import { createTask, RepeatedRejection, RequestGone } from '../tasks/create-task.js';
import type { TaskDeps } from '../tasks/deps.js';
import { traceIdFrom } from '../trace-id.js';
import { encodeJson } from './kv-json.js';
import { SUBJECTS } from './streams.js';

export const INVALID_REQUEST_ID = 'invalid';

async function publishRequestEvent(js: JetStreamClient, event: RequestEvent, traceId: string): Promise<void> {
  const h = natsHeaders();
  h.set('X-Trace-Id', traceId);
  await js.publish(SUBJECTS.requestEvent(event.requestId), encodeJson(RequestEvent.parse(event)), {
    // one event per request: a redelivered request does not announce twice
    msgID: event.requestId === INVALID_REQUEST_ID ? undefined : `request-${event.requestId}`,
    headers: h,
  });
}

export function createCommandIntake(deps: TaskDeps & { js: JetStreamClient }) {
  return async function handle(msg: JsMsg): Promise<void> {
    const traceId = traceIdFrom(msg.headers?.get('X-Trace-Id'));
    const op = msg.subject.split('.').at(-1) as AgentOperation;
    const fromSlack = msg.subject === SUBJECTS.slackDoor(op);
    let body: unknown;
    try {
      body = msg.json();
    } catch {
      body = undefined;
    }
    const msgId = msg.headers?.get('Nats-Msg-Id');
    const given = (body as { requestId?: unknown } | undefined)?.requestId;
    // A publisher may not take an id the service makes (PublisherRequestId): it
    // is not used even to answer them, since the answer's own message id would claim it.
    const usable = fromSlack ? RequestId : PublisherRequestId;
    const requestId = [given, msgId].find((v) => usable.safeParse(v).success) as string | undefined;

    const reject = async (id: string, err: CodedError) => {
      await publishRequestEvent(
        deps.js,
        { type: 'rejected', requestId: id, error: { code: err.code, message: err.message } },
        traceId,
      );
    };

    const parsed = fromSlack ? SlackDoorCommand.safeParse(body) : AgentCommand.safeParse(body);
    if (!AGENT_OPERATIONS.includes(op) || !parsed.success) {
      const message =
        body === undefined
          ? 'payload: not JSON'
          : !parsed.success
            ? describeZodError(parsed.error, 'payload').message
            : `unknown operation ${op}: use ${AGENT_OPERATIONS.join(', ')}`;
      deps.logger.warn({ subject: msg.subject, requestId, traceId, message }, 'invalid request rejected');
      await reject(requestId ?? INVALID_REQUEST_ID, new CodedError(ErrorCode.badRequest, message));
      msg.term(); // no reason: nats-server 2.9 does not take one
      return;
    }

    const cmd = parsed.data;
    const id = cmd.requestId ?? requestId ?? `msg-${msg.info.streamSequence}`;
    try {
      const { record, repeated } = await createTask(deps, {
        kind: op,
        hostIds: [cmd.hostId],
        ...('creator' in cmd
          ? { creator: `nats:${cmd.creator}` }
          : { creator: `slack:${cmd.origin.userId}`, origin: originFromSlack(cmd.origin) }),
        requestId: id,
        traceId,
        ...(cmd.reason ? { reason: cmd.reason } : {}),
      });
      // A request answered before is announced again only when this very message
      // is redelivered (its first handler may have died before announcing).
      if (!repeated || msg.redelivered) {
        await publishRequestEvent(
          deps.js,
          { type: 'accepted', requestId: id, taskId: record.task.id, task: record.task },
          traceId,
        );
      }
    } catch (err) {
      if (err instanceof RequestGone) {
        // Answered (accepted) long ago; its task has since been removed: nothing to do, nothing to say twice.
        deps.logger.warn({ requestId: id, traceId, message: err.message }, 'request seen again; its task is gone');
        msg.ack();
        return;
      }
      const coded = asCodedError(err);
      if (coded.code === ErrorCode.internal) throw err; // infrastructure: let it be redelivered
      deps.logger.info({ requestId: id, traceId, code: coded.code, message: coded.message }, 'request rejected');
      // A request that brought no usable id of its own hears its rejection on .invalid (SPEC §5).
      const answerOn = cmd.requestId ?? requestId ?? INVALID_REQUEST_ID;
      if (!(err instanceof RepeatedRejection) || msg.redelivered) await reject(answerOn, coded);
    }
    msg.ack();
  };
}
