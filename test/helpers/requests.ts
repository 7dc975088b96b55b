/** Publishing requests on ocp.cmd.* and reading their one answer on ocp.events.request.<id>. */
import { randomUUID } from 'node:crypto';
import { AckPolicy, type JetStreamClient, type NatsConnection } from 'nats';
import type { RequestEvent, TaskEvent } from '../../src/contracts/events.js';

const encoder = new TextEncoder();

export function newRequestId(): string {
  return `req-${randomUUID()}`;
}

/** Subscribe first, then publish: resolves with the request's event. */
export async function request(
  nc: NatsConnection,
  js: JetStreamClient,
  op: 'restart' | 'stop' | 'start',
  payload: Record<string, unknown>,
  opts: { msgID?: string; timeoutMs?: number; requestId?: string } = {},
): Promise<RequestEvent> {
  const requestId = opts.requestId ?? (payload.requestId as string | undefined) ?? 'invalid';
  const sub = nc.subscribe(`ocp.events.request.${requestId}`, { max: 1, timeout: opts.timeoutMs ?? 15_000 });
  await js.publish(
    `ocp.cmd.agent.${op}`,
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

/** All events stored for a task, in stream order. */
export async function taskEvents(nc: NatsConnection, taskId: number): Promise<TaskEvent[]> {
  const jsm = await nc.jetstreamManager();
  const js = nc.jetstream();
  const name = `audit-${taskId}-${Date.now()}`;
  await jsm.consumers.add('OCP_EVENTS', {
    name,
    filter_subject: `ocp.events.task.${taskId}`,
    ack_policy: AckPolicy.None,
    inactive_threshold: 30_000_000_000,
  });
  const consumer = await js.consumers.get('OCP_EVENTS', name);
  const info = await consumer.info();
  const events: TaskEvent[] = [];
  let left = info.num_pending;
  while (left > 0) {
    const m = await consumer.next({ expires: 2000 });
    if (!m) break;
    events.push(m.json<TaskEvent>());
    left--;
  }
  await jsm.consumers.delete('OCP_EVENTS', name).catch(() => undefined);
  return events;
}
