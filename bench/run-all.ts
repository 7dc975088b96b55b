/**
 * `npm run bench`: the performance yardstick (never part of npm test).
 *
 *   1. fleet restart of 50 and 200 simulated hosts: ours (median of --runs)
 *      against parallel-ssh and ansible-playbook on the same hosts;
 *   1b. (bastion) the 50-host restart with every host behind one bastion, against parallel-ssh
 *       through the same bastion (needs root: network namespaces);
 *   2. orchestration overhead per subtask (from our fleet runs);
 *   3. executor throughput with instant steps, one process and two;
 *   4. executor RSS with 1,000 tasks in flight;
 *   5. Slack slash-command ack latency at 20 commands/s;
 *   6. listings and `history <host>` with 100,000 tasks stored, and the
 *      index's RSS (bench/history.ts).
 *   7. batches of any size (bench/chains.ts): a 5,000-host batch and single-host
 *      throughput, this code against main's, measured in the same run.
 *   8. Slack for a batch (bench/slack-batch.ts): the Slack calls a 5,000-host
 *      batch makes, per second of its run, this code against main's.
 *
 * Writes docs/BENCHMARKS.md, docs/benchmarks/fleet.svg and
 * docs/benchmarks/results.json; parts run on their own are merged into the
 * results already there.
 *
 *   npm run bench
 *   npm run bench -- --fleet 50                 (repeatable; default 50 and 200)
 *   npm run bench -- --only fleet,throughput    (fleet|bastion|overhead|throughput|memory|ack|history|chains|slack-batch)
 *   npm run bench -- --only history --history-tasks 10000
 *   npm run bench -- --runs 3 --tasks 1000 --no-ansible
 *   npm run bench -- --report-only             (rewrite the docs from results.json)
 *   BENCH_FLEET_TIMEOUT_S=300 npm run bench -- --only bastion   (a fleet run's time limit, both tools; default 60 s + 1 s a host)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchChains } from './chains.js';
import { benchMemory, benchThroughput } from './executor-load.js';
import { benchFleet } from './fleet.js';
import { benchHistory } from './history.js';
import { machine, requireTools } from './lib/common.js';
import { type AckResult, type Measured, type Results, renderMarkdown, renderSvg } from './report.js';
import { benchSlackBatch } from './slack-batch.js';

const REPO = new URL('..', import.meta.url).pathname;
const DOCS = join(REPO, 'docs');
const RESULTS = join(DOCS, 'benchmarks', 'results.json');
const PARTS = [
  'fleet',
  'bastion',
  'overhead',
  'throughput',
  'memory',
  'ack',
  'history',
  'chains',
  'slack-batch',
] as const;
type Part = (typeof PARTS)[number];

function args(): {
  fleets: number[];
  only: Set<Part>;
  runs: number;
  tasks: number;
  historyTasks: number;
  ansible: boolean;
} {
  const argv = process.argv.slice(2);
  const values = (name: string) => argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1] ?? ''] : []));
  const known = new Set(['--fleet', '--only', '--runs', '--tasks', '--history-tasks', '--no-ansible', '--report-only']);
  argv.forEach((a, i) => {
    if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown option ${a}`);
    if (!a.startsWith('--') && !(argv[i - 1] ?? '').match(/^--(fleet|only|runs|tasks|history-tasks)$/)) {
      throw new Error(`unexpected argument ${a}`);
    }
  });
  const int = (v: string, what: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what} wants a positive integer, not ${v}`);
    return n;
  };
  const fleets = values('fleet').flatMap((v) => v.split(',').map((x) => int(x, '--fleet')));
  for (const n of fleets)
    if (n > 245) throw new Error('--fleet: at most 245 hosts (loopback addresses 127.0.0.10-254)');
  const only = values('only').flatMap((v) => v.split(','));
  for (const p of only) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`--only: unknown part ${p}`);
  const parts = new Set<Part>(
    argv.includes('--report-only')
      ? []
      : only.length > 0
        ? (only as Part[])
        : fleets.length > 0
          ? ['fleet', 'overhead']
          : PARTS,
  );
  return {
    fleets: fleets.length > 0 ? fleets : [50, 200],
    only: parts,
    runs: int(values('runs').at(-1) ?? '3', '--runs'),
    tasks: int(values('tasks').at(-1) ?? '1000', '--tasks'),
    historyTasks: int(values('history-tasks').at(-1) ?? '100000', '--history-tasks'),
    ansible: !argv.includes('--no-ansible'),
  };
}

function measured<T>(result: T, startedAt: Date, load: number[], durationS: number): Measured<T> {
  return { at: startedAt.toISOString(), loadavg: load, durationS, result };
}

/** The commit measured: BENCH_COMMIT, else git's HEAD (+ "with uncommitted changes" when src/ differs). */
function commitOf(): string {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT;
  const git = (...a: string[]) => spawnSync('git', a, { cwd: REPO, encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return 'unknown';
  const dirty = git('status', '--porcelain', '--', 'src').stdout.trim() !== '';
  return `${head.stdout.trim()}${dirty ? ' with uncommitted changes in src/' : ''}`;
}

const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

/** bench/slack-ack.ts --ack-only as its own process; its figures come back as JSON. */
async function benchAck(): Promise<AckResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ocp-bench-ack-'));
  const out = join(dir, 'ack.json');
  try {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', import.meta.resolve('tsx'), join(REPO, 'bench/slack-ack.ts'), '--ack-only', '--json', out],
        { stdio: ['ignore', 'inherit', 'inherit'] },
      );
      child.on('close', resolve);
    });
    if (!existsSync(out)) throw new Error(`bench/slack-ack.ts exited ${code} without results`);
    return JSON.parse(readFileSync(out, 'utf8')) as AckResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const opts = args();
  const started = Date.now();
  const fleetParts = opts.only.has('fleet') || opts.only.has('overhead');
  requireTools([
    'nats-server',
    ...(fleetParts || opts.only.has('ack') ? ['sshd', 'ssh-keygen'] : []),
    ...(opts.only.has('fleet') || opts.only.has('bastion') ? ['ssh', 'parallel-ssh'] : []),
    ...(opts.only.has('fleet') && opts.ansible ? ['ansible-playbook'] : []),
  ]);
  const m = machine();
  console.log(
    `machine: ${m.cpuModel}, ${m.cores} cores, ${m.memGiB} GiB, ${m.kernel}, node ${m.node}, ${m.natsServer}, ` +
      `${m.openssh}, ${m.ansible}, ${m.pssh}; load average ${m.loadavgAtStart.join(' ')}`,
  );
  console.log(`parts: ${[...opts.only].join(', ')}; fleets: ${opts.fleets.join(', ')}; ours runs: ${opts.runs}`);

  const previous: Partial<Results> = existsSync(RESULTS)
    ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Partial<Results>)
    : {};
  const reportOnly = opts.only.size === 0;
  const results: Results = {
    machine: reportOnly ? (previous.machine ?? m) : m,
    command: reportOnly
      ? (previous.command ?? 'npm run bench')
      : `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    commit: reportOnly ? (previous.commit ?? 'unknown') : commitOf(),
    updated: reportOnly ? (previous.updated ?? new Date().toISOString()) : new Date().toISOString(),
    fleet: previous.fleet ?? {},
    throughput: previous.throughput ?? {},
    ...(previous.memory ? { memory: previous.memory } : {}),
    ...(previous.ack ? { ack: previous.ack } : {}),
    ...(previous.chains ? { chains: previous.chains } : {}),
    ...(previous.slackBatch ? { slackBatch: previous.slackBatch } : {}),
    ...(previous.bastion ? { bastion: previous.bastion } : {}),
    ...(previous.history ? { history: previous.history } : {}),
    partDurations: previous.partDurations ?? {},
  };
  const save = () => {
    mkdirSync(join(DOCS, 'benchmarks'), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(DOCS, 'benchmarks', 'fleet.svg'), renderSvg(results));
    const dir = join(DOCS, 'benchmarks');
    const baselines = readdirSync(dir)
      .filter((f) => /^baseline-.*\.json$/.test(f))
      .sort()
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Partial<Results> & { label: string });
    writeFileSync(join(DOCS, 'BENCHMARKS.md'), renderMarkdown(results, baselines));
  };

  let failed = false;
  const part = async (name: string, fn: () => Promise<void>) => {
    const t0 = Date.now();
    try {
      await fn();
    } catch (err) {
      failed = true;
      console.error(`part ${name} failed: ${(err as Error).stack ?? String(err)}`);
    }
    results.partDurations[name] = (Date.now() - t0) / 1000;
    save();
    console.log(`[bench] ${name}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  };

  if (fleetParts) {
    for (const n of opts.fleets) {
      await part(`fleet ${n}`, async () => {
        const at = new Date();
        const l = load();
        // --only overhead: our runs alone, no peers
        const peers = opts.only.has('fleet');
        const r = await benchFleet({ hosts: n, runs: opts.runs, ansible: peers && opts.ansible, peers });
        results.fleet[String(n)] = measured(r, at, l, r.durationS);
      });
    }
  }
  if (opts.only.has('bastion')) {
    await part('bastion', async () => {
      const at = new Date();
      const l = load();
      const r = await benchFleet({
        hosts: 50,
        runs: opts.runs,
        peers: true,
        peerRuns: opts.runs,
        ansible: false,
        bastion: true,
      });
      results.bastion = measured(r, at, l, r.durationS);
    });
  }
  if (opts.only.has('throughput')) {
    for (const processes of [1, 2]) {
      await part(`throughput ${processes} process${processes > 1 ? 'es' : ''}`, async () => {
        const at = new Date();
        const l = load();
        const r = await benchThroughput({ processes, tasks: opts.tasks });
        results.throughput[String(processes)] = measured(r, at, l, r.durationS);
      });
    }
  }
  if (opts.only.has('memory')) {
    await part('memory', async () => {
      const at = new Date();
      const l = load();
      const r = await benchMemory({ tasks: 1000 });
      results.memory = measured(r, at, l, r.durationS);
    });
  }
  if (opts.only.has('ack')) {
    await part('ack', async () => {
      const at = new Date();
      const l = load();
      const t0 = Date.now();
      const r = await benchAck();
      results.ack = measured(r, at, l, (Date.now() - t0) / 1000);
    });
  }
  if (opts.only.has('chains')) {
    await part('chains', async () => {
      const at = new Date();
      const l = load();
      const r = await benchChains({ hosts: 5000, tasks: opts.tasks, runs: opts.runs, baseline: 'main' });
      results.chains = measured(r, at, l, r.durationS);
    });
  }
  if (opts.only.has('slack-batch')) {
    await part('slack-batch', async () => {
      const at = new Date();
      const l = load();
      const r = await benchSlackBatch({ hosts: 5000, baseline: 'main' });
      results.slackBatch = measured(r, at, l, r.durationS);
    });
  }
  if (opts.only.has('history')) {
    await part('history', async () => {
      const at = new Date();
      const l = load();
      const r = await benchHistory({ tasks: opts.historyTasks, runs: opts.runs, iterations: 200 });
      results.history = measured(r, at, l, r.durationS);
    });
  }
  if (!reportOnly) results.partDurations['total (last command)'] = (Date.now() - started) / 1000;
  save();
  console.log(`\nwrote docs/BENCHMARKS.md, docs/benchmarks/fleet.svg, docs/benchmarks/results.json`);
  console.log(`total: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
