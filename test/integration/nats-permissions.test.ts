/**
 * NATS permissions are the security boundary for NATS publishers (SPEC §5,
 * docs/SECURITY.md). Against a real nats-server running the shipped
 * config/nats-server.example.conf, with the service as its user `ocp-chatops`:
 * the user `publisher` can publish commands, call the API and read the events
 * (live, stored, and through the readers' consumer), and cannot write the task
 * bucket, the events, the Slack door or the work queue, nor delete or purge a
 * stream — not even through the reply subject of a command it may publish.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AckPolicy, connect, DeliverPolicy, type NatsConnection } from 'nats';
import type { RequestEvent, TaskEvent } from '../../src/contracts/events.js';
import { decodeJsonBytes } from '../../src/nats/kv-json.js';
import { type NatsServerHandle, startNatsServer } from '../helpers/nats-server.js';
import { accepted, newRequestId } from '../helpers/requests.js';
import { type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

const CONFIG = new URL('../../config/nats-server.example.conf', import.meta.url).pathname;
/** The prefix under which the example imports the events stream's read-only JetStream calls. */
const API_PREFIX = 'ocp.js.API';
const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('nats-server with config/nats-server.example.conf', () => {
  const passwords = {
    // A letter first: nats-server reads a leading digit or '-' of a variable's value as a number.
    service: `p${randomBytes(18).toString('base64url')}`,
    publisher: `p${randomBytes(18).toString('base64url')}`,
  };
  let nats: NatsServerHandle;
  let stack: Stack;
  let pub: NatsConnection;

  before(async () => {
    nats = await startNatsServer({
      config: {
        file: CONFIG,
        env: { OCP_CHATOPS_NATS_PASSWORD: passwords.service, OCP_PUBLISHER_NATS_PASSWORD: passwords.publisher },
      },
    });
    stack = await startStack({
      hosts: 1,
      natsUrl: nats.url,
      natsAuth: { user: 'ocp-chatops', password: passwords.service },
    });
    await stack.startService();
    // What the example asks an operator to make once: the readers' pull consumer.
    const jsm = await stack.nc.jetstreamManager();
    await jsm.consumers.add('OCP_EVENTS', {
      durable_name: 'events-reader',
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      filter_subject: 'ocp.events.>',
    });
    pub = await connect({ servers: nats.url, user: 'publisher', pass: passwords.publisher, reconnect: false });
  });
  after(async () => {
    await pub?.close();
    await stack?.stop();
    await nats?.stop();
  });

  const host = () => stack.sshd.hosts[0]!;

  /** The event on ocp.events.request.<requestId>, as the publisher sees it live. */
  async function publishCommand(payload: Record<string, unknown>, core = false): Promise<RequestEvent> {
    const requestId = payload.requestId as string;
    const sub = pub.subscribe(`ocp.events.request.${requestId}`, { max: 1, timeout: 15_000 });
    if (core) pub.publish('ocp.cmd.agent.restart', encode(payload));
    else await pub.jetstream().publish('ocp.cmd.agent.restart', encode(payload), { msgID: requestId });
    for await (const m of sub) return m.json<RequestEvent>();
    throw new Error(`no answer for ${requestId}`);
  }

  it("runs the publisher's command; its answer and the task's events are readable live, stored and by the readers' consumer", async () => {
    const requestId = newRequestId();
    const live: TaskEvent[] = [];
    const events = pub.subscribe('ocp.events.task.>', { callback: (_e, m) => live.push(m.json<TaskEvent>()) });
    const ev = accepted(await publishCommand({ hostId: host().id, creator: 'deploy-bot', requestId }));
    assert.equal(ev.task.creator, 'nats:deploy-bot');
    const task = await waitForTask(stack.nc, ev.taskId);
    assert.equal(task.status, 'SUCCESSFUL');
    await waitFor('the last event live', () =>
      live.some((e) => e.taskId === ev.taskId && e.type === 'task.successful'),
    );
    events.unsubscribe();

    // Stored: the answer again, and the task's first event, through the imported read-only call.
    const jsm = await pub.jetstreamManager({ apiPrefix: API_PREFIX, checkAPI: false });
    const stored = await jsm.streams.getMessage('OCP_EVENTS', { last_by_subj: `ocp.events.request.${requestId}` });
    assert.equal(stored.json<RequestEvent>().type, 'accepted');
    const got = await pub.request(
      `${API_PREFIX}.STREAM.MSG.GET.OCP_EVENTS`,
      encode({ seq: 1, next_by_subj: `ocp.events.task.${ev.taskId}` }),
      { timeout: 5000 },
    );
    const first = got.json<{ message: { data: string } }>().message;
    assert.equal(JSON.parse(Buffer.from(first.data, 'base64').toString()).type, 'task.running');

    // Through the readers' consumer: the answer is among the events it hands out.
    const reader = await pub.jetstream({ apiPrefix: API_PREFIX }).consumers.get('OCP_EVENTS', 'events-reader');
    const seen: string[] = [];
    for (let m = await reader.next({ expires: 2000 }); m; m = await reader.next({ expires: 2000 })) {
      seen.push(m.subject);
      if (m.subject === `ocp.events.request.${requestId}`) break;
    }
    assert.ok(seen.includes(`ocp.events.request.${requestId}`), `read ${seen.length} events`);

    // The API, request/reply.
    const answer = await pub.request('ocp.api.task.get', encode({ taskId: ev.taskId }), { timeout: 10_000 });
    assert.equal(answer.json<{ data: { status: string } }>().data.status, 'SUCCESSFUL');

    // A plain (core) publish of a command is taken as well: `nats pub` does that.
    const plain = newRequestId();
    const again = accepted(await publishCommand({ hostId: host().id, creator: 'deploy-bot', requestId: plain }, true));
    await waitForTask(stack.nc, again.taskId);
  });

  /** A request the server refuses for want of permission. */
  async function refused(subject: string, payload: unknown = {}): Promise<void> {
    await assert.rejects(pub.request(subject, encode(payload), { timeout: 3000 }), /permissions violation/i, subject);
  }

  it('refuses the publisher writing buckets, events, the Slack door and the work queue, and changing streams', async () => {
    const jsm = await stack.nc.jetstreamManager();
    const kv = await stack.nc.jetstream().views.kv('ocp_tasks');
    const before = await Promise.all(
      ['KV_ocp_tasks', 'KV_ocp_requests', 'KV_ocp_host_locks', 'OCP_EVENTS', 'OCP_DOOR', 'OCP_WORK'].map(
        async (s) => [s, (await jsm.streams.info(s)).state.last_seq] as const,
      ),
    );
    let taskKey = 'task.1';
    for await (const k of await kv.keys()) taskKey = k;

    for (const subject of [
      `$KV.ocp_tasks.${taskKey}`,
      '$KV.ocp_host_locks.host.1',
      '$KV.ocp_requests.req.x',
      'ocp.events.task.1',
      'ocp.events.request.someone-else',
      'ocp.door.slack.agent.restart',
      'ocp.work.subtask',
      // The JetStream API, in the publisher's own account and through the import prefix.
      '$JS.API.STREAM.DELETE.OCP_CMD',
      '$JS.API.STREAM.PURGE.OCP_EVENTS',
      `${API_PREFIX}.STREAM.DELETE.OCP_CMD`,
      `${API_PREFIX}.STREAM.PURGE.OCP_EVENTS`,
      `${API_PREFIX}.STREAM.UPDATE.OCP_EVENTS`,
      `${API_PREFIX}.CONSUMER.DELETE.OCP_EVENTS.notifier`,
      `${API_PREFIX}.CONSUMER.CREATE.OCP_EVENTS`,
      `${API_PREFIX}.STREAM.MSG.DELETE.OCP_EVENTS`,
    ]) {
      await refused(subject, subject.startsWith('ocp.door') ? { hostId: 1, requestId: 'x', origin: {} } : {});
    }
    const pjsm = await pub.jetstreamManager({ apiPrefix: API_PREFIX, checkAPI: false });
    await assert.rejects(pjsm.streams.delete('OCP_CMD'), /permissions violation/i);
    await assert.rejects(pjsm.streams.purge('OCP_EVENTS'), /permissions violation/i);

    for (const [stream, lastSeq] of before) {
      assert.equal((await jsm.streams.info(stream)).state.last_seq, lastSeq, `${stream} unchanged`);
    }
    // Every stream and the service's consumers are still there.
    for (const stream of ['OCP_CMD', 'OCP_EVENTS', 'OCP_DOOR', 'OCP_WORK']) await jsm.streams.info(stream);
    await jsm.consumers.info('OCP_EVENTS', 'notifier');
  });

  it("refuses the reply-subject way round: a command's ack never lands in the bucket or the audit stream", async () => {
    // Permissions do not check reply subjects: in one account, the ack of a command
    // published with reply $KV.ocp_tasks.task.<id> would overwrite that task.
    const ev = accepted(await publishCommand({ hostId: host().id, creator: 'deploy-bot', requestId: newRequestId() }));
    await waitForTask(stack.nc, ev.taskId);
    const kv = await stack.nc.jetstream().views.kv('ocp_tasks');
    const record = (await kv.get(`task.${ev.taskId}`))!;
    const jsm = await stack.nc.jetstreamManager();
    const lastEvent = await jsm.streams.getMessage('OCP_EVENTS', { last_by_subj: `ocp.events.task.${ev.taskId}` });

    for (const reply of [`$KV.ocp_tasks.task.${ev.taskId}`, `ocp.events.task.${ev.taskId}`]) {
      pub.publish('ocp.cmd.agent.restart', encode({ hostId: 'not a host', creator: 'x' }), { reply });
    }
    await pub.flush();
    await new Promise((r) => setTimeout(r, 1000));

    const now = (await kv.get(`task.${ev.taskId}`))!;
    assert.equal(now.revision, record.revision, 'the task record was not written');
    assert.equal(decodeJsonBytes<{ task: { id: number } }>(now.value).task.id, ev.taskId);
    const last = await jsm.streams.getMessage('OCP_EVENTS', { last_by_subj: `ocp.events.task.${ev.taskId}` });
    assert.equal(last.seq, lastEvent.seq, "nothing was added to the task's audit trail");
  });
});
