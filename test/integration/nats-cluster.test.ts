/**
 * A 3-node NATS cluster (`nats.replicas: 3`) losing the node that leads every
 * stream, consumer and KV bucket — and that the service is connected to — in
 * the middle of a run: the work goes on and nothing is lost.
 *
 * What a user would see, checked: every accepted task ends SUCCESSFUL; its
 * events on ocp.events.task.<id> are all there, once each, in order, ending
 * with task.successful; no agent step ran twice or overlapped another on its
 * host; and requests made after the crash are accepted and complete.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, ErrorCode, type JetStreamClient, type NatsConnection } from 'nats';
import pino from 'pino';
import type { RequestEvent, TaskEvent } from '../../src/contracts/events.js';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { connectNats } from '../../src/nats/connect.js';
import { CONSUMERS, STREAMS } from '../../src/nats/streams.js';
import { apiClient } from '../helpers/http.js';
import { type NatsClusterHandle, startNatsCluster } from '../helpers/nats-cluster.js';
import { type NatsServerHandle, startNatsServer } from '../helpers/nats-server.js';
import { accepted, newRequestId } from '../helpers/requests.js';
import { type AgentCall, clearFaults, overlappingCalls, readCalls, setFault } from '../helpers/sim-agent.js';
import { type ChildService, type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

const BUCKETS = ['ocp_tasks', 'ocp_requests', 'ocp_host_locks', 'ocp_logs', 'ocp_ids', 'ocp_slack'];
const STREAM_CONSUMERS: Array<[string, string]> = [
  [STREAMS.cmd, CONSUMERS.intake],
  [STREAMS.events, CONSUMERS.notifier],
  [STREAMS.work, CONSUMERS.executor],
];
/** The agentctl calls of one restart, in order. */
const RESTART_CALLS = ['status', 'restart pos_proxy', 'stop', 'start', 'status'];

/**
 * What a publisher does in a cluster: while a stream elects a new leader
 * (seconds), a JetStream publish finds no responder (503) or times out; the
 * same message again, with the same Nats-Msg-Id, is stored once.
 */
async function publishDurably(js: JetStreamClient, subject: string, payload: unknown, msgID: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await js.publish(subject, JSON.stringify(payload), { msgID, timeout: 2_000 });
      return;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code !== '503' && code !== ErrorCode.Timeout) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * A task's events as stored on OCP_EVENTS, in stream order, read one message
 * at a time from the stream's leader (STREAM.MSG.GET, next by subject). No
 * consumer is made: nats-server 2.9 may place a new consumer on the dead node,
 * which never answers.
 */
async function storedEvents(nc: NatsConnection, taskId: number): Promise<TaskEvent[]> {
  const events: TaskEvent[] = [];
  for (let seq = 1; ; ) {
    const answer = (
      await nc.request(
        `$JS.API.STREAM.MSG.GET.${STREAMS.events}`,
        JSON.stringify({ seq, next_by_subj: `ocp.events.task.${taskId}` }),
        { timeout: 5_000 },
      )
    ).json<{ message?: { seq: number; data: string }; error?: { code: number; description: string } }>();
    if (answer.error?.code === 404) return events;
    if (!answer.message) throw new Error(`reading events of task ${taskId}: ${JSON.stringify(answer.error)}`);
    events.push(JSON.parse(Buffer.from(answer.message.data, 'base64').toString('utf8')) as TaskEvent);
    seq = answer.message.seq + 1;
  }
}

describe('a 3-node NATS cluster losing the leader of the streams and buckets mid-run', () => {
  let cluster: NatsClusterHandle;
  let stack: Stack;
  let service: ChildService;
  let api: ReturnType<typeof apiClient>;

  before(async () => {
    cluster = await startNatsCluster();
    stack = await startStack({ hosts: 6, natsUrl: cluster.url, replicas: 3, leaseSeconds: 4 });
    service = stack.spawnService('api,executor');
    const ready = await waitFor(
      'the service to be ready',
      () => {
        if (service.child.exitCode !== null) throw new Error(`the service exited:\n${service.output().slice(-4000)}`);
        return service
          .output()
          .split('\n')
          .find((l) => l.includes('"msg":"ready"'));
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${service.output().slice(-4000)}`);
    });
    api = apiClient((JSON.parse(ready) as { httpPort: number }).httpPort);
  });
  after(async () => {
    await stack?.stop();
    await cluster?.stop();
  });

  it('replicates every stream, consumer and bucket three times', async () => {
    const nc = await connect({ servers: cluster.url.split(',') });
    try {
      const jsm = await nc.jetstreamManager();
      for (const stream of [...Object.values(STREAMS), ...BUCKETS.map((b) => `KV_${b}`)]) {
        const info = await jsm.streams.info(stream);
        assert.equal(info.config.num_replicas, 3, `${stream} has 3 replicas`);
      }
      for (const [stream, durable] of STREAM_CONSUMERS) {
        const info = await jsm.consumers.info(stream, durable);
        assert.equal(info.config.num_replicas, 3, `consumer ${durable} has 3 replicas`);
      }
    } finally {
      await nc.close();
    }
  });

  it('goes on when that node is killed: every task ends SUCCESSFUL, every event once and in order', async () => {
    try {
      await crashMidRun();
    } catch (err) {
      console.log(`# service log (tail):\n${service.output().slice(-6000)}`);
      throw err;
    }
    assert.equal(service.child.exitCode, null, 'the service is still running');
  });

  async function crashMidRun(): Promise<void> {
    const hosts = stack.sshd.hosts;
    // Steps that take a while, so the crash lands in the middle of them.
    for (const h of hosts) {
      setFault(h.agentHome, 'restart', 'slow', 1);
      setFault(h.agentHome, 'stop', 'slow', 1.5);
      setFault(h.agentHome, 'start', 'slow', 1.5);
    }

    // The victim: the node the service talks to, made leader of everything.
    const victim = await waitFor('the service connection', () => cluster.clientNode('ocp-chatops'));
    await Promise.all([
      ...[...Object.values(STREAMS), ...BUCKETS.map((b) => `KV_${b}`)].map((s) => cluster.makeLeader(victim, s)),
      ...STREAM_CONSUMERS.map(([stream, durable]) => cluster.makeLeader(victim, stream, durable)),
    ]);
    assert.equal(await cluster.streamLeader('KV_ocp_tasks'), victim);
    assert.equal(await cluster.streamLeader(STREAMS.work), victim);
    assert.equal(await cluster.streamLeader(STREAMS.events), victim);

    const restartOverHttp = async (hostId: number): Promise<number> => {
      const r = await api<{ id: number; status: string }>('POST', `/compute/hosts/${hostId}/agent/restart`);
      assert.equal(r.status, 200, `restart of host ${hostId} over HTTP: ${JSON.stringify(r.body)}`);
      return r.body.data.id;
    };
    const restartOverNats = async (hostId: number): Promise<number> => {
      const requestId = newRequestId();
      const answer = stack.nc.subscribe(`ocp.events.request.${requestId}`, { max: 1, timeout: 60_000 });
      await publishDurably(stack.js, 'ocp.cmd.agent.restart', { hostId, creator: 'ops', requestId }, requestId);
      for await (const m of answer) return accepted(m.json<RequestEvent>()).taskId;
      throw new Error(`no answer to request ${requestId}`);
    };

    // Before the crash: four hosts, two over HTTP and two over NATS.
    const [h0, h1, h2, h3, h4, h5] = hosts.map((h) => h.id) as [number, number, number, number, number, number];
    const before = await Promise.all([
      restartOverHttp(h0),
      restartOverHttp(h1),
      restartOverNats(h2),
      restartOverNats(h3),
    ]);
    await waitFor(
      'every early task to be past its first step',
      () => hosts.slice(0, 4).every((h) => readCalls(h.agentHome).some((c) => c.args === 'restart pos_proxy')),
      30_000,
    );
    const inFlight = hosts.slice(0, 4).filter((h) => {
      const calls = readCalls(h.agentHome);
      return calls.filter((c) => c.phase === 'begin').length > calls.filter((c) => c.phase === 'end').length;
    }).length;
    assert.ok(
      hosts.slice(0, 4).every((h) => !readCalls(h.agentHome).some((c) => c.phase === 'end' && c.args === 'start')),
      'every early task still has steps to run when the node dies',
    );
    const reconnects = () =>
      service
        .output()
        .split('\n')
        .filter((l) => l.includes('"msg":"NATS reconnected"')).length;
    const reconnectsBefore = reconnects();
    await cluster.kill(victim);
    const killedAt = Date.now();
    // A request the service sent in the instant its server died is lost with
    // the connection (a timeout, as with a single server): the requests below
    // go once the service is on another node — while the streams still have
    // no leader.
    await waitFor('the service to reconnect to another node', () => reconnects() > reconnectsBefore, 30_000);

    // After the crash: two more hosts, asked at once while the cluster elects new leaders.
    const answeredAfter: number[] = [];
    const afterKill = await Promise.all(
      [restartOverHttp(h4), restartOverNats(h5)].map((p) =>
        p.then((id) => {
          answeredAfter.push(Date.now() - killedAt);
          return id;
        }),
      ),
    );
    const newLeader = await cluster.waitForStreamLeader('KV_ocp_tasks');
    assert.notEqual(newLeader, victim);
    console.log(
      `# killed ${victim} (leader of every stream and consumer, the service's server) with ${inFlight} of 4 ` +
        `early tasks in a step; requests made then were accepted after ${answeredAfter.join(' and ')} ms; ` +
        `KV_ocp_tasks now led by ${newLeader}`,
    );

    const taskIds = [...before, ...afterKill];
    const tasks = new Map<number, OcpTask>();
    for (const id of taskIds) {
      const task = await waitForTask(stack.nc, id, undefined, 60_000);
      assert.equal(task.status, 'SUCCESSFUL', `task ${id}: ${JSON.stringify(task.subtasks.map((s) => s.status))}`);
      tasks.set(id, task);
    }

    for (const id of taskIds) {
      const events = await storedEvents(stack.nc, id);
      assert.deepEqual(
        events.map((e) => e.seq),
        events.map((_, i) => i + 1),
        `task ${id}: events seq 1..n, once each`,
      );
      // The whole story, nothing missing: the task runs, its first subtask is
      // ready (it waits for an executor), then each subtask in turn is running
      // and successful (the chain's executor starts the next one at once), the
      // task is successful.
      const { subtasks } = tasks.get(id) as OcpTask;
      assert.deepEqual(
        events.map((e) => [e.type, e.subtaskId ?? null]),
        [
          ['task.running', null],
          ...subtasks.flatMap((st, i) =>
            [...(i === 0 ? ['ready'] : []), 'running', 'successful'].map((x) => [`subtask.${x}`, st.id]),
          ),
          ['task.successful', null],
        ],
        `task ${id}: every event, in order`,
      );
    }

    for (const h of hosts) {
      const calls = readCalls(h.agentHome);
      assert.deepEqual(overlappingCalls(calls), [], `host ${h.id}: no two agentctl calls overlapped`);
      const begun = calls.filter((c: AgentCall) => c.phase === 'begin').map((c) => c.args);
      // Start all waits on `status` until it exits 0: statuses may repeat, the rest may not.
      assert.deepEqual(
        begun.filter((a) => a !== 'status'),
        RESTART_CALLS.filter((a) => a !== 'status'),
        `host ${h.id}: each step ran once, in order`,
      );
      clearFaults(h.agentHome);
    }

    // The killed node comes back and catches up; the cluster is whole again.
    await cluster.restart(victim);
    const last = await restartOverHttp(h0);
    assert.equal((await waitForTask(stack.nc, last, undefined, 60_000)).status, 'SUCCESSFUL');
  }
});

describe('a request that finds no responders (a stream without a leader)', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  before(async () => {
    server = await startNatsServer();
    nc = await connectNats({ url: server.url, name: 'no-responders test' }, pino({ level: 'silent' }));
  });
  after(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('is sent again until one answers, in the order sent, without holding up other subjects', async () => {
    // Three requests sent back to back find nobody (like a task's events while
    // OCP_EVENTS elects a leader); a fourth comes while they wait.
    const first = ['1', '2', '3'].map((n) => nc.request('order.x', n, { timeout: 5_000 }));
    await new Promise((r) => setTimeout(r, 500));
    const fourth = nc.request('order.x', '4', { timeout: 5_000 });

    const other = nc.subscribe('order.y');
    void (async () => {
      for await (const m of other) m.respond(m.data);
    })();
    assert.equal((await nc.request('order.y', 'y', { timeout: 5_000 })).string(), 'y', 'another subject answers');

    const seen: string[] = [];
    const responder = nc.subscribe('order.x');
    void (async () => {
      for await (const m of responder) {
        seen.push(m.string());
        m.respond(m.data);
      }
    })();
    const answers = await Promise.all([...first, fourth]);
    assert.deepEqual(
      answers.map((a) => a.string()),
      ['1', '2', '3', '4'],
    );
    assert.deepEqual(seen, ['1', '2', '3', '4'], 'received in the order sent');
    responder.unsubscribe();
    other.unsubscribe();
  });
});
