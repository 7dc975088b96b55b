/**
 * `npm run demo`: a self-contained tour of ocp-chatops on one machine.
 *
 * It starts a nats-server (JetStream, temporary store), OpenSSH's sshd serving
 * three simulated OceanBase hosts (101..103, each with a simulated
 * ocp_agentctl), the whole service in this process, and a local stand-in for
 * Slack's Web API; then it acts as the people in channel #ops and draws the
 * channel in the terminal as the bot posts and edits:
 *
 *   1. bob types `/ocp-agent restart 101 monagent stuck`; the thread fills in.
 *   2. host 102's agent is made to fail its restart; bob types
 *      `/ocp-agent restart 102`; the task fails and offers Retry; the fault is
 *      cleared and alice (TASK_MANAGER) presses Retry; the task succeeds.
 *   3. a summary (tasks, Slack API calls by method), then everything stops.
 *
 * Everything listens on 127.0.0.0/8 only. Flags: `--fast` (no pauses, no
 * typing, no slowed steps), `--no-draw` (log lines instead of a redrawn
 * screen; the default when stdout is not a terminal). Exit code 0 when every
 * step reached its expected state, 1 otherwise.
 */
import { existsSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OcpTask } from '../src/contracts/ocp-task.js';
import type { FakeMessage, FakeSlack } from '../test/helpers/fake-slack.js';
import type { Stack } from '../test/helpers/stack.js';
import {
  ANSI,
  type Frame,
  messageLines,
  PLAIN,
  renderFrame,
  stripAnsi,
  USER_NAMES,
  type ViewItem,
} from './slack-view.js';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log('usage: npm run demo [-- --fast] [-- --no-draw]');
  process.exit(0);
}
const unknownFlag = argv.find((a) => a !== '--fast' && a !== '--no-draw');
if (unknownFlag) {
  console.error(`demo: unknown option ${unknownFlag}; usage: npm run demo [-- --fast] [-- --no-draw]`);
  process.exit(2);
}
const FAST = argv.includes('--fast');
const DRAW = !argv.includes('--no-draw') && process.stdout.isTTY === true;

const CHANNEL = 'C0OPS';
const CHANNEL_NAME = 'ops';
const BOB = 'U0BOB';
const ALICE = 'U0ALICE';
/** Seconds the simulated agent takes for restart/stop/start, so the thread fills in at a watchable pace. */
const SLOW_STEP_SECONDS = 1;
const TASK_TIMEOUT_MS = 30_000;
const SLACK_TIMEOUT_MS = 15_000;
/** The whole run, stopping included; beyond it the demo gives up. */
const WATCHDOG_MS = 85_000;

// ------------------------------------------------------------ prerequisites

function onPath(name: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.some((d) => d !== '' && existsSync(join(d, name)));
}

/** Debian packages whose binaries the demo needs and cannot find. */
function missingPackages(): string[] {
  const missing: string[] = [];
  if (!onPath('nats-server')) missing.push('nats-server');
  // The sshd helper runs /usr/sbin/sshd by absolute path; ssh-keygen makes its keys.
  if (!existsSync('/usr/sbin/sshd') || !onPath('ssh-keygen')) missing.push('openssh-server');
  return missing;
}

const missing = missingPackages();
if (missing.length > 0) {
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  console.error(
    [
      `npm run demo runs a real nats-server and OpenSSH's sshd on 127.0.0.1; missing here: ${missing.join(' and ')}.`,
      'Install them (Debian/Ubuntu), then run it again:',
      '',
      `  ${sudo}apt-get install -y nats-server openssh-server`,
      '',
      `(If apt-get cannot find them, run \`${sudo}apt-get update\` first.)`,
    ].join('\n'),
  );
  process.exit(1);
}

// The service logs JSON to stdout; on a redrawn screen only errors, and not even those, would fit.
process.env.TEST_LOG_LEVEL ??= DRAW ? 'silent' : 'error';

// The test helpers bring in the whole service: loaded once the screen shows something.
type Helpers = typeof import('../test/helpers/fake-slack.js') &
  typeof import('../test/helpers/sim-agent.js') &
  typeof import('../test/helpers/slack-user.js') &
  typeof import('../test/helpers/stack.js');
type SlackUser = ReturnType<Helpers['slackUser']>;
let h: Helpers;
async function loadHelpers(): Promise<void> {
  const mods = await Promise.all([
    import('../test/helpers/fake-slack.js'),
    import('../test/helpers/sim-agent.js'),
    import('../test/helpers/slack-user.js'),
    import('../test/helpers/stack.js'),
  ]);
  h = Object.assign({}, ...mods) as Helpers;
}

// -------------------------------------------------------------------- state

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
let fake: FakeSlack | undefined;
let stack: Stack | undefined;
const taskIds: number[] = [];
const seenAt = new Map<string, number>();
const ephemerals: Frame['ephemerals'] = [];
const responseOwner = new Map<string, string>();
let responsesSeen = 0;
let narration = 'starting…';
/** What runs where, shown above the first message. */
const intro: string[] = [];
function addIntro(...lines: string[]): void {
  intro.push(...lines);
  for (const l of lines) log(stripAnsi(l).trim());
}
let composer: Frame['composer'];
let pressed: Frame['pressed'];

function log(line: string): void {
  if (!DRAW) process.stdout.write(`[${elapsed().padStart(7)}] ${line}\n`);
}

function narrate(text: string): void {
  if (!DRAW && drawTimer) logChanges(); // what the channel shows first, then what comes next
  narration = text;
  log(`▶ ${text}`);
}

function parents(): FakeMessage[] {
  return fake ? fake.channel(CHANNEL).filter((m) => m.thread_ts === undefined) : [];
}

function parentByTs(ts: string): FakeMessage | undefined {
  return parents().find((m) => m.ts === ts);
}

function items(): ViewItem[] {
  const f = fake;
  if (!f) return [];
  for (const r of f.responses.slice(responsesSeen)) {
    const text = typeof r.body.text === 'string' ? r.body.text : JSON.stringify(r.body);
    ephemerals.push({ user: responseOwner.get(r.url) ?? 'you', text });
    log(`👁 only visible to ${responseOwner.get(r.url) ?? 'you'}: ${text}`);
  }
  responsesSeen = f.responses.length;
  return parents().map((parent) => {
    if (!seenAt.has(parent.ts)) seenAt.set(parent.ts, Date.now());
    return { parent, replies: f.thread(CHANNEL, parent.ts), seenAt: seenAt.get(parent.ts) ?? Date.now() };
  });
}

// ------------------------------------------------------------------ drawing

let drawTimer: NodeJS.Timeout | undefined;
let lastFrame = '';

function draw(): void {
  const frame: Frame = {
    channelName: CHANNEL_NAME,
    items: items(),
    ephemerals,
    intro,
    narration,
    status: `ocp-chatops demo · local Slack stand-in · ${elapsed()}`,
    ...(composer ? { composer } : {}),
    ...(pressed ? { pressed } : {}),
  };
  const lines = renderFrame(frame, process.stdout.columns || 100, process.stdout.rows || 30, ANSI);
  const out = `\x1b[H${lines.join('\x1b[K\n')}\x1b[K\x1b[J`;
  if (out !== lastFrame) process.stdout.write(out);
  lastFrame = out;
}

/** --no-draw: what changed in the channel since the last look, as log lines. */
const logged = new Map<string, { lines: string[]; replies: number }>();
function logChanges(): void {
  for (const item of items()) {
    const id = /Task \*(\d+)\*/.exec(JSON.stringify(item.parent.blocks ?? []))?.[1] ?? '?';
    const lines = messageLines(item.parent, PLAIN).map(stripAnsi);
    const prev = logged.get(item.parent.ts);
    if (!prev) {
      log(`#${CHANNEL_NAME} ocp-bot posted (task ${id}):`);
      for (const l of lines) log(`    ${l}`);
    } else {
      const changed = lines.filter((l) => !prev.lines.includes(l));
      if (changed.length > 0) {
        log(`#${CHANNEL_NAME} ocp-bot edited (task ${id}):`);
        for (const l of changed) log(`    ${l}`);
      }
    }
    for (const r of item.replies.slice(prev?.replies ?? 0)) {
      const [head = '', ...rest] = messageLines(r, PLAIN).map(stripAnsi);
      log(
        `#${CHANNEL_NAME}   ┃ thread of task ${id}${r.reply_broadcast ? ' (also sent to the channel)' : ''}: ${head}`,
      );
      for (const l of rest) log(`    ┃   ${l}`);
    }
    logged.set(item.parent.ts, { lines, replies: item.replies.length });
  }
}

function startView(): void {
  if (DRAW) {
    process.stdout.write('\x1b[?25l\x1b[2J\x1b[H');
    draw();
    drawTimer = setInterval(draw, 250); // at most 4 frames a second
    process.stdout.on('resize', () => {
      process.stdout.write('\x1b[2J');
      lastFrame = '';
    });
  } else {
    drawTimer = setInterval(logChanges, 100);
  }
}

function stopView(): void {
  if (drawTimer) clearInterval(drawTimer);
  drawTimer = undefined;
  if (DRAW) {
    draw();
    process.stdout.write('\x1b[?25h\n');
  } else {
    logChanges();
  }
}

// -------------------------------------------------------------------- steps

const pause = (ms: number) => (FAST ? Promise.resolve() : sleep(ms));

async function typeCommand(user: SlackUser, userId: string, text: string): Promise<FakeMessage> {
  const name = USER_NAMES[userId] ?? userId;
  const full = `/ocp-agent ${text}`;
  narrate(`typing ${full}… (as ${name})`);
  if (!FAST) {
    for (let i = 1; i <= full.length; i++) {
      composer = { user: name, text: full.slice(0, i) };
      await sleep(30);
    }
    await sleep(400);
  }
  composer = undefined;
  const before = parents().length;
  const res = await user.command(text, { user: userId, channel: CHANNEL });
  responseOwner.set(res.responseUrl, name);
  if (res.status !== 200) throw new Error(`Slack got HTTP ${res.status} for ${full}: ${res.text}`);
  if (res.text.trim() !== '') {
    const body = JSON.parse(res.text) as { text?: string };
    if (body.text) ephemerals.push({ user: name, text: body.text });
  }
  return h.waitFor(`the bot's message for ${full}`, () => parents()[before], SLACK_TIMEOUT_MS);
}

/** Wait until the task is no longer RUNNING (after `done`), and fail unless it ended `want`. */
async function taskEnds(taskId: number, want: OcpTask['status'], done?: (t: OcpTask) => boolean): Promise<OcpTask> {
  const stack_ = stack as Stack;
  const task = await h.waitForTask(
    stack_.nc,
    taskId,
    (t) => t.status !== 'RUNNING' && (done ? done(t) : true),
    TASK_TIMEOUT_MS,
  );
  if (task.status !== want) {
    throw new Error(`task ${taskId} ended ${task.status}, expected ${want}`);
  }
  return task;
}

/** Wait until #ops shows the task `status` in its parent and `finals` final replies in its thread. */
async function channelShows(ts: string, taskId: number, status: string, finals: number): Promise<FakeMessage> {
  return h.waitFor(
    `#${CHANNEL_NAME} to show task ${taskId} ${status}`,
    () => {
      const p = parentByTs(ts);
      const replies = fake?.thread(CHANNEL, ts) ?? [];
      const n = replies.filter((r) => /OCP agent (SUCCESSFUL|FAILED)/.test(r.text ?? '')).length;
      return p && (p.text ?? '').endsWith(`— ${status}`) && n >= finals ? p : undefined;
    },
    SLACK_TIMEOUT_MS,
  );
}

async function run(): Promise<void> {
  narrate('starting a local stand-in for Slack, nats-server, and sshd with 3 simulated hosts…');
  startView();
  addIntro(
    ` ${ANSI.bold(`This is the very beginning of #${CHANNEL_NAME}.`)} All of it runs here, on 127.0.0.0/8 only:`,
  );
  await loadHelpers();
  fake = await h.startFakeSlack();
  fake.addChannel(CHANNEL);
  fake.setUsergroup('S0ONCALL', [ALICE, BOB]);
  addIntro(`   • Slack        a stand-in for its Web API, ${fake.apiUrl}, drawn on this screen`);
  stack = await h.startStack({
    hosts: 3,
    stepTimeout: 20,
    killGraceSeconds: 2,
    slack: {
      apiUrl: fake.apiUrl,
      botToken: fake.token,
      signingSecret: h.SIGNING_SECRET,
      access: {
        HOST_MANAGER: { usergroups: ['S0ONCALL'] },
        HOST_VIEWER: { usergroups: ['S0ONCALL'] },
        TASK_VIEWER: { usergroups: ['S0ONCALL'] },
        TASK_MANAGER: { users: [ALICE] },
      },
    },
  });
  const hosts = stack.sshd.hosts;
  const [h101, h102] = [hosts[0]!, hosts[1]!];
  const last = hosts[hosts.length - 1]!;
  addIntro(
    `   • NATS         nats-server with JetStream, ${stack.nats.url}, temporary store`,
    `   • hosts        ${hosts.map((x) => x.id).join(', ')}: OpenSSH sshd at ${h101.address}…${last.address.split('.').pop()}, ` +
      `port ${h101.port}, a simulated ocp_agentctl each`,
  );
  narrate('starting ocp-chatops: the Slack front door, the executor and the notifier, in this process…');
  const svc = await stack.startService();
  addIntro(
    `   • ocp-chatops  all roles in this process; Slack sends to http://127.0.0.1:${svc.httpPort}/slack/events`,
    `   • people       ${ANSI.bold('bob')} and ${ANSI.bold('alice')}: HOST_MANAGER; alice also TASK_MANAGER (task buttons)`,
  );
  const user = h.slackUser(fake, `http://127.0.0.1:${svc.httpPort}/slack/events`);
  await pause(1000);

  // 1. A restart that works.
  if (!FAST)
    for (const cmd of ['restart', 'stop', 'start'] as const) h.setFault(h101.agentHome, cmd, 'slow', SLOW_STEP_SECONDS);
  const p1 = await typeCommand(user, BOB, `restart ${h101.id} monagent stuck`);
  const task1 = h.taskIdOf(p1);
  taskIds.push(task1);
  narrate(
    `task ${task1} runs its five steps on ${h101.name} over SSH; the bot edits its message and replies in the thread…`,
  );
  await taskEnds(task1, 'SUCCESSFUL');
  await channelShows(p1.ts, task1, 'SUCCESSFUL', 1);
  h.clearFaults(h101.agentHome);
  narrate(`task ${task1} SUCCESSFUL: a thread reply per step, and the message kept current with chat.update`);
  await pause(2000);

  // 2. A restart that fails, and its Retry.
  h.setFault(h102.agentHome, 'restart', 'fail');
  if (!FAST) h.setFault(h102.agentHome, 'restart', 'slow', SLOW_STEP_SECONDS);
  narrate(`${h102.name}'s agent will fail to restart its pos proxy (a fault injected into its ocp_agentctl)`);
  await pause(1500);
  const p2 = await typeCommand(user, BOB, `restart ${h102.id}`);
  const task2 = h.taskIdOf(p2);
  taskIds.push(task2);
  narrate(`task ${task2} runs on ${h102.name}…`);
  await taskEnds(task2, 'FAILED');
  const failed = await h.waitFor(
    'the Retry button',
    () => {
      const p = parentByTs(p2.ts);
      return p && h.buttonValue(p, 'task_retry') ? p : undefined;
    },
    SLACK_TIMEOUT_MS,
  );
  await channelShows(p2.ts, task2, 'FAILED', 1);
  narrate(
    `task ${task2} FAILED at "Restart pos proxy"; the thread has the error, the message offers Retry, Skip, Rollback`,
  );
  await pause(2000);
  h.clearFaults(h102.agentHome);
  if (!FAST) for (const cmd of ['stop', 'start'] as const) h.setFault(h102.agentHome, cmd, 'slow', SLOW_STEP_SECONDS);
  narrate('fault cleared on the host; pressing [ Retry ] as alice (she has TASK_MANAGER)…');
  pressed = { ts: failed.ts, actionId: 'task_retry' };
  await pause(800);
  const click = await user.click(parentByTs(p2.ts) ?? failed, 'task_retry', { user: ALICE, channel: CHANNEL });
  responseOwner.set(click.responseUrl, 'alice');
  log(`pressed [ Retry ] as alice: Slack got HTTP ${click.status}`);
  if (click.status !== 200) throw new Error(`Slack got HTTP ${click.status} for the Retry press`);
  setTimeout(() => {
    pressed = undefined;
  }, 600);
  narrate(`task ${task2} runs again from its failed step (operation RETRY)…`);
  await taskEnds(task2, 'SUCCESSFUL', (t) => t.operation === 'RETRY');
  await channelShows(p2.ts, task2, 'SUCCESSFUL', 2);
  h.clearFaults(h102.agentHome);
  narrate(`task ${task2} SUCCESSFUL after the retry: the whole story is in its thread`);
  await pause(2500);
}

// ------------------------------------------------------------------ summary

async function summary(ok: boolean, error?: unknown): Promise<string[]> {
  const out: string[] = [
    '',
    ok ? 'Demo finished.' : `Demo FAILED: ${error instanceof Error ? error.message : String(error)}`,
  ];
  if (stack) {
    out.push('Tasks:');
    for (const id of taskIds) {
      const t = (await h.readTask(stack.nc, id).catch(() => undefined))?.task;
      if (!t) {
        out.push(`  task ${id}: not found`);
        continue;
      }
      const took =
        t.finishTime && t.startTime
          ? `, ${((Date.parse(t.finishTime) - Date.parse(t.startTime)) / 1000).toFixed(1)} s`
          : '';
      const reason = t.context.stringMap.reason ? ` ("${t.context.stringMap.reason}")` : '';
      out.push(
        `  task ${t.id}: ${t.name} on host ${t.hostId}: ${t.status}, operation ${t.operation}${took}, by ${t.creator}${reason}`,
      );
      for (const s of t.subtasks)
        out.push(`      ${s.status.padEnd(10)} ${s.name}${s.runTime > 1 ? ` (run ${s.runTime})` : ''}`);
    }
  }
  if (fake) {
    const byMethod = new Map<string, number>();
    for (const c of fake.calls) byMethod.set(c.method, (byMethod.get(c.method) ?? 0) + 1);
    const calls = [...byMethod].sort((a, b) => b[1] - a[1]).map(([m, n]) => `${m} ${n}`);
    out.push(`Slack Web API calls: ${fake.calls.length} (${calls.join(', ') || 'none'})`);
    const threads = parents().map((p) => `${fake?.thread(CHANNEL, p.ts).length ?? 0}`);
    if (threads.length > 0) out.push(`Thread replies per task: ${threads.join(', ')}`);
  }
  out.push(`Total ${elapsed()}.`);
  return out;
}

let stopping: Promise<void> | undefined;
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    await stack?.stop().catch((e: unknown) => log(`stopping the stack: ${String(e)}`));
    await fake?.stop().catch(() => undefined);
  })();
  return stopping;
}

const watchdog = setTimeout(() => {
  if (DRAW) process.stdout.write('\x1b[?25h\n');
  console.error(`demo: still not done after ${WATCHDOG_MS / 1000} s; giving up`);
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

// Ctrl-C (or the terminal closing): stop what runs, within a few seconds. Whatever is
// still alive at exit is killed by the helpers' exit hooks (servers, simulated agents).
let signalled = false;
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const) {
  process.on(sig, () => {
    if (signalled || sig === 'SIGHUP') process.exit(code);
    signalled = true;
    if (drawTimer) clearInterval(drawTimer);
    if (DRAW) process.stdout.write('\x1b[?25h\n');
    console.error(`demo: ${sig}; stopping everything (press Ctrl-C again to stop at once)…`);
    setTimeout(() => process.exit(code), 5000).unref();
    void stopAll().finally(() => process.exit(code));
  });
}
process.once('exit', () => {
  try {
    if (DRAW) process.stdout.write('\x1b[?25h');
  } catch {
    // the terminal may be gone
  }
  if (stack) rmSync(stack.dir, { recursive: true, force: true });
});

let ok = true;
let failure: unknown;
try {
  await run();
} catch (err) {
  ok = false;
  failure = err;
  narrate(`✗ ${err instanceof Error ? err.message : String(err)}`);
  await sleep(DRAW ? 1000 : 0);
}
stopView();
const lines = await summary(ok, failure);
if (!DRAW) log(`stopping nats-server, sshd, the service and the Slack stand-in…`);
await stopAll();
process.stdout.write(`${lines.join('\n')}\n`);
clearTimeout(watchdog);
process.exit(ok ? 0 : 1);
