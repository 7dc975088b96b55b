// Test helper: a real 3-node nats-server cluster with JetStream, on loopback.
//
// Each node has its own client, cluster-route and monitoring port (all random),
// its own store dir and a config file (server_name n1..n3; the CLI has no flag
// for server_name or the JetStream store of a clustered node). A node can be
// SIGKILLed and started again on the same ports and store, and the helper says
// which node leads a stream (JetStream stream info `cluster.leader`).
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { captureTail, findExecutable, freePort, killOnExit, waitForExit, waitForTcp } from './nats-server.js';

const LOOPBACK = '127.0.0.1';
const CLUSTER_NAME = 'ocp-test';
/** A cluster on a busy 2-core machine can take a while to elect its leaders. */
const READY_TIMEOUT_MS = 30_000;
/** How long a step-down may take to show a new leader before it is asked again. */
const STEP_DOWN_WAIT_MS = 5_000;

export interface ClusterNode {
  /** server_name: n1, n2, n3 */
  name: string;
  url: string;
  port: number;
  clusterPort: number;
  monitorPort: number;
  storeDir: string;
  configPath: string;
  /** True while its process runs. */
  readonly running: boolean;
  /** The tail of its log (stderr). */
  log(): string;
}

export interface NatsClusterHandle {
  nodes: ClusterNode[];
  /** Every node's client URL, comma-separated: what NATS_URL takes for a cluster. */
  url: string;
  node(name: string): ClusterNode;
  /** SIGKILL one node (a crash); its store stays. */
  kill(name: string): Promise<void>;
  /**
   * Start a killed node again on the same ports and store; resolves once it
   * knows the meta leader and every stream's leader has seen it current
   * (caught up) at least once.
   */
  restart(name: string): Promise<void>;
  /** server_name of the node leading a stream (KV buckets are streams `KV_<bucket>`), asked of a live node. */
  streamLeader(stream: string): Promise<string>;
  /** server_name of the node leading a durable consumer. */
  consumerLeader(stream: string, durable: string): Promise<string>;
  /** Poll until the stream has a leader among the live nodes (e.g. after its leader was killed). */
  waitForStreamLeader(stream: string, timeoutMs?: number): Promise<string>;
  /**
   * Move the leadership of a stream (or of one of its durable consumers) to
   * `name` by asking its leader to step down until the election lands there.
   */
  makeLeader(name: string, stream: string, durable?: string): Promise<void>;
  /** server_name of the node a client (by connection name prefix) is connected to, if any. */
  clientNode(namePrefix: string): Promise<string | undefined>;
  /**
   * Poll until every live node agrees on a meta leader that is live. (Not
   * /healthz: under steady writes it flaps between ok and "stream is not
   * current" on a follower that is only a message behind.)
   */
  waitReady(timeoutMs?: number): Promise<void>;
  /** SIGTERM every node, remove the stores. */
  stop(): Promise<void>;
}

function nodeConfig(n: {
  name: string;
  port: number;
  clusterPort: number;
  monitorPort: number;
  storeDir: string;
  routes: number[];
}): string {
  return [
    `server_name: ${n.name}`,
    `listen: "${LOOPBACK}:${n.port}"`,
    `http: "${LOOPBACK}:${n.monitorPort}"`,
    'jetstream {',
    `  store_dir: "${n.storeDir}"`,
    '}',
    'cluster {',
    `  name: ${CLUSTER_NAME}`,
    `  listen: "${LOOPBACK}:${n.clusterPort}"`,
    '  routes: [',
    ...n.routes.map((p) => `    "nats-route://${LOOPBACK}:${p}"`),
    '  ]',
    '}',
    '',
  ].join('\n');
}

async function getJson<T>(port: number, path: string): Promise<T | undefined> {
  try {
    const res = await fetch(`http://${LOOPBACK}:${port}${path}`, { signal: AbortSignal.timeout(2_000) });
    return (await res.json()) as T;
  } catch {
    return undefined;
  }
}

async function waitUntil<T>(
  what: string | (() => string),
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      throw new Error(`NATS cluster: timed out waiting for ${typeof what === 'string' ? what : what()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startNatsCluster(opts: { size?: number } = {}): Promise<NatsClusterHandle> {
  const binary = findExecutable('nats-server');
  const size = opts.size ?? 3;
  const base = await mkdtemp(join(tmpdir(), 'ocp-nats-cluster-'));
  // Every port is picked before any node starts, so each config names all routes.
  const ports: Array<{ port: number; clusterPort: number; monitorPort: number }> = [];
  const taken = new Set<number>();
  const pick = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  for (let i = 0; i < size; i++)
    ports.push({ port: await pick(), clusterPort: await pick(), monitorPort: await pick() });

  interface NodeState extends ClusterNode {
    child?: ChildProcess | undefined;
    stderr: () => string;
  }
  const nodes: NodeState[] = ports.map((p, i) => {
    const name = `n${i + 1}`;
    const storeDir = join(base, name);
    const configPath = join(base, `${name}.conf`);
    writeFileSync(
      configPath,
      nodeConfig({
        name,
        ...p,
        storeDir,
        routes: ports.filter((_, j) => j !== i).map((o) => o.clusterPort),
      }),
    );
    const node: NodeState = {
      name,
      url: `nats://${LOOPBACK}:${p.port}`,
      ...p,
      storeDir,
      configPath,
      stderr: () => '',
      get running() {
        return node.child !== undefined;
      },
      log: () => node.stderr(),
    };
    return node;
  });

  const unregister = killOnExit(() => {
    for (const n of nodes) n.child?.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  });

  const find = (name: string): NodeState => {
    const n = nodes.find((x) => x.name === name);
    if (!n) throw new Error(`NATS cluster: no node ${name}`);
    return n;
  };

  const launch = async (n: NodeState): Promise<void> => {
    const proc = spawn(binary, ['-c', n.configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    n.child = proc;
    n.stderr = captureTail(proc.stderr, 64_000);
    proc.once('exit', () => {
      if (n.child === proc) n.child = undefined;
    });
    await waitForTcp({ hosts: [LOOPBACK], port: n.port, child: proc, stderr: n.stderr, what: `nats-server ${n.name}` });
  };

  const signal = async (n: NodeState, sig: NodeJS.Signals): Promise<void> => {
    const proc = n.child;
    if (!proc) return;
    n.child = undefined;
    proc.kill(sig);
    await waitForExit(proc);
  };

  const live = () => nodes.filter((n) => n.running);

  /** A short-lived connection to the live nodes for JetStream API questions. */
  const withConnection = async <T>(fn: (nc: NatsConnection) => Promise<T>): Promise<T> => {
    const nc = await connect({ servers: live().map((n) => n.url), timeout: 5_000 });
    try {
      return await fn(nc);
    } finally {
      await nc.close();
    }
  };

  const waitReady = async (timeoutMs = READY_TIMEOUT_MS): Promise<void> => {
    await waitUntil(
      'a meta leader known to every live node',
      async () => {
        const leaders = new Set<string>();
        for (const n of live()) {
          const jsz = await getJson<{ meta_cluster?: { leader?: string } }>(n.monitorPort, '/jsz');
          const leader = jsz?.meta_cluster?.leader;
          if (!leader) return undefined;
          leaders.add(leader);
        }
        return leaders.size === 1 && live().some((n) => leaders.has(n.name)) ? true : undefined;
      },
      timeoutMs,
    );
  };

  const streamLeader = (stream: string): Promise<string> =>
    withConnection(async (nc) => {
      const jsm = await nc.jetstreamManager({ timeout: 5_000 });
      const leader = (await jsm.streams.info(stream)).cluster?.leader;
      if (!leader) throw new Error(`stream ${stream} has no leader right now`);
      return leader;
    });

  const consumerLeader = (stream: string, durable: string): Promise<string> =>
    withConnection(async (nc) => {
      const jsm = await nc.jetstreamManager({ timeout: 5_000 });
      const leader = (await jsm.consumers.info(stream, durable)).cluster?.leader;
      if (!leader) throw new Error(`consumer ${stream}/${durable} has no leader right now`);
      return leader;
    });

  const makeLeader = async (name: string, stream: string, durable?: string): Promise<void> => {
    find(name);
    const what = durable ? `consumer ${stream}/${durable}` : `stream ${stream}`;
    const leaderOf = () => (durable ? consumerLeader(stream, durable) : streamLeader(stream)).catch(() => undefined);
    const subject = durable
      ? `$JS.API.CONSUMER.LEADER.STEPDOWN.${stream}.${durable}`
      : `$JS.API.STREAM.LEADER.STEPDOWN.${stream}`;
    // Each election picks one of the other replicas, so a few rounds suffice.
    const refusals: string[] = [];
    for (let round = 0; round < 20; round++) {
      const leader = await waitUntil(`a leader of ${what}`, leaderOf, READY_TIMEOUT_MS);
      if (leader === name) return;
      const answer = await withConnection(async (nc) =>
        (await nc.request(subject, undefined, { timeout: 5_000 })).json<{ error?: { description?: string } }>(),
      ).catch((err: Error) => ({ error: { description: err.message } }));
      if (answer.error) {
        // "JetStream system temporarily unavailable" while an election runs, or
        // no answer on a busy machine: ask again.
        refusals.push(answer.error.description ?? JSON.stringify(answer.error));
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      // The same node may win again (no other replica was current): then step down again.
      await waitUntil(
        `a new leader of ${what}`,
        async () => {
          const next = await leaderOf();
          return next && next !== leader ? next : undefined;
        },
        STEP_DOWN_WAIT_MS,
      ).catch(() => undefined);
    }
    throw new Error(`NATS cluster: ${what} would not move its leader to ${name} (refusals: ${refusals.join('; ')})`);
  };

  /** Every stream's leader has seen `name` current at least once since now. */
  const waitCaughtUp = async (name: string, timeoutMs = READY_TIMEOUT_MS): Promise<void> => {
    const caughtUp = new Set<string>();
    let behind: string[] = [];
    await waitUntil(
      () => `${name} to catch up with every stream (behind: ${behind.join(', ')})`,
      () =>
        withConnection(async (nc) => {
          const jsm = await nc.jetstreamManager({ timeout: 5_000 });
          behind = [];
          for await (const si of jsm.streams.list()) {
            const stream = si.config.name;
            const cluster = si.cluster;
            if (caughtUp.has(stream)) continue;
            if (cluster?.leader === name || cluster?.replicas?.some((r) => r.name === name && r.current)) {
              caughtUp.add(stream);
            } else behind.push(stream);
          }
          return behind.length === 0 ? true : undefined;
        }).catch(() => undefined),
      timeoutMs,
    );
  };

  const clientNode = async (namePrefix: string): Promise<string | undefined> => {
    for (const n of live()) {
      const connz = await getJson<{ connections?: Array<{ name?: string }> }>(n.monitorPort, '/connz?limit=1024');
      if (connz?.connections?.some((c) => c.name?.startsWith(namePrefix))) return n.name;
    }
    return undefined;
  };

  try {
    await Promise.all(nodes.map((n) => launch(n)));
    await waitReady();
  } catch (err) {
    unregister();
    const logs = nodes.map((n) => `--- ${n.name}\n${n.stderr().slice(-3000)}`).join('\n');
    await Promise.all(nodes.map((n) => signal(n, 'SIGKILL')));
    await rm(base, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${logs}`);
  }

  return {
    nodes,
    url: nodes.map((n) => n.url).join(','),
    node: find,
    async kill(name) {
      await signal(find(name), 'SIGKILL');
    },
    async restart(name) {
      const n = find(name);
      await signal(n, 'SIGTERM');
      await launch(n);
      await waitReady();
      await waitCaughtUp(name);
    },
    streamLeader,
    consumerLeader,
    makeLeader,
    clientNode,
    waitForStreamLeader: (stream, timeoutMs = READY_TIMEOUT_MS) =>
      waitUntil(
        `a leader of stream ${stream} among the live nodes`,
        async () => {
          const leader = await streamLeader(stream).catch(() => undefined);
          return leader && live().some((n) => n.name === leader) ? leader : undefined;
        },
        timeoutMs,
      ),
    waitReady,
    async stop() {
      unregister();
      await Promise.all(nodes.map((n) => signal(n, 'SIGTERM')));
      await rm(base, { recursive: true, force: true });
    },
  };
}
