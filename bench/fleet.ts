/**
 * Parts 1 and 2 of `npm run bench`: a fleet restart of N simulated hosts
 * (real OpenSSH sshd's on loopback, fixed agentctl step times), by ours
 * (POST /compute/hosts/batchRestartAgents against the service running as its
 * own process, api + executor roles, batch.maxParallel and executor
 * concurrency at N) and by the peers parallel-ssh and ansible-playbook on the
 * same hosts in the same run; and, from our runs, the orchestration overhead
 * per subtask: READY → its first agentctl call begins on the host.
 *
 * With `bashrc`, the hosts' user has a slow, chatty ~/.bashrc (150 ms, prints
 * a line: a pyenv or conda init), and each tool's runs of it are counted.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinRunbooks } from '../src/core/runbooks/builtin.js';
import type { TaskRecord } from '../src/core/task-record.js';
import { bastionNet, netnsWorks } from '../test/helpers/netns.js';
import {
  agentProcessPids,
  clearCalls,
  processesMatching,
  readCalls,
  regexEscape,
  setStepDurations,
  startSimAgentAsync,
} from '../test/helpers/sim-agent.js';
import { startSshd } from '../test/helpers/sshd.js';
import {
  basicAuth,
  type ChildService,
  readTask,
  type Stack,
  type StackOptions,
  startStack,
} from '../test/helpers/stack.js';
import { cpuSeconds, median, type Summary, sleep, summarize } from './lib/common.js';
import { compiled, serviceNodeFlags } from './lib/compile.js';
import { callsByStep, checkHost, hostFloorSeconds, STEP_DURATIONS } from './lib/host-work.js';
import { type PeerRun, runAnsible, runParallelSsh, writeSshConfig } from './lib/peers.js';

const REPO = new URL('..', import.meta.url).pathname;

export interface ToolRun {
  tool: 'ours' | 'parallel-ssh' | 'ansible';
  run: number;
  /** request (or process start) → every subtask SUCCESSFUL (or process exit), ms */
  wallMs: number;
  ok: boolean;
  hostsOk: number;
  /** what went wrong, when !ok */
  failure?: string;
  /** ours: subtask statuses at the end */
  statuses?: Record<string, number>;
}

export interface OverheadSamples {
  /** ready → the step's first agentctl call begins on the host */
  readyToBegin: number[];
  /** ready → RUNNING stored */
  readyToRunning: number[];
  /** RUNNING stored → agentctl begins */
  runningToBegin: number[];
  /** the step's last agentctl call ends on the host → subtask SUCCESSFUL stored */
  endToDone: number[];
}

export interface FleetResult {
  hosts: number;
  /** the hosts' user had the slow, chatty ~/.bashrc (absent in results stored before it existed) */
  bashrc?: boolean;
  /** every host was reached through one bastion (absent in older results) */
  bastion?: boolean;
  runs: ToolRun[];
  /** ours: median of the runs that succeeded, ms (NaN if none) */
  oursMedianMs: number;
  /** parallel-ssh: median of the runs that succeeded, ms (NaN if none or not run; absent in older results) */
  psshMedianMs?: number;
  overhead: Record<keyof OverheadSamples, Summary>;
  /** extra facts: task size, events, service output on failure */
  notes: string[];
  durationS: number;
}

const TIMEOUTS = Object.fromEntries(builtinRunbooks.flatMap((rb) => rb.steps.map((s) => [s.name, s.timeout])));

function log(msg: string): void {
  console.log(`[fleet ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** Before every run of any tool: empty call logs, every agent up. */
async function resetHosts(stack: Stack): Promise<void> {
  await Promise.all(
    stack.sshd.hosts.map(async (h) => {
      if (agentProcessPids(h.agentHome).length !== 4) await startSimAgentAsync(h.agentHome);
      clearCalls(h.agentHome);
    }),
  );
}

function checkFleet(stack: Stack): { ok: number; firstProblem?: string } {
  let ok = 0;
  let firstProblem: string | undefined;
  for (const h of stack.sshd.hosts) {
    const problem = checkHost(h.agentHome);
    if (problem) firstProblem ??= `host ${h.id} (${h.address}): ${problem}`;
    else ok++;
  }
  return firstProblem ? { ok, firstProblem } : { ok };
}

async function startOurs(stack: Stack): Promise<{ child: ChildService; port: number }> {
  // As `npm start` runs it: compiled JavaScript.
  const child = stack.spawnService('api,executor', {
    entry: compiled(join(REPO, 'src/main.ts')),
    nodeFlags: serviceNodeFlags(),
  });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const m = /"httpPort":(\d+).*"msg":"ready"/.exec(child.output());
    if (m) return { child, port: Number(m[1]) };
    if (child.child.exitCode !== null) throw new Error(`service exited:\n${child.output().slice(-3000)}`);
    await sleep(100);
  }
  throw new Error(`service not ready in 60 s:\n${child.output().slice(-3000)}`);
}

/** The service's warn/error log lines, grouped: "<count> × <component>: <msg> (<error>)". */
function serviceProblems(output: string): string[] {
  const counts = new Map<string, number>();
  for (const line of output.split('\n')) {
    if (!/"level":(40|50|60)/.test(line)) continue;
    let key = line.slice(0, 200);
    try {
      const j = JSON.parse(line) as {
        component?: string;
        msg?: string;
        err?: { message?: string } | string;
        error?: string;
      };
      const err = typeof j.err === 'string' ? j.err : (j.err?.message ?? j.error);
      key = `${j.component ?? 'service'}: ${j.msg ?? ''}${err ? ` (${String(err).slice(0, 160)})` : ''}`;
    } catch {
      // a line cut by the output tail
    }
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([k, n]) => `${n} × ${k}`);
}

/** An error envelope's code and message (not the answering server's address). */
function errorOf(body: string): string {
  try {
    const e = (JSON.parse(body) as { error?: { code?: number; message?: string } }).error;
    if (e) return `error ${e.code}: ${e.message}`;
  } catch {
    // not JSON
  }
  return body.slice(0, 300);
}

/** POST the batch; a 409 right after a run (host locks still being freed) is tried again. */
async function postBatch(port: number, hostIds: number[]): Promise<{ taskId: number } | { error: string }> {
  const t0 = Date.now();
  const deadline = t0 + 15_000;
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${port}/compute/hosts/batchRestartAgents`, {
      method: 'POST',
      headers: { authorization: basicAuth('operator'), 'content-type': 'application/json' },
      body: JSON.stringify({ hostIds }),
    });
    const text = await res.text();
    if (res.status === 200) return { taskId: (JSON.parse(text) as { data: { id: number } }).data.id };
    if (res.status === 409 && Date.now() < deadline) {
      await sleep(200);
      continue;
    }
    return { error: `HTTP ${res.status} after ${Date.now() - t0} ms: ${errorOf(text)}` };
  }
}

function tally(xs: readonly string[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return m;
}

function overheadOf(stack: Stack, record: TaskRecord, into: OverheadSamples): void {
  const task = record.task;
  const byId = new Map(task.subtasks.map((s) => [s.id, s]));
  const hostCalls = new Map(stack.sshd.hosts.map((h) => [h.id, callsByStep(readCalls(h.agentHome))]));
  const created = Date.parse(task.startTime);
  for (const s of task.subtasks) {
    const hostId = record.steps[String(s.id)]?.hostId;
    const calls = hostId === undefined ? undefined : hostCalls.get(hostId);
    if (!calls || s.status !== 'SUCCESSFUL') continue;
    const up = s.upstreams[0] === undefined ? undefined : byId.get(s.upstreams[0]);
    const readyAt = up ? Date.parse(up.finishTime ?? '') : created;
    const runningAt = Date.parse(s.startTime ?? '');
    const doneAt = Date.parse(s.finishTime ?? '');
    const begin = calls.begins[s.seriesId] ?? Number.NaN;
    const end = calls.ends[s.seriesId] ?? Number.NaN;
    into.readyToBegin.push(begin - readyAt);
    into.readyToRunning.push(runningAt - readyAt);
    into.runningToBegin.push(begin - runningAt);
    into.endToDone.push(doneAt - end);
  }
}

/** OCP_EVENTS bytes so far (every task event carries the whole task). */
async function eventBytes(stack: Stack): Promise<number> {
  try {
    const jsm = await stack.nc.jetstreamManager();
    return (await jsm.streams.info('OCP_EVENTS')).state.bytes;
  } catch {
    return Number.NaN;
  }
}

async function runOurs(
  stack: Stack,
  ours: { child: ChildService; port: number },
  run: number,
  timeoutMs: number,
  overhead: OverheadSamples,
  notes: string[],
): Promise<ToolRun> {
  const { port } = ours;
  const hostIds = stack.sshd.hosts.map((h) => h.id);
  await resetHosts(stack);
  const natsPid = processesMatching(regexEscape(stack.nats.storeDir))[0];
  const cpu0 = { service: cpuSeconds(ours.child.child.pid), nats: cpuSeconds(natsPid) };
  const bytes0 = await eventBytes(stack);
  const t0 = Date.now();
  const posted = await postBatch(port, hostIds);
  if ('error' in posted)
    return { tool: 'ours', run, wallMs: Date.now() - t0, ok: false, hostsOk: 0, failure: posted.error };
  const postMs = Date.now() - t0;
  let record: TaskRecord | undefined;
  let readErrors = 0;
  const pollMs = hostIds.length > 100 ? 500 : 200;
  while (Date.now() - t0 < timeoutMs) {
    try {
      record = (await readTask(stack.nc, posted.taskId)) ?? record;
    } catch {
      readErrors++;
    }
    if (record && record.task.status !== 'RUNNING') break;
    await sleep(pollMs);
  }
  const statuses = tally(record?.task.subtasks.map((s) => s.status) ?? []);
  if (!record || record.task.status === 'RUNNING') {
    return {
      tool: 'ours',
      run,
      wallMs: Date.now() - t0,
      ok: false,
      hostsOk: 0,
      statuses,
      failure: `task ${posted.taskId} still RUNNING after ${timeoutMs / 1000} s (subtasks: ${JSON.stringify(statuses)})`,
    };
  }
  const wallMs = Date.parse(record.task.finishTime ?? '') - t0;
  const fleet = checkFleet(stack);
  const allOk = record.task.subtasks.every((s) => s.status === 'SUCCESSFUL');
  overheadOf(stack, record, overhead);
  const bytes = Buffer.byteLength(JSON.stringify(record));
  const cpu = {
    service: cpuSeconds(ours.child.child.pid) - cpu0.service,
    nats: cpuSeconds(natsPid) - cpu0.nats,
  };
  const events = (await eventBytes(stack)) - bytes0;
  notes.push(
    `ours run ${run}: task ${posted.taskId} ${record.task.status} after ${(wallMs / 1000).toFixed(2)} s ` +
      `(POST answered in ${postMs} ms; task record ${Math.round(bytes / 1024)} KiB, ${record.eventSeq} events ` +
      `taking ${Math.round(events / 2 ** 20)} MiB on OCP_EVENTS; CPU until the poll saw the end: service ` +
      `${cpu.service.toFixed(1)} s, nats-server ${cpu.nats.toFixed(1)} s` +
      `${readErrors ? `; ${readErrors} KV reads failed while polling` : ''})`,
  );
  const ok = record.task.status === 'SUCCESSFUL' && allOk && fleet.ok === hostIds.length;
  return {
    tool: 'ours',
    run,
    wallMs,
    ok,
    hostsOk: fleet.ok,
    statuses,
    ...(ok
      ? {}
      : { failure: `task ${record.task.status}, subtasks ${JSON.stringify(statuses)}; ${fleet.firstProblem ?? ''}` }),
  };
}

async function runPeer(stack: Stack, what: () => Promise<PeerRun>): Promise<ToolRun> {
  await resetHosts(stack);
  const r = await what();
  const fleet = checkFleet(stack);
  const ok = r.exitCode === 0 && fleet.ok === stack.sshd.hosts.length;
  return {
    tool: r.tool,
    run: 1,
    wallMs: r.wallMs,
    ok,
    hostsOk: fleet.ok,
    ...(ok ? {} : { failure: `exit ${r.exitCode}; ${fleet.firstProblem ?? ''}\n${r.tail}` }),
  };
}

export interface FleetOptions {
  hosts: number;
  runs: number;
  /** parallel-ssh (and ansible-playbook when `ansible`) too */
  peers: boolean;
  /** ansible-playbook too (the slow one) */
  ansible: boolean;
  /** The hosts' user has a slow, chatty ~/.bashrc (test/helpers/sshd.ts); default false. */
  bashrc?: boolean;
  /** Runs of parallel-ssh (their median is reported); default 1. */
  peerRuns?: number;
  /**
   * The hosts live in a network namespace that only a bastion reaches
   * (test/helpers/netns.ts; needs root): ours goes through it with `jump`,
   * parallel-ssh with ProxyJump to the same bastion.
   */
  bastion?: boolean;
}

/** A bastion in a namespace of its own, and the hosts' namespace behind it (root only). */
async function startBastion(n: number) {
  if (!netnsWorks()) throw new Error('the bastion fleet needs root and `ip netns` (network namespaces)');
  const net = bastionNet(n);
  try {
    const bastion = await startSshd({ hosts: 1, firstId: 9000, ...(net.bastion ? { network: net.bastion } : {}) });
    const jump = { address: bastion.hosts[0]!.address, port: bastion.hosts[0]!.port };
    const knownHosts = readFileSync(bastion.knownHostsPath, 'utf8');
    const stackOptions: Partial<StackOptions> = {
      sshd: { clientKeyPath: bastion.privateKeyPath, ...(net.hosts ? { network: net.hosts } : {}) },
      moreKnownHosts: knownHosts,
      editConfig: (file) => ({
        ...file,
        groups: { behind: { jump } },
        hosts: (file.hosts as object[]).map((h) => ({ ...h, group: 'behind' })),
      }),
    };
    return {
      jump,
      knownHosts,
      stackOptions,
      stop: async () => {
        await bastion.stop();
        net.remove();
      },
    };
  } catch (err) {
    net.remove();
    throw err;
  }
}

export async function benchFleet(opts: FleetOptions): Promise<FleetResult> {
  const started = Date.now();
  const { hosts: n } = opts;
  const overhead: OverheadSamples = { readyToBegin: [], readyToRunning: [], runningToBegin: [], endToDone: [] };
  const notes: string[] = [];
  const runs: ToolRun[] = [];
  // Generous: 60 s plus a second per host beyond the ideal; BENCH_FLEET_TIMEOUT_S
  // gives more where the machine is the limit (50 sessions through a bastion
  // fork ~1,000 processes, which 2 cores take longer than that to run).
  const timeoutMs = Number(process.env.BENCH_FLEET_TIMEOUT_S ?? 0) * 1000 || 60_000 + n * 1000;
  log(`${n} hosts: starting nats-server, ${Math.ceil(n / 16)} sshd's, the stack`);
  const behind = opts.bastion ? await startBastion(n) : undefined;
  const stack = await startStack({
    ...behind?.stackOptions,
    hosts: n,
    maxParallel: n,
    executorConcurrency: n,
    leaseSeconds: 30,
    killGraceSeconds: 30,
    connectTimeoutSeconds: 10,
    stepTimeouts: TIMEOUTS,
    ...(opts.bashrc ? { bashrc: {} } : {}),
  });
  /** ~/.bashrc runs since the last call, and the connections they served. */
  let bashrcSeen = 0;
  const bashrcSince = (): string => {
    const runs = stack.sshd.bashrcRuns().slice(bashrcSeen);
    bashrcSeen += runs.length;
    return `${runs.length} ~/.bashrc runs for ${new Set(runs.map((r) => r.connection)).size} SSH connections`;
  };
  const dir = mkdtempSync(join(tmpdir(), 'ocp-bench-fleet-'));
  try {
    for (const h of stack.sshd.hosts) setStepDurations(h.agentHome, STEP_DURATIONS);
    // parallel-ssh checks the bastion's key in the hosts' known_hosts, as the service does in its own.
    if (behind) appendFileSync(stack.sshd.knownHostsPath, behind.knownHosts);
    const sshConfig = writeSshConfig(dir, stack.sshd, behind?.jump);

    log(`${n} hosts: ours (${opts.runs} runs), service as its own process, ROLES=api,executor`);
    let ours: { child: ChildService; port: number } | undefined;
    try {
      ours = await startOurs(stack);
      for (let run = 1; run <= opts.runs; run++) {
        const r = await runOurs(stack, ours, run, timeoutMs, overhead, notes);
        runs.push(r);
        log(`  ours run ${run}: ${(r.wallMs / 1000).toFixed(2)} s ${r.ok ? 'ok' : `FAILED: ${r.failure}`}`);
        if (!r.ok) {
          const problems = serviceProblems(ours.child.output());
          notes.push(
            `ours run ${run} failed: ${r.failure}` +
              (problems.length
                ? `\nthe service's warnings and errors (count × component: message):\n${problems.join('\n')}`
                : ''),
          );
          if (run < opts.runs) notes.push(`ours: runs after the failed run ${run} were not attempted`);
          break;
        }
        await sleep(1000);
      }
    } catch (err) {
      notes.push(`ours: ${(err as Error).message}`);
      runs.push({ tool: 'ours', run: 1, wallMs: Number.NaN, ok: false, hostsOk: 0, failure: (err as Error).message });
    } finally {
      await ours?.child.kill('SIGTERM');
    }
    if (opts.bashrc) notes.push(`ours, ${opts.runs} runs in one service process: ${bashrcSince()}`);

    if (opts.peers) {
      const peerRuns = opts.peerRuns ?? 1;
      log(`${n} hosts: parallel-ssh -p 50 (${peerRuns} run${peerRuns > 1 ? 's' : ''})`);
      for (let run = 1; run <= peerRuns; run++) {
        const pssh = {
          ...(await runPeer(stack, () => runParallelSsh(dir, sshConfig, stack.sshd.hosts, stack.config, timeoutMs))),
          run,
        };
        runs.push(pssh);
        log(
          `  parallel-ssh run ${run}: ${(pssh.wallMs / 1000).toFixed(2)} s ${pssh.ok ? 'ok' : `FAILED: ${pssh.failure}`}`,
        );
        if (run < peerRuns) await sleep(1000);
      }
      if (opts.bashrc) notes.push(`parallel-ssh, ${peerRuns} runs: ${bashrcSince()}`);
    }

    if (opts.peers && opts.ansible) {
      log(`${n} hosts: ansible-playbook, forks 50, pipelining, strategy free`);
      const ans = await runPeer(stack, () => runAnsible(dir, sshConfig, stack.sshd.hosts, stack.config, 1_200_000));
      runs.push(ans);
      log(`  ansible: ${(ans.wallMs / 1000).toFixed(2)} s ${ans.ok ? 'ok' : `FAILED: ${ans.failure}`}`);
    }
    if (behind) notes.push(`every host reached through one bastion at ${behind.jump.address}:${behind.jump.port}`);
  } finally {
    await stack.stop().catch((err: unknown) => console.error('stack stop failed:', err));
    await behind?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const good = runs.filter((r) => r.tool === 'ours' && r.ok).map((r) => r.wallMs);
  const psshGood = runs.filter((r) => r.tool === 'parallel-ssh' && r.ok).map((r) => r.wallMs);
  notes.push(`host floor: ${hostFloorSeconds().toFixed(2)} s of fixed agentctl time per host (7 calls)`);
  return {
    hosts: n,
    bashrc: opts.bashrc ?? false,
    bastion: opts.bastion ?? false,
    runs,
    oursMedianMs: median(good),
    psshMedianMs: median(psshGood),
    overhead: {
      readyToBegin: summarize(overhead.readyToBegin),
      readyToRunning: summarize(overhead.readyToRunning),
      runningToBegin: summarize(overhead.runningToBegin),
      endToDone: summarize(overhead.endToDone),
    },
    notes,
    durationS: (Date.now() - started) / 1000,
  };
}
