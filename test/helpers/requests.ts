/** Publishing requests on ocp.cmd.* and reading their one answer on ocp.events.request.<id>. */
import { randomUUID } from 'node:crypto';
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JsMsg, type NatsConnection, nanos } from 'nats';
import type { RequestEvent, TaskEvent } from '../../src/contracts/events.js';

const encoder = new TextEncoder();

export function newRequestId(): string {
  return `req-${randomUUID()}`;
}

/**
 * Subscribe first, then publish on ocp.cmd.agent.<op> (`op.<name>`:
 * ocp.cmd.op.<name>): resolves with the request's event.
 */
export async function request(
  nc: NatsConnection,
  js: JetStreamClient,
  op: 'restart' | 'stop' | 'start' | `op.${string}`,
  payload: Record<string, unknown>,
  opts: { msgID?: string; timeoutMs?: number; requestId?: string } = {},
): Promise<RequestEvent> {
  const requestId = opts.requestId ?? (payload.requestId as string | undefined) ?? 'invalid';
  const sub = nc.subscribe(`ocp.events.request.${requestId}`, { max: 1, timeout: opts.timeoutMs ?? 15_000 });
  await js.publish(
    op.startsWith('op.') ? `ocp.cmd.${op}` : `ocp.cmd.agent.${op}`,
    encoder.encode(JSON.stringify(payload)),
    opts.msgID ? { msgID: opts.msgID } : {},
  );
  for await (const m of sub) return m.json<RequestEvent>();
  throw new Error(`no request event for ${requestId}`);
}

export function accepted(event: RequestEvent): Extract<RequestEvent, { type: 'accepted' }> {
  if (event.type !== 'accepted') throw new Error(`request rejected: ${JSON.stringify(event.error)}`);
  return event;
}

/**
 * Every message of OCP_EVENTS on `filter` (default: all), from stream
 * sequence `fromSeq` (default: the first), handed to `visit` in stream order,
 * through an ephemeral consumer made for the reading and deleted after it.
 */
export async function readEventStream(
  nc: NatsConnection,
  visit: (m: JsMsg) => void,
  opts: { filter?: string; fromSeq?: number } = {},
): Promise<void> {
  const jsm = await nc.jetstreamManager();
  const name = `audit-${randomUUID().slice(0, 8)}`;
  await jsm.consumers.add('OCP_EVENTS', {
    name,
    ack_policy: AckPolicy.None,
    ...(opts.fromSeq ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.fromSeq } : {}),
    ...(opts.filter ? { filter_subject: opts.filter } : {}),
    inactive_threshold: nanos(120_000),
  });
  try {
    const consumer = await nc.jetstream().consumers.get('OCP_EVENTS', name);
    let left = (await consumer.info()).num_pending;
    while (left > 0) {
      const batch = await consumer.fetch({ max_messages: Math.min(left, 500), expires: 5000 });
      let got = 0;
      for await (const m of batch) {
        got += 1;
        left -= 1;
        visit(m);
        if (left <= 0) break;
      }
      if (got === 0) break;
    }
  } finally {
    await jsm.consumers.delete('OCP_EVENTS', name).catch(() => undefined);
  }
}

/** All events stored for a task, in stream order. */
export async function taskEvents(nc: NatsConnection, taskId: number): Promise<TaskEvent[]> {
  const events: TaskEvent[] = [];
  await readEventStream(nc, (m) => events.push(m.json<TaskEvent>()), { filter: `ocp.events.task.${taskId}` });
  return events;
}
