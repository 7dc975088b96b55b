/**
 * Parts 3 and 4 of `npm run bench`: what one executor process (and two) can
 * do when the hosts cost nothing. The step runner is swapped for one that
 * never touches SSH (bench/executor-with-runner.ts); everything else — NATS,
 * JetStream, the task store, host locks, logs — is the product's, with a real
 * nats-server. The hosts of the configuration are loopback addresses nobody
 * connects to.
 *
 * 3. throughput: N single-host "Restart OCP agent" tasks (five subtasks each)
 *    are created first (the API's operation, in this process); then the
 *    executor process(es) start with a runner whose steps end at once. Tasks
 *    per second = tasks ended between the moment every process ran its first
 *    step and the last task's end, over that time (event times of
 *    ocp.events.task.*).
 * 4. memory: one executor process, executor.concurrency 1000, runner steps
 *    that sleep; 1,000 tasks created; RSS (/proc/<pid>/status) once 1,000
 *    steps run at once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { connect } from 'nats';
import { stringify } from 'yaml';
import { type Caller, findApiOperation, parseInput } from '../src/api/operations.js';
import { loadConfig } from '../src/config.js';
import { hashPassword } from '../src/http/auth.js';
import { createLogger } from '../src/logger.js';
import { startService } from '../src/service.js';
import { traceIdFrom } from '../src/trace-id.js';
import { killOnExit, type NatsServerHandle, startNatsServer, waitForExit } from '../test/helpers/nats-server.js';
import { processesMatching, regexEscape } from '../test/helpers/sim-agent.js';
import { benchLines, cpuSeconds, rssOf, sleep } from './lib/common.js';
import { compiled, serviceNodeFlags } from './lib/compile.js';

const REPO = new URL('..', import.meta.url).pathname;
/** Compiled once, on first use: the executor runs as plain JavaScript, as `npm start` runs it. */
let entry: string | undefined;

function log(msg: string): void {
  console.log(`[executor ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

interface Env {
  nats: NatsServerHandle;
  dir: string;
  env: NodeJS.ProcessEnv;
  nc: NatsConnection;
  stop(): Promise<void>;
}

/** nats-server, a config of `hosts` never-contacted loopback hosts, a client connection. */
async function setup(hosts: number, concurrency: number): Promise<Env> {
  const nats = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), 'ocp-bench-exec-'));
  const configPath = join(dir, 'ocp-chatops.yml');
  writeFileSync(
    configPath,
    stringify({
      hosts: Array.from({ length: hosts }, (_, k) => ({
        id: k + 1,
        name: `h${k + 1}`,
        // 127.0.0.0/8, never contacted: the runner is not SSH
        address: `127.1.${Math.floor(k / 250)}.${(k % 250) + 1}`,
      })),
      executor: { concurrency },
      access: {
        users: [
          { username: 'bench', passwordHash: hashPassword('bench-secret', Buffer.alloc(16, 1)), roles: ['ADMIN'] },
        ],
      },
    }),
  );
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CONFIG_FILE: configPath,
    NATS_URL: nats.url,
    HTTP_PORT: '0',
    HTTP_HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
  };
  const nc = await connect({ servers: nats.url });
  return {
    nats,
    dir,
    env,
    nc,
    async stop() {
      await nc.close();
      await nats.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Create single-host restart tasks on hosts 1..count with the API's operation (ROLES=api, this process). */
async function createTasks(e: Env, count: number, clients = 50): Promise<number> {
  const { config } = loadConfig({ ...e.env, ROLES: 'api' }, e.dir);
  const svc = await startService({ config, logger: createLogger('warn'), natsUrl: e.nats.url });
  const t0 = Date.now();
  try {
    const op = findApiOperation(config, 'agent.restart')!;
    let next = 1;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next <= count) {
          const hostId = next++;
          const caller: Caller = { name: 'bench', traceId: traceIdFrom(undefined) };
          await op.run(svc.deps, parseInput(op, { hostId: String(hostId) }), caller);
        }
      }),
    );
  } finally {
    await svc.stop();
  }
  return Date.now() - t0;
}

interface Executor {
  child: ChildProcess;
  lines: Array<Record<string, unknown> & { bench: string }>;
  output(): string;
  stop(): Promise<void>;
}

function spawnExecutor(e: Env, runner: string, extra: NodeJS.ProcessEnv = {}): Executor {
  entry ??= compiled(join(REPO, 'bench/executor-with-runner.ts'));
  // BENCH_CPU_PROF=<dir>: each executor writes a .cpuprofile there when it is stopped.
  const prof = process.env.BENCH_CPU_PROF;
  const profArgs = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
  const child = spawn(process.execPath, [...profArgs, ...serviceNodeFlags(), entry], {
    cwd: e.dir,
    env: { ...e.env, ...extra, ROLES: 'executor', BENCH_RUNNER: runner },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Executor['lines'] = [];
  let partial = '';
  let tail = '';
  child.stdout?.on('data', (c: Buffer) => {
    const text = partial + c.toString();
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) if (p.startsWith('{"bench"')) lines.push(...benchLines(p));
    tail = (tail + c.toString()).slice(-20_000);
  });
  child.stderr?.on('data', (c: Buffer) => {
    tail = (tail + c.toString()).slice(-20_000);
  });
  const unregister = killOnExit(() => child.kill('SIGKILL'));
  return {
    child,
    lines,
    output: () => tail,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(prof ? 'SIGTERM' : 'SIGKILL'); // a profile is written only on a clean exit
        await waitForExit(child);
      }
      unregister();
    },
  };
}

/** Watch ocp.events.task.*: the `at` of every task's end, by task id. */
function watchTaskEnds(nc: NatsConnection): { ended: Map<number, { at: number; status: string }>; stop(): void } {
  const ended = new Map<number, { at: number; status: string }>();
  const sub = nc.subscribe('ocp.events.task.*');
  void (async () => {
    for await (const m of sub) {
      const text = m.string();
      if (!text.includes('"type":"task.successful"') && !text.includes('"type":"task.failed"')) continue;
      const ev = JSON.parse(text) as { taskId: number; at: string; status: string };
      ended.set(ev.taskId, { at: Date.parse(ev.at), status: ev.status });
    }
  })();
  return { ended, stop: () => sub.unsubscribe() };
}

export interface ThroughputResult {
  processes: number;
  tasks: number;
  ok: boolean;
  failure?: string;
  /** tasks per second over the window where every process was running */
  tasksPerS: number;
  /** tasks over (last end - first step of the first process) */
  overallTasksPerS: number;
  windowS: number;
  createS: number;
  failedTasks: number;
  executorCpuS: number[];
  natsCpuS: number;
  durationS: number;
}

export async function benchThroughput(opts: { processes: number; tasks: number }): Promise<ThroughputResult> {
  const started = Date.now();
  const { processes, tasks } = opts;
  log(`throughput: ${tasks} single-host restart tasks, ${processes} executor process(es), instant steps`);
  const e = await setup(tasks, 64);
  const natsPid = processesMatching(regexEscape(e.nats.storeDir))[0];
  const executors: Executor[] = [];
  try {
    const createMs = await createTasks(e, tasks);
    log(`  ${tasks} tasks created in ${(createMs / 1000).toFixed(1)} s`);
    const watch = watchTaskEnds(e.nc);
    const nats0 = cpuSeconds(natsPid);
    for (let i = 0; i < processes; i++) executors.push(spawnExecutor(e, 'instant'));
    const deadline = Date.now() + 300_000;
    while (watch.ended.size < tasks && Date.now() < deadline) {
      if (executors.some((x) => x.child.exitCode !== null)) break;
      await sleep(100);
    }
    watch.stop();
    const firsts = executors.map((x) => Number(x.lines.find((l) => l.bench === 'first-run')?.at ?? Number.NaN));
    const cpu = executors.map((x) => cpuSeconds(x.child.pid));
    const natsCpu = cpuSeconds(natsPid) - nats0;
    const ends = [...watch.ended.values()];
    const failedTasks = ends.filter((x) => x.status !== 'SUCCESSFUL').length;
    const last = Math.max(...ends.map((x) => x.at));
    const windowStart = Math.max(...firsts);
    const inWindow = ends.filter((x) => x.at >= windowStart).length;
    const windowS = (last - windowStart) / 1000;
    const ok = ends.length === tasks && failedTasks === 0 && firsts.every(Number.isFinite);
    const result: ThroughputResult = {
      processes,
      tasks,
      ok,
      tasksPerS: inWindow / windowS,
      overallTasksPerS: ends.length / ((last - Math.min(...firsts)) / 1000),
      windowS,
      createS: createMs / 1000,
      failedTasks,
      executorCpuS: cpu,
      natsCpuS: natsCpu,
      durationS: 0,
      ...(ok
        ? {}
        : {
            failure: `${ends.length}/${tasks} tasks ended (${failedTasks} failed); executor output:\n${executors
              .map((x) => x.output().slice(-1500))
              .join('\n---\n')}`,
          }),
    };
    log(
      `  ${result.tasksPerS.toFixed(1)} tasks/s over ${windowS.toFixed(1)} s (overall ${result.overallTasksPerS.toFixed(1)}); ` +
        `executor CPU ${cpu.map((c) => c.toFixed(1)).join(' + ')} s, nats-server ${natsCpu.toFixed(1)} s`,
    );
    return { ...result, durationS: (Date.now() - started) / 1000 };
  } finally {
    for (const x of executors) await x.stop();
    await e.stop();
  }
}

export interface MemoryResult {
  tasks: number;
  ok: boolean;
  failure?: string;
  idleRssMiB: number;
  /** max VmRSS sampled while `tasks` steps were in flight */
  rssMiB: number;
  /** VmHWM: the process's peak */
  peakRssMiB: number;
  /** the process's own process.memoryUsage().rss when the count was reached */
  selfRssMiB: number;
  /** s from the first task created to `tasks` steps in flight */
  rampS: number;
  durationS: number;
}

export async function benchMemory(opts: { tasks: number }): Promise<MemoryResult> {
  const started = Date.now();
  const { tasks } = opts;
  log(`memory: one executor process, concurrency ${tasks}, ${tasks} tasks whose steps sleep`);
  const e = await setup(tasks, Math.min(1000, tasks));
  let x: Executor | undefined;
  try {
    x = spawnExecutor(e, 'sleep:600000', { BENCH_REPORT_AT: String(tasks) });
    const ex = x;
    const readyBy = Date.now() + 60_000;
    while (!/"msg":"ready"/.test(ex.output()) && Date.now() < readyBy) await sleep(100);
    await sleep(2000);
    const idle = rssOf(ex.child.pid as number);
    const t0 = Date.now();
    const creating = createTasks(e, tasks);
    const deadline = Date.now() + 240_000;
    let reached: (Record<string, unknown> & { bench: string }) | undefined;
    while (!reached && Date.now() < deadline && ex.child.exitCode === null) {
      reached = ex.lines.find((l) => l.bench === 'in-flight');
      await sleep(100);
    }
    await creating;
    if (!reached) {
      return {
        tasks,
        ok: false,
        failure: `${tasks} steps never ran at once within 240 s; executor output:\n${ex.output().slice(-2000)}`,
        idleRssMiB: idle?.rssMiB ?? Number.NaN,
        rssMiB: Number.NaN,
        peakRssMiB: Number.NaN,
        selfRssMiB: Number.NaN,
        rampS: Number.NaN,
        durationS: (Date.now() - started) / 1000,
      };
    }
    // Steady state with every step in flight: heartbeats (lease/6) go on meanwhile.
    let max = 0;
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      const r = rssOf(ex.child.pid as number);
      if (r) {
        max = Math.max(max, r.rssMiB);
        peak = Math.max(peak, r.hwmMiB);
      }
      await sleep(500);
    }
    const result: MemoryResult = {
      tasks,
      ok: true,
      idleRssMiB: idle?.rssMiB ?? Number.NaN,
      rssMiB: max,
      peakRssMiB: peak,
      selfRssMiB: Number(reached.rss) / 2 ** 20,
      rampS: (Number(reached.at) - t0) / 1000,
      durationS: 0,
    };
    log(
      `  RSS ${max.toFixed(0)} MiB with ${tasks} steps in flight (idle ${result.idleRssMiB.toFixed(0)} MiB, ` +
        `peak ${peak.toFixed(0)} MiB; all in flight after ${result.rampS.toFixed(1)} s)`,
    );
    return { ...result, durationS: (Date.now() - started) / 1000 };
  } finally {
    await x?.stop();
    await e.stop();
  }
}
