/**
 * `npm run bench -- --only slack-batch`: Slack calls for a batch of every host
 * of a 5,000-host inventory (issue 13, SPEC §10 "Slack, for a batch": under
 * one call a second of the batch's run, whatever its size), this code against
 * a baseline measured in the same run (`main` by default, extracted with `git
 * archive`), run the same way on the same machine.
 *
 * For each code: a real nats-server, the fake Slack Web API of the tests
 * (test/helpers/fake-slack.ts: no rate limit, answers at once, records every
 * call), and the service as two processes — ROLES=api,executor with the
 * instant step runner (bench/executor-with-runner.ts) and ROLES=notifier —
 * tasks from HTTP posting to slack.defaultChannel. One batch of every host
 * over HTTP; its run is request → its end event; its Slack calls are every
 * chat.* call from the request until the thread is quiet (no call for
 * QUIET_MS) or SETTLE_LIMIT_MS passed (a notifier that cannot keep up is
 * recorded as not settled, with what it made by then).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { stringify } from 'yaml';
import { hashPassword } from '../src/http/auth.js';
import { startFakeSlack } from '../test/helpers/fake-slack.js';
import { startNatsServer } from '../test/helpers/nats-server.js';
import { extract, type Proc, REPO, ready, spawnService } from './lib/code-tree.js';
import { sleep } from './lib/common.js';

const AUTH = `Basic ${Buffer.from('bench:bench-secret').toString('base64')}`;
const CHANNEL = 'C0BENCH';
/** The thread counts as done once no Slack call came for this long (ms). */
const QUIET_MS = 5000;
/** At most this long from the batch's end for the thread to settle (ms). */
const SETTLE_LIMIT_MS = 10 * 60_000;

function log(msg: string): void {
  console.log(`[slack-batch ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

export interface SlackBatchCodeResult {
  label: string;
  commit: string;
  hosts: number;
  /** Request → the batch's end event, s. */
  runS: number;
  /** chat.* calls from the request until the thread settled (or the limit). */
  calls: number;
  byMethod: Record<string, number>;
  /** Thread replies among them (chat.postMessage with thread_ts). */
  replies: number;
  callsPerRunSecond: number;
  callsPerHost: number;
  /** Most calls in any one second. */
  peakPerSecond: number;
  /** Whether the thread went quiet within the limit. */
  settled: boolean;
  /** Request → the last call, s. */
  lastCallS: number;
}

export interface SlackBatchResult {
  current: SlackBatchCodeResult;
  baseline?: SlackBatchCodeResult;
  durationS: number;
}

/** The end of a task as its events say, epoch ms. */
function watchEnd(nc: NatsConnection): { ends: Map<number, number>; stop(): void } {
  const ends = new Map<number, number>();
  const sub = nc.subscribe('ocp.events.task.*');
  void (async () => {
    for await (const m of sub) {
      const text = m.string();
      if (!text.includes('"type":"task.successful"') && !text.includes('"type":"task.failed"')) continue;
      ends.set((JSON.parse(text) as { taskId: number }).taskId, Date.now());
    }
  })();
  return { ends, stop: () => sub.unsubscribe() };
}

/** Most of `times` (epoch ms, ascending) within any one second. */
function peakPerSecond(times: readonly number[]): number {
  let peak = 0;
  let from = 0;
  for (let i = 0; i < times.length; i++) {
    while ((times[i] as number) - (times[from] as number) >= 1000) from++;
    peak = Math.max(peak, i - from + 1);
  }
  return peak;
}

async function measureCode(root: string, label: string, commit: string, hosts: number): Promise<SlackBatchCodeResult> {
  log(`${label} (${commit}): a batch of ${hosts} hosts, Slack on`);
  const nats = await startNatsServer();
  const fake = await startFakeSlack();
  fake.addChannel(CHANNEL);
  const dir = mkdtempSync(join(tmpdir(), 'ocp-bench-slack-batch-'));
  const configPath = join(dir, 'ocp-chatops.yml');
  writeFileSync(
    configPath,
    stringify({
      hosts: Array.from({ length: hosts }, (_, k) => ({ id: k + 1, name: `h${k + 1}`, address: '127.0.0.1' })),
      executor: { concurrency: 500 },
      batch: { maxParallel: 500 },
      slack: { defaultChannel: CHANNEL },
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
    LOG_LEVEL: 'info',
    SLACK_API_URL: fake.apiUrl,
    SLACK_BOT_TOKEN: fake.token,
    SLACK_SIGNING_SECRET: 'bench-signing-secret',
  };
  const nc = await connect({ servers: nats.url });
  const watch = watchEnd(nc);
  const procs: Proc[] = [];
  try {
    const main = spawnService(root, env, 'api,executor');
    procs.push(main);
    const notifier = spawnService(root, env, 'notifier');
    procs.push(notifier);
    await ready(main, 'api,executor');
    await ready(notifier, 'notifier');
    const port = main.httpPort() as number;

    const first = fake.calls.length;
    const t0 = Date.now();
    const res = await fetch(`http://127.0.0.1:${port}/compute/hosts/batchRestartAgents`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ hostIds: Array.from({ length: hosts }, (_, k) => k + 1) }),
    });
    const body = (await res.json()) as { data?: { id: number }; error?: { message: string } };
    if (res.status !== 200 || !body.data) throw new Error(`batch refused: ${res.status} ${body.error?.message}`);
    const taskId = body.data.id;
    const runDeadline = Date.now() + 600_000;
    while (!watch.ends.has(taskId) && Date.now() < runDeadline) await sleep(250);
    const endAt = watch.ends.get(taskId);
    if (endAt === undefined) throw new Error(`batch ${taskId} never ended:\n${main.tail().slice(-2000)}`);
    const runS = (endAt - t0) / 1000;
    log(`  ended after ${runS.toFixed(1)} s; waiting for the thread to settle`);

    const chat = () => fake.calls.slice(first).filter((c) => c.method.startsWith('chat.'));
    const settleBy = endAt + SETTLE_LIMIT_MS;
    let settled = false;
    while (Date.now() < settleBy) {
      const last = chat().at(-1)?.at ?? t0;
      if (Date.now() - last >= QUIET_MS) {
        settled = true;
        break;
      }
      await sleep(500);
    }
    const calls = chat();
    const byMethod: Record<string, number> = {};
    for (const c of calls) byMethod[c.method] = (byMethod[c.method] ?? 0) + 1;
    const replies = calls.filter((c) => c.method === 'chat.postMessage' && c.args.thread_ts !== undefined).length;
    const result: SlackBatchCodeResult = {
      label,
      commit,
      hosts,
      runS,
      calls: calls.length,
      byMethod,
      replies,
      callsPerRunSecond: calls.length / runS,
      callsPerHost: calls.length / hosts,
      peakPerSecond: peakPerSecond(calls.map((c) => c.at)),
      settled,
      lastCallS: ((calls.at(-1)?.at ?? t0) - t0) / 1000,
    };
    log(
      `  ${result.calls} Slack calls (${result.replies} thread replies) in a run of ${runS.toFixed(1)} s: ` +
        `${result.callsPerRunSecond.toFixed(2)} a second of the run, peak ${result.peakPerSecond} in a second` +
        `${settled ? '' : ` — not settled ${SETTLE_LIMIT_MS / 60_000} min after the end`}`,
    );
    return result;
  } finally {
    watch.stop();
    for (const p of procs.reverse()) await p.stop();
    await nc.close();
    await fake.stop();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchSlackBatch(opts: { hosts: number; baseline?: string }): Promise<SlackBatchResult> {
  const t0 = Date.now();
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  const current = await measureCode(REPO, 'this code', head, opts.hosts);
  let baseline: SlackBatchCodeResult | undefined;
  if (opts.baseline) {
    const base = extract(opts.baseline);
    try {
      baseline = await measureCode(base.root, opts.baseline, base.commit, opts.hosts);
    } finally {
      base.remove();
    }
  }
  return { current, ...(baseline ? { baseline } : {}), durationS: (Date.now() - t0) / 1000 };
}

/** The Slack row of issue 13's table, with how it was measured. */
export function renderSlackBatch(r: SlackBatchResult): string[] {
  const c = r.current;
  const b = r.baseline;
  const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const cell = (x: SlackBatchCodeResult | undefined, what: (y: SlackBatchCodeResult) => string) =>
    !x ? '–' : `${what(x)}${x.settled ? '' : ' (not settled)'}`;
  return [
    '## Slack for a batch (issue 13)',
    '',
    `\`npm run bench -- --only slack-batch\` (bench/slack-batch.ts): a batch of every host of a ${c.hosts}-host`,
    'inventory, instant steps, `batch.maxParallel` 500, the service as two processes (api+executor, notifier),',
    "Slack's Web API faked (no rate limit). Calls: every chat.* call from the request until the thread had none",
    `for ${QUIET_MS / 1000} s (at most ${SETTLE_LIMIT_MS / 60_000} min after the end: else "not settled", with the calls made by then).`,
    `Baseline: ${b ? `\`${b.label}\` (${b.commit})` : 'none'}, measured in the same run; this code: ${c.commit}.`,
    '',
    '| measure | baseline | this code | target |',
    '|---|---|---|---|',
    `| Slack calls per second of the batch's run | ${cell(b, (x) => f(x.callsPerRunSecond))} | ${cell(c, (x) => f(x.callsPerRunSecond))} | ≤ 1 |`,
    `| Slack calls per host | ${cell(b, (x) => f(x.callsPerHost, 3))} | ${cell(c, (x) => f(x.callsPerHost, 3))} | |`,
    `| calls (thread replies) / run | ${cell(b, (x) => `${x.calls} (${x.replies}) / ${f(x.runS, 1)} s`)} | ${cell(c, (x) => `${x.calls} (${x.replies}) / ${f(x.runS, 1)} s`)} | |`,
    `| most calls in one second | ${cell(b, (x) => String(x.peakPerSecond))} | ${cell(c, (x) => String(x.peakPerSecond))} | |`,
    `| request → the thread's last call | ${cell(b, (x) => `${f(x.lastCallS, 1)} s`)} | ${cell(c, (x) => `${f(x.lastCallS, 1)} s`)} | |`,
    '',
  ];
}

/** Standalone: `npx tsx bench/slack-batch.ts [--hosts 5000] [--baseline main | --no-baseline]`. */
if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const argv = process.argv.slice(2);
  const val = (name: string, d: string) =>
    argv.includes(`--${name}`) ? (argv[argv.indexOf(`--${name}`) + 1] ?? d) : d;
  benchSlackBatch({
    hosts: Number(val('hosts', '5000')),
    ...(argv.includes('--no-baseline') ? {} : { baseline: val('baseline', 'main') }),
  })
    .then((r) => {
      const out = join(REPO, 'docs', 'benchmarks');
      if (!existsSync(out)) mkdirSync(out, { recursive: true });
      writeFileSync(join(out, 'slack-batch.json'), `${JSON.stringify(r, null, 2)}\n`);
      console.log(renderSlackBatch(r).join('\n'));
    })
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
