/**
 * Slack front door against the real service (in this process), a real
 * nats-server and a real sshd serving simulated hosts, with the local fake of
 * Slack's Web API (test/helpers/fake-slack.ts). Two questions:
 *
 * 1. Slash-command ack latency under an open-loop load: 20 signed
 *    `/ocp-agent …` requests a second for 15 s, each started on schedule
 *    whether or not earlier ones have finished. Mix: 50% `list`, 25%
 *    `status <id>` of a real task, 25% `restart <host>` spread over the hosts
 *    (a restart on a host that is still busy is refused later, on the
 *    response_url). What is timed is the HTTP answer, which Bolt sends when the
 *    handler calls ack(). Baseline in the same run: `GET /healthz` on the same
 *    schedule, with the service idle.
 *    A check that the user-group lookup (usergroups.users.list) is not on the
 *    ack path: the very first command, with a cold group cache, runs while the
 *    fake answers usergroups.users.list only after USERGROUP_DELAY_MS.
 * 2. Slack Web API calls per restart: with nothing else running, single-host
 *    restarts one after the other, each followed until its task has ended, its
 *    thread is complete and no call came for QUIET_MS; the calls the fake saw
 *    in between, by method. Same for failing restarts (`ocp_agentctl restart`
 *    fails, so step 2 fails).
 *
 * Everything listens on loopback only. Not part of npm test.
 *
 *   npx tsx bench/slack-ack.ts [--ack-only] [--json <file>]
 *
 * --ack-only skips question 2; --json writes the ack figures (ms) to <file>
 * (npm run bench runs it so, as its part 5).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createSubtaskLogs } from '../src/nats/subtask-logs.js';
import type { FakeMessage, FakeSlack } from '../test/helpers/fake-slack.js';
import { findExecutable, freePort } from '../test/helpers/nats-server.js';
import { clearFaults, overlappingCalls, readCalls, setFault } from '../test/helpers/sim-agent.js';
import { SLACK_CHANNEL, startFakeSlackAndStack } from '../test/helpers/slack-stack.js';
import { slackUser, taskIdOf, textOf } from '../test/helpers/slack-user.js';
import { readTask, type Stack, waitFor, waitForTask } from '../test/helpers/stack.js';
import { compiled, serviceNodeFlags } from './lib/compile.js';

const REPO = new URL('..', import.meta.url).pathname;

const RATE_PER_S = 20;
const DURATION_S = 15;
const COUNT = RATE_PER_S * DURATION_S;
const INTERVAL_MS = 1000 / RATE_PER_S;
const HOSTS = 20;
const USERS = Array.from({ length: 10 }, (_, i) => `U0BENCH${String(i).padStart(2, '0')}`);
const CHANNEL = SLACK_CHANNEL;
/** Slack gives up on an answer after 3 s. */
const SLACK_LIMIT_MS = 3000;
/** usergroups.users.list answers this late for the cold-cache check. */
const USERGROUP_DELAY_MS = 1000;
/** Healthz probes during the command load (not the baseline), per second. */
const PROBE_PER_S = 2;
const SUCCESS_RUNS = 5;
const FAIL_RUNS = 3;
/** A run is over when no Web API call came for this long (the notifier updates a parent at most once a second). */
const QUIET_MS = 1500;
/** The whole bench must end before this; then it cleans up and fails. */
const WATCHDOG_MS = 115_000;
const ACK_ONLY = process.argv.includes('--ack-only');
const jsonArg = process.argv.indexOf('--json');
const JSON_OUT = jsonArg > 0 ? process.argv[jsonArg + 1] : undefined;

type Kind = 'list' | 'status' | 'restart';
/** Per 4 commands: 2 list, 1 status, 1 restart. */
const PATTERN: readonly Kind[] = ['list', 'status', 'list', 'restart'];

interface Sample {
  i: number;
  kind: Kind;
  user: string;
  /** First command of this user in the load. */
  firstOfUser: boolean;
  /** Actual start minus scheduled start (client-side lag), ms. */
  lagMs: number;
  ms: number;
  status: number;
  text: string;
  responseUrl?: string;
  error?: string;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)] as number;
}

const sortNum = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const median = (xs: readonly number[]) => {
  const s = sortNum(xs);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

function natsVersion(): string {
  try {
    return execFileSync(findExecutable('nats-server'), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'nats-server (version unknown)';
  }
}

function sshdVersion(): string {
  try {
    // `sshd -V` prints the version on stderr and exits non-zero.
    execFileSync('/usr/sbin/sshd', ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return 'sshd';
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? 'sshd')
      .trim()
      .split('\n')[0] as string;
  }
}

/**
 * Open loop: job i starts at t0 + i·interval whatever became of the others.
 * Resolves when all have finished.
 */
async function openLoop<T>(count: number, intervalMs: number, job: (i: number, lagMs: number) => Promise<T>) {
  const t0 = performance.now() + 20;
  const runs: Array<Promise<T>> = [];
  await new Promise<void>((resolve) => {
    let started = 0;
    const tick = () => {
      const now = performance.now();
      while (started < count && t0 + started * intervalMs <= now) {
        const i = started++;
        runs.push(job(i, now - (t0 + i * intervalMs)));
      }
      if (started >= count) return resolve();
      setTimeout(tick, Math.max(0, t0 + started * intervalMs - performance.now()));
    };
    setTimeout(tick, Math.max(0, t0 - performance.now()));
  });
  return Promise.all(runs);
}

async function timedGet(url: string): Promise<{ ms: number; status: number }> {
  const s = performance.now();
  const res = await fetch(url);
  await res.text();
  return { ms: performance.now() - s, status: res.status };
}

/** Resolves once no Web API call arrived for `quietMs` (or after `maxMs`). */
async function quiet(fake: FakeSlack, quietMs: number, maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const last = fake.calls.at(-1)?.at ?? 0;
    const idle = Date.now() - last;
    if (idle >= quietMs) return true;
    await new Promise((r) => setTimeout(r, Math.min(quietMs - idle + 10, 200)));
  }
  return false;
}

function tally(keys: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

const countByMethod = (calls: FakeSlack['calls']) => tally(calls.map((c) => c.method));

interface RestartRun {
  host: number;
  taskId: number;
  status: string;
  ms: number;
  threadReplies: number;
  byMethod: Map<string, number>;
  total: number;
  http429: number;
  responseUrlPosts: number;
}

async function main(): Promise<void> {
  const started = performance.now();
  const cpuList = cpus();
  console.log(
    `machine: ${cpuList.length} CPUs (${cpuList[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `${platform()} ${release()}, node ${process.version}, ${natsVersion()}, ${sshdVersion()}, loadavg ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
  );
  console.log(
    `setup: ${HOSTS} simulated hosts (real sshd), real nats-server, service as two compiled processes (api,slack | executor,notifier) ` +
      '(HTTP receiver, intake, executor over SSH, notifier), fake Slack Web API in this process, client in this process; ' +
      `${USERS.length} Slack users in both user groups; fetch (undici keep-alive) for all requests`,
  );

  let fake: FakeSlack | undefined;
  let stack: Stack | undefined;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    if (stack) for (const h of stack.sshd.hosts) clearFaults(h.agentHome);
    await stack?.stop().catch((err: unknown) => console.error('stack stop failed:', err));
    await fake?.stop().catch((err: unknown) => console.error('fake Slack stop failed:', err));
  };
  const watchdog = setTimeout(() => {
    console.error(`watchdog: bench still running after ${WATCHDOG_MS / 1000} s; cleaning up`);
    process.exitCode = 1;
    void cleanup().finally(() => process.exit(1));
  }, WATCHDOG_MS);
  watchdog.unref();

  try {
    ({ fake, stack } = await startFakeSlackAndStack({ hosts: HOSTS, managers: USERS, viewers: [] }));
    // The service as deployed: compiled, its own processes, the Slack front door (api,slack)
    // apart from the executor and notifier, so neither this load generator nor the steps
    // and Slack posts share the front door's event loop.
    const httpPort = await freePort();
    const entry = compiled(join(REPO, 'src/main.ts'));
    const nodeFlags = serviceNodeFlags();
    stack.spawnService('api,slack', { entry, nodeFlags, env: { HTTP_PORT: String(httpPort) }, logLevel: 'warn' });
    stack.spawnService('executor,notifier', { entry, nodeFlags, logLevel: 'warn' });
    const base = `http://127.0.0.1:${httpPort}`;
    await waitFor('the front door to be ready', async () =>
      (await fetch(`${base}/readyz`).catch(() => undefined))?.ok ? true : undefined,
    );
    const logs = createSubtaskLogs(await stack.nc.jetstream().views.kv('ocp_logs', { bindOnly: true }));
    const eventsUrl = `${base}/slack/events`;
    const user = slackUser(fake, eventsUrl);
    const fk = fake;
    const st = stack;
    const hosts = st.sshd.hosts;
    const parents = () => fk.channel(CHANNEL).filter((m) => !m.thread_ts);
    const responsesTo = (url: string) => fk.responses.filter((r) => r.url === url);
    const setupMs = performance.now() - started;

    // ---- warm-up: one command per kind; the first one checks the cold user-group cache ----
    fk.usergroupDelayMs = USERGROUP_DELAY_MS;
    const groupCalls0 = fk.callsTo('usergroups.users.list').length;
    const coldT0 = performance.now();
    const cold = await user.command('list', { user: USERS[0] as string });
    const coldAnswer = await waitFor('the first list answer', () => responsesTo(cold.responseUrl)[0]);
    const coldAnswerMs = performance.now() - coldT0;
    const coldGroupCalls = fk.callsTo('usergroups.users.list').length - groupCalls0;
    fk.usergroupDelayMs = 0;
    if (cold.status !== 200 || !/Running and recent tasks/.test(JSON.stringify(coldAnswer.body))) {
      throw new Error(`warm-up list failed: HTTP ${cold.status} ${JSON.stringify(coldAnswer.body).slice(0, 300)}`);
    }

    const before = parents().length;
    const wr = await user.command(`restart ${hosts[HOSTS - 1]?.id}`, { user: USERS[1] as string });
    const warmParent = await waitFor('the warm-up parent', () => parents()[before]);
    const warmTaskId = taskIdOf(warmParent);
    await waitForTask(st.nc, warmTaskId);
    const ws = await user.command(`status ${warmTaskId}`, { user: USERS[2] as string });
    const wsAnswer = await waitFor('the warm-up status answer', () => responsesTo(ws.responseUrl)[0]);
    if (!new RegExp(`${warmTaskId}`).test(JSON.stringify(wsAnswer.body))) {
      throw new Error(`warm-up status does not name task ${warmTaskId}: ${JSON.stringify(wsAnswer.body)}`);
    }
    await timedGet(`${base}/healthz`);
    await quiet(fk, QUIET_MS, 15_000);
    console.log(
      `warm-up: list ack ${f1(cold.ms)} ms (cold group cache, usergroups.users.list delayed ${USERGROUP_DELAY_MS} ms, ` +
        `${coldGroupCalls} calls; its answer on the response_url after ${f1(coldAnswerMs)} ms), ` +
        `restart ack ${f1(wr.ms)} ms (task ${warmTaskId}), status ack ${f1(ws.ms)} ms; setup ${f1(setupMs / 1000)} s`,
    );

    // ---- baseline: GET /healthz on the same schedule, service idle ----
    const health = await openLoop(COUNT, INTERVAL_MS, async (_i, lagMs) => {
      try {
        return { ...(await timedGet(`${base}/healthz`)), lagMs };
      } catch (err) {
        return { ms: Number.NaN, status: 0, lagMs, error: (err as Error).message };
      }
    });

    // ---- the command load ----
    const seenUser = new Set<string>();
    let restartSeq = 0;
    const latestTaskId = () => {
      const p = parents().at(-1);
      return p ? taskIdOf(p) : warmTaskId;
    };
    const groupCallsBefore = fk.callsTo('usergroups.users.list').length;
    const callsBefore = fk.calls.length;
    const tasksBefore = parents().length;
    const eld = monitorEventLoopDelay({ resolution: 10 });
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const loadT0 = performance.now();
    eld.enable();
    const probes: number[] = [];
    const probing = openLoop(PROBE_PER_S * DURATION_S, 1000 / PROBE_PER_S, async () => {
      const r = await timedGet(`${base}/healthz`).catch(() => ({ ms: Number.NaN }));
      probes.push(r.ms);
    });
    const samples = await openLoop(COUNT, INTERVAL_MS, async (i, lagMs): Promise<Sample> => {
      const kind = PATTERN[i % PATTERN.length] as Kind;
      const u = USERS[i % USERS.length] as string;
      const firstOfUser = !seenUser.has(u);
      seenUser.add(u);
      const text =
        kind === 'list'
          ? 'list'
          : kind === 'status'
            ? `status ${latestTaskId()}`
            : `restart ${hosts[restartSeq++ % HOSTS]?.id} bench`;
      try {
        const r = await user.command(text, { user: u, triggerId: `bench.${i}.${Date.now()}` });
        return {
          i,
          kind,
          user: u,
          firstOfUser,
          lagMs,
          ms: r.ms,
          status: r.status,
          text: r.text,
          responseUrl: r.responseUrl,
        };
      } catch (err) {
        return {
          i,
          kind,
          user: u,
          firstOfUser,
          lagMs,
          ms: Number.NaN,
          status: 0,
          text: '',
          error: (err as Error).message,
        };
      }
    });
    await probing;
    const loadWallMs = performance.now() - loadT0;
    eld.disable();
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0).utilization;
    const groupCallsDuringLoad = fk.callsTo('usergroups.users.list').length - groupCallsBefore;

    // Let the asynchronous side finish: answers on response_urls, tasks, threads.
    const answerable = samples.filter((s) => s.kind !== 'restart' && s.responseUrl);
    const answered = await waitFor(
      'the list/status answers',
      () => (answerable.every((s) => responsesTo(s.responseUrl as string).length > 0) ? true : undefined),
      30_000,
    ).catch(() => false);
    const drained = await quiet(fk, 2500, 40_000);
    const drainMs = performance.now() - loadT0 - loadWallMs;
    const loadCalls = countByMethod(fk.calls.slice(callsBefore));
    const loadParents = parents().slice(tasksBefore);
    const tasksCreated = loadParents.length;
    const loadCallList = fk.calls.slice(callsBefore);
    const loadTasks = await Promise.all(
      loadParents.map(async (p) => {
        const taskId = taskIdOf(p);
        const task = (await readTask(st.nc, taskId))?.task;
        const failed = task?.subtasks.find((s) => s.status === 'FAILED');
        const log = failed ? await logs.get(taskId, failed.id) : undefined;
        const secs =
          task?.finishTime && task.startTime
            ? (Date.parse(task.finishTime) - Date.parse(task.startTime)) / 1000
            : Number.NaN;
        const steps = (task?.subtasks ?? []).map((sub, k, all) => {
          const prevEnd = k === 0 ? task?.startTime : all[k - 1]?.finishTime;
          const ms = (a?: string, b?: string) => (a && b ? Date.parse(b) - Date.parse(a) : Number.NaN);
          return { name: sub.name, runMs: ms(sub.startTime, sub.finishTime), waitMs: ms(prevEnd, sub.startTime) };
        });
        return {
          taskId,
          steps,
          status: task?.status ?? '?',
          secs,
          updates: loadCallList.filter((c) => c.method === 'chat.update' && c.args.ts === p.ts).length,
          replies: loadCallList.filter((c) => c.method === 'chat.postMessage' && c.args.thread_ts === p.ts).length,
          failedStep: failed
            ? `${failed.name}: ${log?.error ?? '?'}; ${(log?.log ?? '').trim().split('\n').slice(-4).join(' / ')}`
            : undefined,
        };
      }),
    );
    const refusedBusy = samples.filter(
      (s) =>
        s.kind === 'restart' &&
        s.responseUrl &&
        responsesTo(s.responseUrl).some((r) => /Not done/.test(String(r.body.text))),
    ).length;

    // ---- (2) Web API calls per restart, nothing else running ----
    const runs: { ok: RestartRun[]; fail: RestartRun[] } = { ok: [], fail: [] };
    const oneRestart = async (hostIndex: number, failing: boolean): Promise<RestartRun> => {
      const h = hosts[hostIndex];
      if (!h) throw new Error(`no host ${hostIndex}`);
      if (failing) setFault(h.agentHome, 'restart', 'fail');
      const mark = fk.calls.length;
      const marResponses = fk.responses.length;
      const t0 = performance.now();
      const n = parents().length;
      await user.command(`restart ${h.id} calls-per-restart`, { user: USERS[3] as string });
      const parent = await waitFor('the parent', () => parents()[n]);
      const taskId = taskIdOf(parent);
      const task = await waitForTask(st.nc, taskId);
      const expected = failing ? 'FAILED' : 'SUCCESSFUL';
      const final = new RegExp(`Restart OCP agent ${task.status}`);
      const ended = task.subtasks.filter((s) => s.status === 'SUCCESSFUL' || s.status === 'FAILED').length;
      const thread = await waitFor('the complete thread', () => {
        const t = fk.thread(CHANNEL, parent.ts);
        return t.length >= ended + 1 && t.some((m) => final.test(m.text ?? '')) ? t : undefined;
      });
      await waitFor('the parent to show the end', () => {
        const p = parents().find((m: FakeMessage) => m.ts === parent.ts);
        return p && new RegExp(task.status).test(textOf(p)) ? true : undefined;
      });
      await quiet(fk, QUIET_MS, 10_000);
      const ms = performance.now() - t0;
      if (failing) clearFaults(h.agentHome);
      if (task.status !== expected) throw new Error(`restart of host ${h.id}: ${task.status}, expected ${expected}`);
      const calls = fk.calls.slice(mark);
      return {
        host: h.id,
        taskId,
        status: task.status,
        ms,
        threadReplies: thread.length,
        byMethod: countByMethod(calls),
        total: calls.length,
        http429: calls.filter((c) => c.status === 429).length,
        responseUrlPosts: fk.responses.length - marResponses,
      };
    };
    if (!ACK_ONLY) {
      for (let k = 0; k < SUCCESS_RUNS; k++) runs.ok.push(await oneRestart(k, false));
      for (let k = 0; k < FAIL_RUNS; k++) runs.fail.push(await oneRestart(SUCCESS_RUNS + k, true));
    }

    // ---- report ----
    const acks = samples.filter((s) => s.status === 200);
    const bad = samples.filter((s) => s.status !== 200);
    const ackRow = (label: string, xs: readonly number[]) => {
      const s = sortNum(xs.filter(Number.isFinite));
      const over = s.filter((x) => x > SLACK_LIMIT_MS).length;
      return `| ${label} | ${s.length} | ${f1(percentile(s, 50))} | ${f1(percentile(s, 90))} | ${f1(percentile(s, 99))} | ${f1(s.at(-1) ?? Number.NaN)} | ${over} |`;
    };
    console.log('');
    console.log(`## (1) Slash-command ack latency, open loop ${RATE_PER_S}/s for ${DURATION_S} s (${COUNT} commands)`);
    console.log('');
    console.log(`| measure | n | p50 ms | p90 ms | p99 ms | max ms | > ${SLACK_LIMIT_MS} ms |`);
    console.log('|---|---|---|---|---|---|---|');
    console.log(
      ackRow(
        'ack, all commands',
        acks.map((s) => s.ms),
      ),
    );
    for (const k of ['list', 'status', 'restart'] as const) {
      console.log(
        ackRow(
          `ack, \`${k}\``,
          acks.filter((s) => s.kind === k).map((s) => s.ms),
        ),
      );
    }
    console.log(
      ackRow(
        'ack, first command of each user in the load',
        acks.filter((s) => s.firstOfUser).map((s) => s.ms),
      ),
    );
    console.log(
      ackRow(
        'baseline: GET /healthz, same schedule, service idle',
        health.map((h) => h.ms),
      ),
    );
    console.log(ackRow(`probe: GET /healthz ${PROBE_PER_S}/s during the command load`, probes));
    const p50Ack = percentile(sortNum(acks.map((s) => s.ms)), 50);
    const p50Health = percentile(sortNum(health.map((h) => h.ms).filter(Number.isFinite)), 50);
    console.log('');
    console.log(`ratio of p50s (ack / healthz baseline): ${(p50Ack / p50Health).toFixed(1)}`);
    console.log('');
    console.log('| during the command load | value |');
    console.log('|---|---|');
    console.log(`| wall time of the load (last answer) | ${f1(loadWallMs)} ms |`);
    console.log(
      `| client schedule lag p99 / max (start later than planned) | ${f1(percentile(sortNum(samples.map((s) => s.lagMs)), 99))} / ${f1(Math.max(...samples.map((s) => s.lagMs)))} ms |`,
    );
    console.log(
      `| event-loop delay p50 / p99 / max (whole process: client + service) | ${f1(eld.percentile(50) / 1e6)} / ${f1(eld.percentile(99) / 1e6)} / ${f1(eld.max / 1e6)} ms |`,
    );
    console.log(`| event-loop utilisation | ${(elu * 100).toFixed(0)}% |`);
    console.log(
      `| process CPU (user+sys) | ${f1((cpu.user + cpu.system) / 1000)} ms (${(((cpu.user + cpu.system) / 1000 / loadWallMs) * 100).toFixed(0)}% of one CPU) |`,
    );
    console.log(`| non-200 answers / request errors | ${bad.length} (${bad.filter((s) => s.error).length} errors) |`);
    console.log(
      `| acks with a body (ack(text): parse error / unknown host) | ${acks.filter((s) => s.text.length > 0).length} |`,
    );
    console.log(
      `| list/status answered on their response_url | ${answered ? 'all' : 'NOT all within 30 s'} (${answerable.length}) |`,
    );
    console.log(
      `| restarts sent / tasks created / refused as busy (response_url) | ${samples.filter((s) => s.kind === 'restart').length} / ${tasksCreated} / ${refusedBusy} |`,
    );
    console.log(
      `| usergroups.users.list calls during the load | ${groupCallsDuringLoad} (group cache warm from the warm-up) |`,
    );
    console.log(
      `| Web API calls caused by the load (incl. drain) | ${[...loadCalls].map(([m, n]) => `${m} ${n}`).join(', ') || 'none'}; drained ${drained ? 'quietly' : 'NOT quiet'} ${f1(drainMs / 1000)} s after |`,
    );
    console.log('');
    const byStatus = tally(loadTasks.map((t) => t.status));
    console.log(
      `tasks started by the load: ${[...byStatus].map(([k, n]) => `${n} ${k}`).join(', ')}; ` +
        `task duration p50 / max ${f1(median(loadTasks.map((t) => t.secs)))} / ${f1(Math.max(...loadTasks.map((t) => t.secs)))} s; ` +
        `chat.update per task p50 / max ${f1(median(loadTasks.map((t) => t.updates)))} / ${Math.max(...loadTasks.map((t) => t.updates))}; ` +
        `thread replies per task p50 ${f1(median(loadTasks.map((t) => t.replies)))}`,
    );
    const failedSteps = tally(loadTasks.flatMap((t) => (t.failedStep ? [t.failedStep] : [])));
    for (const [why, n] of failedSteps) console.log(`  failed in the load (${n}×): ${why}`);
    const overlaps = hosts.map((h) => overlappingCalls(readCalls(h.agentHome)).length);
    console.log(
      `overlapping ocp_agentctl calls on one host (calls.log, whole run): ${overlaps.reduce((a, b) => a + b, 0)} pairs`,
    );
    console.log('');
    console.log("| step of the load's tasks | n | run p50 s | run max s | wait before it p50 s | wait max s |");
    console.log('|---|---|---|---|---|---|');
    const stepNames = [...new Set(loadTasks.flatMap((t) => t.steps.map((x) => x.name)))];
    for (const name of stepNames) {
      const xs = loadTasks.flatMap((t) => t.steps.filter((x) => x.name === name && Number.isFinite(x.runMs)));
      const runS = xs.map((x) => x.runMs / 1000);
      const waitS = xs.map((x) => x.waitMs / 1000);
      console.log(
        `| ${name} | ${xs.length} | ${f1(median(runS))} | ${f1(Math.max(...runS))} | ${f1(median(waitS))} | ${f1(Math.max(...waitS))} |`,
      );
    }
    if (bad.length > 0) {
      const b = bad[0] as Sample;
      console.log(`first bad answer: #${b.i} ${b.kind}: HTTP ${b.status} ${b.error ?? b.text.slice(0, 200)}`);
    }
    const slow = [...acks].sort((a, b) => b.ms - a.ms).slice(0, 5);
    console.log(
      `slowest acks: ${slow.map((s) => `#${s.i} ${s.kind} ${f1(s.ms)} ms (at ${f1((s.i * INTERVAL_MS) / 1000)} s)`).join('; ')}`,
    );

    const methods = [...new Set([...runs.ok, ...runs.fail].flatMap((r) => [...r.byMethod.keys()]))].sort();
    const summary = (label: string, rs: RestartRun[]) => {
      const cells = methods.map((m) => f1(median(rs.map((r) => r.byMethod.get(m) ?? 0))));
      return `| ${label} (median of ${rs.length}) | ${cells.join(' | ')} | ${f1(median(rs.map((r) => r.total)))} | ${f1(median(rs.map((r) => r.threadReplies)))} | ${f1(median(rs.map((r) => r.ms)) / 1000)} |`;
    };
    if (!ACK_ONLY) {
      console.log('');
      console.log('## (2) Slack Web API calls per single-host restart (no other load)');
      console.log('');
      console.log(`| restart | ${methods.join(' | ')} | total | thread replies | s to quiet |`);
      console.log(`|---|${methods.map(() => '---|').join('')}---|---|---|`);
      console.log(summary('successful', runs.ok));
      console.log(summary('failing (`ocp_agentctl restart` fails)', runs.fail));
      console.log('');
      console.log(
        `| run | host | task | status | ${methods.join(' | ')} | total | 429s | response_url posts | thread replies | s |`,
      );
      console.log(`|---|---|---|---|${methods.map(() => '---|').join('')}---|---|---|---|---|`);
      [...runs.ok, ...runs.fail].forEach((r, k) => {
        console.log(
          `| ${k + 1} | ${r.host} | ${r.taskId} | ${r.status} | ${methods.map((m) => r.byMethod.get(m) ?? 0).join(' | ')} | ${r.total} | ${r.http429} | ${r.responseUrlPosts} | ${r.threadReplies} | ${f1(r.ms / 1000)} |`,
        );
      });
    }
    if (JSON_OUT) {
      const stats = (xs: readonly number[]) => {
        const s = sortNum(xs.filter(Number.isFinite));
        return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s.at(-1) };
      };
      writeFileSync(
        JSON_OUT,
        JSON.stringify({
          ratePerS: RATE_PER_S,
          durationS: DURATION_S,
          ack: stats(acks.map((s) => s.ms)),
          byKind: Object.fromEntries(
            (['list', 'status', 'restart'] as const).map((k) => [
              k,
              stats(acks.filter((s) => s.kind === k).map((s) => s.ms)),
            ]),
          ),
          healthzBaseline: stats(health.map((h) => h.ms)),
          overSlackLimit: acks.filter((s) => s.ms > SLACK_LIMIT_MS).length,
          badAnswers: bad.length,
          answeredAll: answered,
          tasksCreated,
        }),
      );
    }
    if (bad.length > 0 || !answered) process.exitCode = 1;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
    console.log(`\ntotal bench time: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

await main();
