/**
 * Part `history` of `npm run bench` (SPEC §10 "History at scale"): listing and
 * Slack's `history <host>` with 100,000 tasks stored, and what the index costs
 * in memory.
 *
 * A real nats-server gets the product's topology and 100,000 task records
 * written as the store writes them (planned by the product's planner, then
 * ended: ~90 % single-host restarts, ~10 % batches of 2–20 hosts, on 1,000
 * hosts; ~0.5 % still running, ~9 % failed). Then a separate process
 * (bench/history-probe.ts) reads the bucket through one index and times,
 * each BENCH_ITER times: page 1, a deep page (the middle), the last page,
 * FAILED page 1 and page 50, a host's page 1, and `history <host>` (the
 * host's 20 latest, rendered for Slack). Its RSS after two collections is
 * compared with the same process over an empty store. Each index runs `runs`
 * times, alternating; figures are medians over the runs.
 *
 * Indexes: `after` (src/nats/task-index.ts, as an api or slack process keeps
 * it), `sweeper` (the same, keeping only running tasks, as an executor does)
 * and `before` (the summaries index this replaced, in the same run).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { stringify } from 'yaml';
import { type Config, loadConfig } from '../src/config.js';
import { planTask } from '../src/core/task.js';
import { recordChange, type TaskRecord } from '../src/core/task-record.js';
import { formatOcpTime } from '../src/core/time.js';
import { encodeJsonCompact } from '../src/nats/kv-json.js';
import { ensureTopology } from '../src/nats/streams.js';
import { stepsOfPlan } from '../src/tasks/step-plans.js';
import { killOnExit, startNatsServer, waitForExit } from '../test/helpers/nats-server.js';
import { benchLines, median, percentile } from './lib/common.js';
import { compiled, serviceNodeFlags } from './lib/compile.js';

const REPO = new URL('..', import.meta.url).pathname;
const HOSTS = 1000;
const RUNBOOK = 'Restart OCP agent';
const DAY_MS = 86_400_000;

export interface ProbeFigures {
  total: number;
  loadMs: number;
  /** per kind of listing: p50 and p99 of the timed calls, ms */
  latency: Record<string, { p50: number; p99: number }>;
  rssMiB: number;
  /** V8's heap in use, and array buffers (the index's typed arrays), after the same collections */
  heapUsedMiB: number;
  arrayBuffersMiB: number;
}

export interface IndexFigures {
  runs: ProbeFigures[];
  /** medians over the runs */
  loadMs: number;
  latency: Record<string, { p50: number; p99: number }>;
  rssMiB: number;
  /** RSS over the empty store's (the same index, the same calls), MiB */
  rssOverEmptyMiB: number;
}

export interface HistoryResult {
  tasks: number;
  batches: number;
  running: number;
  failed: number;
  storedMB: number;
  seedS: number;
  iterations: number;
  emptyRssMiB: Record<string, number>;
  indexes: Record<string, IndexFigures>;
  /** tasks stored for `before`, when fewer than `tasks` (too slow or big at full size) */
  beforeTasks?: number;
  durationS: number;
}

function log(msg: string): void {
  console.log(`[history ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** A small deterministic generator, so every run stores the same tasks. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function benchConfig(dir: string): Config {
  const path = join(dir, 'ocp-chatops.yml');
  writeFileSync(
    path,
    stringify({
      hosts: Array.from({ length: HOSTS }, (_, k) => ({
        id: k + 1,
        name: `h${k + 1}`,
        address: `127.2.${Math.floor(k / 250)}.${(k % 250) + 1}`,
      })),
    }),
  );
  return loadConfig({ CONFIG_FILE: path }, dir).config;
}

/**
 * The records of `count` tasks, ended as they end (every subtask run, or one
 * failed and its chain's rest left PENDING), over the `days` before now.
 */
function* records(config: Config, count: number): Generator<TaskRecord> {
  const runbook = config.runbooks.find((r) => r.name === RUNBOOK);
  if (!runbook) throw new Error(`no runbook ${RUNBOOK}`);
  const random = rng(13);
  const pick = () => 1 + Math.floor(random() * HOSTS);
  const now = Date.now();
  const span = 300 * DAY_MS;
  let nextId = 1;
  for (let i = 0; i < count; i++) {
    const batch = random() < 0.1;
    const hostIds = new Set([pick()]);
    if (batch) for (let n = 2 + Math.floor(random() * 19); hostIds.size < n; ) hostIds.add(pick());
    const hosts = [...hostIds].map((id) => config.hosts.find((h) => h.id === id) as Config['hosts'][number]);
    const started = new Date(now - span + Math.floor((i / count) * span));
    const ids = Array.from({ length: 1 + runbook.steps.length * hosts.length }, () => nextId++);
    const plan = planTask({
      runbook,
      hosts,
      ids,
      creator: `slack:U0${1000 + Math.floor(random() * 50)}`,
      executor: '127.0.0.1',
      now: started,
      ...(random() < 0.3 ? { reason: 'after the OCP upgrade' } : {}),
    });
    const task = plan.task;
    const roll = random();
    const running = i >= count - count * 0.005 * 2 && roll < 0.5; // the latest ones
    const failed = !running && roll < 0.09;
    const failedHost = Math.floor(random() * hosts.length);
    const failedStep = Math.floor(random() * runbook.steps.length);
    let t = started.getTime();
    for (const s of task.subtasks) {
      const chain = Math.max(0, s.parallelIdx);
      if (running) {
        if (s.status === 'READY') Object.assign(s, { status: 'RUNNING', startTime: formatOcpTime(new Date(t)) });
        continue;
      }
      const broken = failed && chain === failedHost;
      if (broken && s.seriesId > failedStep) continue; // left PENDING
      t += 1000 + Math.floor(random() * 4000);
      Object.assign(s, {
        status: broken && s.seriesId === failedStep ? 'FAILED' : 'SUCCESSFUL',
        startTime: formatOcpTime(new Date(t - 1000)),
        finishTime: formatOcpTime(new Date(t)),
        executor: '127.0.0.1',
      });
    }
    if (!running) {
      task.status = failed ? 'FAILED' : 'SUCCESSFUL';
      task.finishTime = formatOcpTime(new Date(t));
    }
    const record = recordChange(
      undefined,
      {
        task,
        ...stepsOfPlan(config, RUNBOOK, plan.steps),
        requestId: `bench-${i}`,
        traceId: (i + 1).toString(16).padStart(16, '0'),
      },
      new Date(t),
    );
    // Its events long published, as a stored task's are.
    yield { ...record, publishedSeq: record.eventSeq, outbox: [] };
  }
}

/** Store `count` tasks in `url`'s task bucket; resolves with how many were batches, running, failed. */
export async function seed(url: string, config: Config, count: number) {
  const nc = await connect({ servers: url });
  const buckets = await ensureTopology(nc, {
    replicas: 1,
    leaseSeconds: 30,
    retention: { tasksMs: 400 * DAY_MS, eventsMs: 400 * DAY_MS },
  });
  const counts = { batches: 0, running: 0, failed: 0, bytes: 0 };
  const inFlight = new Set<Promise<unknown>>();
  for (const r of records(config, count)) {
    if (r.task.context.parallel) counts.batches++;
    if (r.task.status === 'RUNNING') counts.running++;
    if (r.task.status === 'FAILED') counts.failed++;
    const bytes = encodeJsonCompact(r);
    counts.bytes += bytes.length;
    const p = buckets.tasks.put(`task.${r.task.id}`, bytes).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 256) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await nc.close();
  return counts;
}

/** The probe process over `url` with one index; its figures. */
async function probe(url: string, index: string, iterations: number, hosts: number[]): Promise<ProbeFigures> {
  const entry = compiled(join(REPO, 'bench/history-probe.ts'));
  const child = spawn(process.execPath, [...serviceNodeFlags(), '--expose-gc', entry], {
    env: {
      PATH: process.env.PATH,
      NATS_URL: url,
      BENCH_INDEX: index,
      BENCH_ITER: String(iterations),
      BENCH_HOSTS: hosts.join(','),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const unregister = killOnExit(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-4000);
  });
  await waitForExit(child);
  unregister();
  const line = benchLines(out).find((l) => l.bench === 'history') as
    | (Omit<ProbeFigures, 'latency'> & { timings: Record<string, number[]> })
    | undefined;
  if (!line) throw new Error(`history probe (${index}) exited ${child.exitCode} without figures: ${err}`);
  const latency: ProbeFigures['latency'] = {};
  for (const [k, ms] of Object.entries(line.timings)) {
    const sorted = [...ms].sort((a, b) => a - b);
    latency[k] = { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  }
  const { total, loadMs, rssMiB, heapUsedMiB, arrayBuffersMiB } = line;
  return { total, loadMs, latency, rssMiB, heapUsedMiB, arrayBuffersMiB };
}

function medians(runs: ProbeFigures[], emptyRss: number): IndexFigures {
  const latency: IndexFigures['latency'] = {};
  for (const k of Object.keys(runs[0]?.latency ?? {})) {
    latency[k] = {
      p50: median(runs.map((r) => r.latency[k]?.p50 ?? Number.NaN)),
      p99: median(runs.map((r) => r.latency[k]?.p99 ?? Number.NaN)),
    };
  }
  const rssMiB = median(runs.map((r) => r.rssMiB));
  return { runs, loadMs: median(runs.map((r) => r.loadMs)), latency, rssMiB, rssOverEmptyMiB: rssMiB - emptyRss };
}

export async function benchHistory(opts: {
  tasks: number;
  runs: number;
  iterations: number;
  /** Tasks stored for the index this replaced; default `tasks`. */
  beforeTasks?: number;
}): Promise<HistoryResult> {
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'ocp-bench-history-'));
  const config = benchConfig(dir);
  const empty = await startNatsServer();
  const full = await startNatsServer();
  const before = opts.beforeTasks !== undefined && opts.beforeTasks !== opts.tasks ? await startNatsServer() : full;
  try {
    const e = await connect({ servers: empty.url });
    await ensureTopology(e, {
      replicas: 1,
      leaseSeconds: 30,
      retention: { tasksMs: 400 * DAY_MS, eventsMs: 400 * DAY_MS },
    });
    await e.close();
    const ts = Date.now();
    const counts = await seed(full.url, config, opts.tasks);
    const seedS = (Date.now() - ts) / 1000;
    log(
      `stored ${opts.tasks} tasks (${counts.batches} batches, ${counts.running} running, ${counts.failed} failed, ` +
        `${(counts.bytes / 1e6).toFixed(0)} MB) in ${seedS.toFixed(0)} s`,
    );
    if (before !== full) {
      await seed(before.url, config, opts.beforeTasks as number);
      log(`stored ${opts.beforeTasks} tasks for the index this replaced`);
    }
    const random = rng(7);
    const hosts = Array.from({ length: 20 }, () => 1 + Math.floor(random() * HOSTS));
    const kinds = ['after', 'sweeper', 'before'] as const;
    const emptyRuns = Object.fromEntries(kinds.map((k) => [k, [] as number[]]));
    const runs = Object.fromEntries(kinds.map((k) => [k, [] as ProbeFigures[]]));
    for (let r = 0; r < opts.runs; r++) {
      for (const kind of kinds) {
        const url = kind === 'before' ? before.url : full.url;
        const iterations = kind === 'before' ? Math.min(opts.iterations, 50) : opts.iterations;
        const f = await probe(url, kind, iterations, hosts);
        runs[kind]?.push(f);
        const e0 = await probe(empty.url, kind, iterations, hosts);
        emptyRuns[kind]?.push(e0.rssMiB);
        log(
          `run ${r + 1} ${kind}: ${f.total} listed, loaded in ${f.loadMs.toFixed(0)} ms, ` +
            `page 1 p99 ${f.latency.page1?.p99.toFixed(1)} ms, history p99 ${f.latency.history?.p99.toFixed(1)} ms, ` +
            `RSS ${f.rssMiB.toFixed(1)} MiB (empty store ${e0.rssMiB.toFixed(1)} MiB), heap ${f.heapUsedMiB.toFixed(1)} ` +
            `(${e0.heapUsedMiB.toFixed(1)}), buffers ${f.arrayBuffersMiB.toFixed(1)} (${e0.arrayBuffersMiB.toFixed(1)}) MiB`,
        );
      }
    }
    const emptyRssMiB = Object.fromEntries(kinds.map((k) => [k, median(emptyRuns[k] ?? [])]));
    return {
      tasks: opts.tasks,
      ...counts,
      storedMB: counts.bytes / 1e6,
      seedS,
      iterations: opts.iterations,
      emptyRssMiB,
      indexes: Object.fromEntries(kinds.map((k) => [k, medians(runs[k] ?? [], emptyRssMiB[k] as number)])),
      ...(before !== full ? { beforeTasks: opts.beforeTasks } : {}),
      durationS: (Date.now() - t0) / 1000,
    };
  } finally {
    await empty.stop();
    await full.stop();
    if (before !== full) await before.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Run on its own: npx tsx bench/history.ts [tasks] [runs]
if (import.meta.url === `file://${process.argv[1]}`) {
  const [tasks = '100000', runs = '1'] = process.argv.slice(2);
  benchHistory({ tasks: Number(tasks), runs: Number(runs), iterations: 200 })
    .then((r) => console.log(JSON.stringify(r, (k, v) => (k === 'runs' ? undefined : v), 2)))
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
