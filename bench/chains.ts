/**
 * `npm run bench -- --only chains`: batches of any size and one work item per
 * host chain (issue 13, SPEC §10, §13), measured against a baseline in the
 * same run: the code of another git revision (`main` by default, extracted
 * with `git archive`), run the same way on the same machine.
 *
 * For each code, with a real nats-server (monitoring on) and the service as
 * two processes (ROLES=api, ROLES=executor; the instant step runner of
 * bench/executor-with-runner.ts, everything else the product's):
 *
 * 1. single-host tasks/s: `tasks` restarts created over HTTP with the executor
 *    stopped, then the executor started; tasks ended over the time from its
 *    first step to the last end;
 * 2. round trips per subtask: messages the executor's connection sent to
 *    nats-server (every request, publish, KV update and ack: each an awaited
 *    reply, or state written without one) over the subtasks run (connz);
 * 3. a batch of every host of the `hosts`-host inventory (all at 127.0.0.1,
 *    distinct ids): request → answer, request → SUCCESSFUL (its task event),
 *    the executor's RSS meanwhile (VmRSS sampled every 250 ms), NATS storage
 *    per host of the finished batch (bytes the batch added to the task
 *    bucket, the event stream and the log bucket, over its hosts).
 *    A code that refuses the batch is recorded as refusing it, with its reason.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { stringify } from 'yaml';
import { hashPassword } from '../src/http/auth.js';
import { startNatsServer } from '../test/helpers/nats-server.js';
import { extract, type Proc, REPO, ready, spawnService } from './lib/code-tree.js';
import { median, rssOf, sleep } from './lib/common.js';

const AUTH = `Basic ${Buffer.from('bench:bench-secret').toString('base64')}`;

function log(msg: string): void {
  console.log(`[chains ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

export interface ChainsCodeResult {
  label: string;
  /** The commit measured. */
  commit: string;
  tasks: number;
  tasksPerS: number;
  /** Messages the executor sent to NATS per subtask, single-host tasks. */
  roundTripsPerSubtask: number;
  hosts: number;
  batchAccepted: boolean;
  refusal?: string;
  /** Per run, ms. */
  answerMs: number[];
  /** Per run, s. */
  successfulS: number[];
  /** Messages the executor sent to NATS per subtask, during the batch. */
  batchRoundTripsPerSubtask: number;
  executorRssMiB: number;
  /** Bytes per host the first batch added: the task bucket, the event stream, the log bucket. */
  storagePerHost: { tasks: number; events: number; logs: number };
}

export interface ChainsResult {
  current: ChainsCodeResult;
  baseline?: ChainsCodeResult;
  durationS: number;
}

/** Messages a process's NATS connection sent (nats-server's connz: `in_msgs`, by the connection's name). */
async function sentBy(monitorPort: number, pid: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/connz?limit=1024`);
  const body = (await res.json()) as { connections: Array<{ name?: string; in_msgs: number }> };
  return body.connections.filter((c) => c.name?.endsWith(`:${pid}`)).reduce((n, c) => n + c.in_msgs, 0);
}

async function bytesOf(nc: NatsConnection, stream: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  return (await jsm.streams.info(stream)).state.bytes;
}

/** Ends of tasks as their events say (ocp.events.task.*), by task id, epoch ms. */
function watchEnds(nc: NatsConnection): { ends: Map<number, { at: number; status: string }>; stop(): void } {
  const ends = new Map<number, { at: number; status: string }>();
  const sub = nc.subscribe('ocp.events.task.*');
  void (async () => {
    for await (const m of sub) {
      const text = m.string();
      if (!text.includes('"type":"task.successful"') && !text.includes('"type":"task.failed"')) continue;
      const ev = JSON.parse(text) as { taskId: number; status: string };
      ends.set(ev.taskId, { at: Date.now(), status: ev.status });
    }
  })();
  return { ends, stop: () => sub.unsubscribe() };
}

/** The API's answer, as far as the benchmark reads it. */
interface Envelope {
  data: { id: number };
  error?: { code: number; message: string };
}

async function post(port: number, path: string, body: unknown): Promise<{ status: number; json: Envelope }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Envelope };
}

async function measureCode(
  root: string,
  label: string,
  commit: string,
  opts: { hosts: number; tasks: number; runs: number },
): Promise<ChainsCodeResult> {
  log(`${label} (${commit}): ${opts.tasks} single-host tasks, then ${opts.runs} batches of ${opts.hosts} hosts`);
  const nats = await startNatsServer({ monitor: true });
  const dir = mkdtempSync(join(tmpdir(), 'ocp-bench-chains-'));
  const configPath = join(dir, 'ocp-chatops.yml');
  writeFileSync(
    configPath,
    stringify({
      hosts: Array.from({ length: opts.hosts }, (_, k) => ({ id: k + 1, name: `h${k + 1}`, address: '127.0.0.1' })),
      // Chains side by side: the batch's maxParallel (config default 20) and the pull loops to match.
      executor: { concurrency: 500 },
      batch: { maxParallel: 500 },
      access: {
        users: [
          { username: 'bench', passwordHash: hashPassword('bench-secret', Buffer.alloc(16, 1)), roles: ['ADMIN'] },
        ],
        signIn: { perUser: 100_000, perAddress: 100_000 },
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
    LOG_LEVEL: 'warn',
  };
  const nc = await connect({ servers: nats.url });
  const watch = watchEnds(nc);
  const monitor = nats.monitorPort as number;
  const procs: Proc[] = [];
  try {
    const apiProc = spawnService(root, { ...env, LOG_LEVEL: 'info' }, 'api');
    procs.push(apiProc);
    await ready(apiProc, 'api');
    const port = apiProc.httpPort() as number;

    // 1-2. single-host tasks, the executor started once they are all stored
    const warm = await fetch(`http://127.0.0.1:${port}/api/v2/tasks/instances?size=1`, {
      headers: { authorization: AUTH },
    });
    if (warm.status !== 200) throw new Error(`signing in: ${warm.status}`);
    let next = 1;
    const created: number[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next <= opts.tasks) {
          const hostId = next++;
          const r = await post(port, `/compute/hosts/${hostId}/agent/restart`, {});
          if (r.status !== 200) throw new Error(`restart of host ${hostId}: ${JSON.stringify(r.json)}`);
          created.push(r.json.data.id);
        }
      }),
    );
    const exec = spawnService(root, { ...env, LOG_LEVEL: 'info' }, 'executor');
    procs.push(exec);
    await ready(exec, 'executor');
    const sent0 = await sentBy(monitor, exec.child.pid as number);
    const t0 = Date.now();
    const deadline = t0 + 300_000;
    while (created.some((id) => !watch.ends.has(id)) && Date.now() < deadline) await sleep(50);
    const ends = created.map((id) => watch.ends.get(id)?.at ?? Number.NaN);
    const sent1 = await sentBy(monitor, exec.child.pid as number);
    const windowS = (Math.max(...ends) - t0) / 1000;
    const tasksPerS = created.length / windowS;
    const roundTripsPerSubtask = (sent1 - sent0) / (created.length * 5);
    log(`  ${tasksPerS.toFixed(1)} tasks/s; ${roundTripsPerSubtask.toFixed(2)} messages to NATS per subtask`);

    // 3. the batch of every host
    const hostIds = Array.from({ length: opts.hosts }, (_, k) => k + 1);
    const answerMs: number[] = [];
    const successfulS: number[] = [];
    let rss = 0;
    let storagePerHost = { tasks: Number.NaN, events: Number.NaN, logs: Number.NaN };
    let batchRoundTrips = Number.NaN;
    let refusal: string | undefined;
    for (let run = 0; run < opts.runs && !refusal; run++) {
      const before = {
        tasks: await bytesOf(nc, 'KV_ocp_tasks'),
        events: await bytesOf(nc, 'OCP_EVENTS'),
        logs: await bytesOf(nc, 'KV_ocp_logs'),
        sent: await sentBy(monitor, exec.child.pid as number),
      };
      const start = Date.now();
      const r = await post(port, '/compute/hosts/batchRestartAgents', { hostIds });
      answerMs.push(Date.now() - start);
      if (r.status !== 200) {
        refusal = `${r.status} / ${r.json?.error?.code}: ${String(r.json?.error?.message).slice(0, 200)}`;
        log(`  batch of ${opts.hosts} refused: ${refusal}`);
        break;
      }
      const taskId = r.json.data.id;
      const end = Date.now() + 600_000;
      while (!watch.ends.has(taskId) && Date.now() < end) {
        const m = rssOf(exec.child.pid as number);
        if (m) rss = Math.max(rss, m.rssMiB);
        await sleep(250);
      }
      const ended = watch.ends.get(taskId);
      if (!ended) throw new Error(`batch ${taskId} never ended; executor:\n${exec.tail().slice(-2000)}`);
      if (ended.status !== 'SUCCESSFUL') throw new Error(`batch ${taskId} ended ${ended.status}`);
      successfulS.push((ended.at - start) / 1000);
      await sleep(500); // the last writes land
      if (run === 0) {
        storagePerHost = {
          tasks: ((await bytesOf(nc, 'KV_ocp_tasks')) - before.tasks) / opts.hosts,
          events: ((await bytesOf(nc, 'OCP_EVENTS')) - before.events) / opts.hosts,
          logs: ((await bytesOf(nc, 'KV_ocp_logs')) - before.logs) / opts.hosts,
        };
        batchRoundTrips = ((await sentBy(monitor, exec.child.pid as number)) - before.sent) / (opts.hosts * 5);
      }
      log(
        `  batch ${run + 1}: answer ${answerMs.at(-1)} ms, SUCCESSFUL after ${successfulS.at(-1)?.toFixed(1)} s, ` +
          `executor RSS ≤ ${rss.toFixed(0)} MiB`,
      );
    }
    return {
      label,
      commit,
      tasks: opts.tasks,
      tasksPerS,
      roundTripsPerSubtask,
      hosts: opts.hosts,
      batchAccepted: !refusal,
      ...(refusal ? { refusal } : {}),
      answerMs,
      successfulS,
      batchRoundTripsPerSubtask: batchRoundTrips,
      executorRssMiB: rss,
      storagePerHost,
    };
  } finally {
    watch.stop();
    for (const p of procs.reverse()) await p.stop();
    await nc.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchChains(opts: {
  hosts: number;
  tasks: number;
  runs: number;
  baseline?: string;
}): Promise<ChainsResult> {
  const t0 = Date.now();
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  const current = await measureCode(REPO, 'this code', head, opts);
  let baseline: ChainsCodeResult | undefined;
  if (opts.baseline) {
    const base = extract(opts.baseline);
    try {
      baseline = await measureCode(base.root, opts.baseline, base.commit, opts);
    } finally {
      base.remove();
    }
  }
  return { current, ...(baseline ? { baseline } : {}), durationS: (Date.now() - t0) / 1000 };
}

/** The table of issue 13 for these figures: medians, and this code against the baseline. */
export function renderChains(r: ChainsResult): string[] {
  const c = r.current;
  const b = r.baseline;
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const ratio = (now: number, before: number | undefined) =>
    before !== undefined && Number.isFinite(now) && Number.isFinite(before) && before !== 0
      ? `${(now / before).toFixed(2)}×`
      : '–';
  const kib = (x: number) => (Number.isFinite(x) ? `${(x / 1024).toFixed(2)} KiB` : '–');
  const batch = (x: ChainsCodeResult | undefined, what: (y: ChainsCodeResult) => string) =>
    !x ? '–' : x.batchAccepted ? what(x) : 'refused';
  return [
    '## Batches of any size (issue 13)',
    '',
    `\`npm run bench -- --only chains\` (bench/chains.ts): ${c.hosts}-host inventory (all 127.0.0.1), instant`,
    'steps, `batch.maxParallel` and `executor.concurrency` 500 (the default maxParallel, 20, makes the batch',
    `250 rounds of 20 chains), the service as two processes (api, executor). Baseline: ${b ? `\`${b.label}\` (${b.commit})` : 'none'}, measured in the same run;`,
    `this code: ${c.commit}. Medians over the runs; the ratio is this code over the baseline.`,
    '',
    '| measure | baseline | this code | ratio | target |',
    '|---|---|---|---|---|',
    `| batch of every host (${c.hosts}) accepted | ${b && !b.batchAccepted ? `refused (${b.refusal?.slice(0, 80)})` : batch(b, () => 'yes')} | ${c.batchAccepted ? 'yes' : `refused (${c.refusal?.slice(0, 80)})`} | | every host |`,
    `| request → answer, p50 | ${batch(b, (x) => `${f(median(x.answerMs), 0)} ms`)} | ${batch(c, (x) => `${f(median(x.answerMs), 0)} ms`)} | ${ratio(median(c.answerMs), b?.batchAccepted ? median(b.answerMs) : undefined)} | ≤ 1 s |`,
    `| request → SUCCESSFUL | ${batch(b, (x) => `${f(median(x.successfulS))} s`)} | ${batch(c, (x) => `${f(median(x.successfulS))} s`)} | | ≤ 25 s |`,
    `| NATS storage per host of the finished batch: task records | ${batch(b, (x) => kib(x.storagePerHost.tasks))} | ${batch(c, (x) => kib(x.storagePerHost.tasks))} | | ≤ 8 KiB |`,
    `| … events (audit trail) / logs | ${batch(b, (x) => `${kib(x.storagePerHost.events)} / ${kib(x.storagePerHost.logs)}`)} | ${batch(c, (x) => `${kib(x.storagePerHost.events)} / ${kib(x.storagePerHost.logs)}`)} | | |`,
    `| executor RSS during the batch | ${batch(b, (x) => `${f(x.executorRssMiB, 0)} MiB`)} | ${batch(c, (x) => `${f(x.executorRssMiB, 0)} MiB`)} | | ≤ 300 MB |`,
    `| messages to NATS per subtask, batch | ${batch(b, (x) => f(x.batchRoundTripsPerSubtask, 2))} | ${batch(c, (x) => f(x.batchRoundTripsPerSubtask, 2))} | | ≤ 4 |`,
    `| single-host tasks/s, instant steps, one executor process (${c.tasks} tasks) | ${b ? f(b.tasksPerS) : '–'} | ${f(c.tasksPerS)} | ${ratio(c.tasksPerS, b?.tasksPerS)} | ≥ 250 |`,
    `| messages to NATS per subtask, single-host tasks | ${b ? f(b.roundTripsPerSubtask, 2) : '–'} | ${f(c.roundTripsPerSubtask, 2)} | ${ratio(c.roundTripsPerSubtask, b?.roundTripsPerSubtask)} | ≤ 4 |`,
    '',
    'Messages to NATS per subtask: every message the executor process sent to nats-server (requests, publishes,',
    "KV updates, acks, pull requests) over the subtasks it ran, from nats-server's own count (connz `in_msgs`);",
    "each is an awaited reply or state written without waiting, so it bounds SPEC §13's round trips from above.",
    'Processes run under tsx for both codes alike.',
    '',
  ];
}

/** Standalone: `npx tsx bench/chains.ts [--hosts 5000] [--tasks 1000] [--runs 3] [--baseline main]`. */
if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const argv = process.argv.slice(2);
  const val = (name: string, d: string) => argv[argv.indexOf(`--${name}`) + 1] ?? d;
  const has = (name: string) => argv.includes(`--${name}`);
  benchChains({
    hosts: Number(has('hosts') ? val('hosts', '5000') : 5000),
    tasks: Number(has('tasks') ? val('tasks', '1000') : 1000),
    runs: Number(has('runs') ? val('runs', '3') : 3),
    ...(has('no-baseline') ? {} : { baseline: has('baseline') ? val('baseline', 'main') : 'main' }),
  })
    .then((r) => {
      const out = join(REPO, 'docs', 'benchmarks');
      if (!existsSync(out)) mkdirSync(out, { recursive: true });
      writeFileSync(join(out, 'chains.json'), `${JSON.stringify(r, null, 2)}\n`);
      console.log(renderChains(r).join('\n'));
    })
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
