/**
 * The consumer of ocp.cmd.agent.<op> and ocp.cmd.op.<name> (NATS publishers)
 * and of ocp.door.slack.op.<name> (the Slack front door): each request becomes a
 * task or a rejection, announced once on ocp.events.request.<requestId>. An
 * invalid payload is rejected (10001) and terminated, never redelivered
 * forever. Which door a request came through is the subject's word, never the
 * payload's: from NATS the creator is nats:<creator>, and only the Slack door
 * (a subject publishers are not given) sets a Slack user and channel.
 */

import { type JetStreamClient, type JsMsg, headers as natsHeaders } from 'nats';
import { batchRequestOf } from '../contracts/batch-options.js';
import { AgentCommand, PublisherRequestId, RequestEvent, RequestId, SlackDoorCommand } from '../contracts/events.js';
import { requestHosts } from '../contracts/host-list.js';
import { originFromSlack } from '../contracts/origin.js';
import { asCodedError, CodedError, describeZodError, ErrorCode } from '../errors.js';
import { findOperation } from '../operations/registry.js';
import { createTask, RepeatedRejection, RequestGone } from '../tasks/create-task.js';

/** A request's batch options, when it gives any. */
const withBatch = (batch: ReturnType<typeof batchRequestOf>) => (batch ? { batch } : {});

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

/**
 * The operation a subject asks for and the door it came through:
 * ocp.cmd.agent.<restart|stop|start> (OCP's three, as the first round named
 * them), ocp.cmd.op.<name>, ocp.door.slack.op.<name> (and the Slack door's
 * first-round ocp.door.slack.agent.<op>, still read).
 */
export function requestOfSubject(subject: string): { name: string; fromSlack: boolean; agentOnly: boolean } {
  const parts = subject.split('.');
  const name = parts.at(-1) ?? '';
  const fromSlack = parts[1] === 'door';
  return { name, fromSlack, agentOnly: parts.at(-2) === 'agent' };
}

export function createCommandIntake(deps: TaskDeps & { js: JetStreamClient }) {
  return async function handle(msg: JsMsg): Promise<void> {
    const traceId = traceIdFrom(msg.headers?.get('X-Trace-Id'));
    const { name: opName, fromSlack, agentOnly } = requestOfSubject(msg.subject);
    const op = findOperation(deps.config.operations, opName);
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
    const refuse = async (error: CodedError) => {
      deps.logger.warn(
        { subject: msg.subject, requestId, traceId, message: error.message },
        'invalid request rejected',
      );
      await reject(requestId ?? INVALID_REQUEST_ID, error);
      msg.term(); // no reason: nats-server 2.9 does not take one
    };
    // ocp.cmd.agent.* takes OCP's own three; any operation of the registry is on ocp.cmd.op.*.
    const offered = deps.config.operations.filter((o) => !agentOnly || o.builtin);
    if (!op || !offered.includes(op)) {
      const names = offered.map((o) => o.name).join(', ');
      return refuse(new CodedError(ErrorCode.notFound, `unknown operation ${opName}: use ${names}`));
    }
    if (!parsed.success) {
      const message = body === undefined ? 'payload: not JSON' : describeZodError(parsed.error, 'payload').message;
      return refuse(new CodedError(ErrorCode.badRequest, message));
    }

    const cmd = parsed.data;
    const id = cmd.requestId ?? requestId ?? `msg-${msg.info.streamSequence}`;
    try {
      const { record, repeated } = await createTask(deps, {
        operation: op.name,
        ...requestHosts(cmd),
        ...(cmd.params ? { params: cmd.params } : {}),
        ...withBatch(batchRequestOf(cmd)),
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
