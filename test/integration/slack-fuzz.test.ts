/**
 * Property-based fuzzing of the Slack slash command against the real stack (nats-server, sshd
 * hosts with the simulated agent, Slack's Web API faked locally), with requests signed as Slack
 * signs them. SPEC §4 and §7:
 *
 * - a user without the role a command needs, whatever the text (unicode, shell metacharacters,
 *   newlines, huge, empty, unknown hosts), gets an ephemeral answer — the refusal naming the
 *   role, or why the text is wrong and what to type — and nothing is stored or published;
 * - a HOST_MANAGER's bad text (unknown verb, unknown or hostile host, too long a reason, two
 *   hosts for stop) is refused at once, ephemerally, saying what to type; nothing is stored;
 * - a HOST_MANAGER's valid command with a reason full of shell metacharacters runs the task, the
 *   reason is kept verbatim in context.stringMap.reason and shown in the channel, and none of it
 *   reaches the host's shell: the injected commands never run (their marker files never appear)
 *   and the agent sees only its own commands.
 *
 * Reproduce a failure with FUZZ_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import type { RequestEvent } from '../../src/contracts/events.js';
import type { FakeSlack } from '../helpers/fake-slack.js';
import { readCalls } from '../helpers/sim-agent.js';
import { postToSlackEndpoint, slashCommandBody } from '../helpers/slack-sign.js';
import { SLACK_CHANNEL, SLACK_USERS, startSlackStack } from '../helpers/slack-stack.js';
import { SIGNING_SECRET, taskIdOf } from '../helpers/slack-user.js';
import { type Stack, waitFor, waitForTask } from '../helpers/stack.js';
import { type StoreSnapshot, storeSnapshot } from '../helpers/store-snapshot.js';

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** Runs per property (× FUZZ_SCALE); each answer is awaited at most 30 s, so a hang fails the run. */
const RUNS = { unprivileged: 200, badText: 150, hostileReason: 10 };
const runs = (n: number) => ({
  numRuns: Math.max(1, Math.round(n * SCALE)),
  ...(SEED === undefined ? {} : { seed: SEED }),
});

const COMMAND = '/ocp-agent';
const CHANNEL = SLACK_CHANNEL;
const USERS = SLACK_USERS;
const ROLE_OF: Record<string, string | undefined> = {
  restart: 'HOST_MANAGER',
  stop: 'HOST_MANAGER',
  start: 'HOST_MANAGER',
  agent: 'HOST_VIEWER',
  status: 'TASK_VIEWER',
  list: 'TASK_VIEWER',
  history: 'TASK_VIEWER',
};
const VIEWER_ROLES = new Set(['HOST_VIEWER', 'TASK_VIEWER']);
/** The agent's own commands (SPEC §2): nothing else may reach ocp_agentctl. */
const AGENT_COMMANDS = new Set(['status', 'stop', 'start', 'restart pos_proxy']);

/** Slack escapes these three in the text it sends (mentions and links aside). */
const slackEscape = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** Marker files an injected command would create: one folder, checked empty. */
const MARKERS = mkdtempSync(join(tmpdir(), 'ocp-pwned-'));
const marker = () => join(MARKERS, `pwned-${randomUUID().slice(0, 8)}`);

/** What a shell would run if the text reached it unquoted. */
const injections = (m: string) => [
  `$(touch ${m})`,
  `\`touch ${m}\``,
  `; touch ${m}`,
  `| touch ${m}`,
  `&& touch ${m}`,
  `|| touch ${m}`,
  `\ntouch ${m}\n`,
  `'; touch ${m}; '`,
  `"; touch ${m}; "`,
  `'$(touch ${m})'`,
  `"$(touch ${m})"`,
  `\\'; touch ${m} #`,
  `$'\\x3b' touch ${m}`,
  `> ${m}`,
  `\${IFS}touch\${IFS}${m}`,
  `<(touch ${m})`,
  `& touch ${m} &`,
  `{touch,${m}}`,
];

const META = [
  ';',
  '|',
  '&',
  '$',
  '(',
  ')',
  '`',
  "'",
  '"',
  '\\',
  '\n',
  '\r',
  '\t',
  '<',
  '>',
  '*',
  '?',
  '~',
  '#',
  '!',
  '{',
  '}',
  '[',
  ']',
  '%',
  '\u0000',
];
const metaFragment = fc.oneof(
  fc.constantFrom(...META),
  fc.constantFrom('$(id)', '`id`', '${HOME}', '$HOME', "'\\''", '"\\""', '\\n', '%s%n', '../../etc/passwd', '-rf /'),
  fc.string({ maxLength: 8 }),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
  fc.constantFrom('é', '中文', '🚀', '\u202e', '\u200b', '\u00a0', '\ufeff', '\u2028', 'Ω≈ç√'),
);
/** Free text full of metacharacters (and, with `m`, commands that would touch the marker). */
const hostileText = (m?: string) =>
  fc
    .array(m === undefined ? metaFragment : fc.oneof(metaFragment, fc.constantFrom(...injections(m))), {
      minLength: 1,
      maxLength: 12,
    })
    .map((parts) => parts.join(''));

/** Host tokens: known ones, unknown ones, hostile ones. */
const KNOWN_HOST_TOKENS = [
  '101',
  '102',
  'sim-host-101',
  'sim-host-102',
  '101,102',
  '<http://sim-host-101|sim-host-101>',
];
const BAD_HOST_TOKENS = [
  '999',
  '0',
  '0101',
  '-1',
  '1e3',
  '9007199254740993',
  'nosuchhost',
  'SIM-HOST-999',
  '101;id',
  '$(id)',
  '`id`',
  '101|id',
  '101&&id',
  "101'",
  '"101"',
  '../../etc',
  '-rf',
  '<@U0ALICE|alice>',
  '<#C0OPS|ops>',
  '<http://evil.example|evil>',
  '&lt;script&gt;',
  ',',
  '101,,102',
  '101,101',
  'é',
  '١٠١',
  '１０１',
  Array.from({ length: 2001 }, (_, i) => 1000 + i).join(','),
];
const hostToken = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...KNOWN_HOST_TOKENS) },
  { weight: 3, arbitrary: fc.constantFrom(...BAD_HOST_TOKENS) },
  { weight: 2, arbitrary: hostileText() },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);
const verbToken = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('restart', 'stop', 'start', 'agent', 'status', 'list', 'history', 'help') },
  { weight: 1, arbitrary: fc.constantFrom('RESTART', 'Stop', 'reboot', 'rm', '$(id)', 'restart;', '', '`help`') },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
);
const sep = fc.constantFrom(' ', '  ', '\t', '\n', ' \n ', '\u00a0');

/** A whole command text, before Slack's escaping. */
const commandText: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(verbToken, sep, hostToken, sep, fc.oneof(hostileText(), fc.constant('')))
      .map(([v, s1, h, s2, r]) => `${v}${s1}${h}${s2}${r}`),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', ' ', '\n\n', 'help', 'list extra', `restart 101 ${'x'.repeat(20_000)}`, '\u0000'),
  },
);

/** A well-formed command on a known host, with a hostile reason: only the role stands in the way. */
const wellFormedText: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('restart', 'stop', 'start', 'agent', 'history', 'status', 'list', 'RESTART'),
    fc.constantFrom(...KNOWN_HOST_TOKENS),
    fc.oneof(fc.constant(''), hostileText()),
  )
  .map(([verb, host, reason]) =>
    ['agent', 'history'].includes(verb)
      ? `${verb} ${host.split(',')[0]}`
      : verb === 'status'
        ? 'status 1'
        : verb === 'list'
          ? 'list'
          : `${verb} ${verb === 'restart' || verb === 'RESTART' ? host : '102'} ${reason}`,
  );

/** Escape like Slack, except the `<…|…>` mentions and links Slack itself writes. */
function asSlackSends(text: string): string {
  return text
    .split(/(<[@#!]?[^<>\s]*>)/)
    .map((part, i) => (i % 2 === 1 ? part : slackEscape(part)))
    .join('');
}

interface SlackAnswer {
  /** The HTTP answer to the command itself, parsed when it has a body. */
  status: number;
  ack: Record<string, unknown> | undefined;
  /** The first message posted to the response_url, when the answer came that way. */
  delayed: Record<string, unknown> | undefined;
}

describe('Slack command fuzzing: hostile text never stores anything for the wrong user nor reaches a shell', () => {
  let fake: FakeSlack;
  let stack: Stack;
  let eventsUrl: string;
  let before_: StoreSnapshot;

  before(async () => {
    process.env.TEST_LOG_LEVEL ??= 'error';
    ({ fake, stack, eventsUrl } = await startSlackStack({ hosts: 3 }));
    before_ = await storeSnapshot(stack.nc);
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
    rmSync(MARKERS, { recursive: true, force: true });
  });

  /** `/ocp-agent <text>` as Slack sends it; waits (at most 30 s) for what the user is shown. */
  async function command(text: string, user: string, triggerId = `${Date.now()}.${randomUUID().slice(0, 8)}`) {
    const responseUrl = fake.responseUrl();
    const body = slashCommandBody({
      command: COMMAND,
      text,
      user_id: user,
      channel_id: CHANNEL,
      trigger_id: triggerId,
      response_url: responseUrl,
    });
    const res = await postToSlackEndpoint(eventsUrl, SIGNING_SECRET, body);
    const answer: SlackAnswer = { status: res.status, ack: undefined, delayed: undefined };
    if (res.text.trim() !== '') answer.ack = JSON.parse(res.text) as Record<string, unknown>;
    return { answer, responseUrl };
  }

  async function delayedAnswer(responseUrl: string, what: string): Promise<Record<string, unknown>> {
    return waitFor(
      `${what}: an answer on the response_url`,
      () => fake.responses.find((r) => r.url === responseUrl)?.body,
      30_000,
    );
  }

  /** The answer a user sees: the command's own, else the first on its response_url. */
  async function seen(text: string, user: string, what: string) {
    const { answer, responseUrl } = await command(text, user);
    assert.equal(answer.status, 200, `${what}: HTTP ${answer.status}`);
    const shown = answer.ack ?? (await delayedAnswer(responseUrl, what));
    assert.equal(shown.response_type, 'ephemeral', `${what}: ephemeral, got ${JSON.stringify(shown).slice(0, 300)}`);
    assert.ok(typeof shown.text === 'string' && shown.text.length > 0, `${what}: says something`);
    return { shown, immediate: answer.ack !== undefined };
  }

  it('a user without the role: any text gets an ephemeral answer (the refusal names the role), nothing is stored', async (t: TestContext) => {
    const posts = fake.callsTo('chat.postMessage').length;
    const tally = new Map<string, number>();
    const details = await fc.check(
      fc.asyncProperty(
        fc.oneof(commandText, wellFormedText),
        fc.constantFrom(USERS.nobody, USERS.viewer),
        async (typed, user) => {
          const text = asSlackSends(typed);
          const what = `${user}: ${COMMAND} ${JSON.stringify(text).slice(0, 300)}`;
          const { shown, immediate } = await seen(text, user, what);
          const verb = (typed.trim().split(/\s+/)[0] ?? '').toLowerCase();
          const role = ROLE_OF[verb];
          const holds = user === USERS.viewer && role !== undefined && VIEWER_ROLES.has(role);
          if (immediate) {
            // refused from the text alone: why, and what to type
            assert.match(String(shown.text), /\/ocp-agent|Unknown host/, `${what}: says what to type: ${shown.text}`);
          } else if (role !== undefined && !holds) {
            assert.match(String(shown.text), new RegExp(role), `${what}: the refusal names ${role}: ${shown.text}`);
          }
          const key = immediate ? 'refused at once' : role && !holds ? `refused: ${role}` : 'answered';
          tally.set(key, (tally.get(key) ?? 0) + 1);
        },
      ),
      runs(RUNS.unprivileged),
    );
    t.diagnostic(
      `${details.numRuns} runs, seed ${details.seed}; ${[...tally].map(([k, v]) => `${k} ×${v}`).join(', ')}`,
    );
    if (details.failed) assert.fail((await fc.asyncDefaultReportMessage(details)) ?? 'property failed');
    assert.deepEqual(await storeSnapshot(stack.nc), before_, 'nothing stored, published or queued');
    assert.equal(fake.callsTo('chat.postMessage').length, posts, 'nothing posted in a channel');
  });

  it('a HOST_MANAGER with a bad text: refused at once, ephemerally, saying what to type; nothing is stored', async (t: TestContext) => {
    /** Could this host token name inventory hosts only (so the command might be accepted)? Conservative. */
    const mayBeKnown = (token: string) =>
      token
        .split(',')
        .every((part) => /^(101|102|103)$/.test(part) || /^<?[^<>]*sim-host-10[123][^<>]*>?$/i.test(part));
    const badTexts = fc.oneof(
      // an unknown verb
      fc
        .tuple(
          fc.oneof(
            fc.constantFrom('reboot', 'rm', '$(id)', 'restart;', '`help`', 'kill'),
            fc.string({ minLength: 1, maxLength: 10 }),
          ),
          sep,
          fc.string({ maxLength: 30 }),
        )
        .filter(
          ([v]) =>
            v.trim() !== '' &&
            !/^\s|\s/.test(v) &&
            !['restart', 'stop', 'start', 'agent', 'status', 'list', 'history', 'whoami', 'help'].includes(
              v.toLowerCase(),
            ),
        )
        .map(([v, s, rest]) => ({ text: `${v}${s}${rest}`, kind: 'verb' })),
      // a host that is not in the inventory (or not a host at all), with any reason
      fc
        .tuple(
          fc.constantFrom('restart', 'stop', 'start', 'agent', 'history', 'Restart'),
          sep,
          fc.oneof(fc.constantFrom(...BAD_HOST_TOKENS), hostileText()),
          sep,
          hostileText(),
        )
        .filter(([, , h]) => h.trim() !== '' && !mayBeKnown(h.trim().split(/\s+/)[0] ?? ''))
        .map(([v, s1, h, s2, r]) => ({ text: `${v}${s1}${h}${s2}${r}`, kind: 'host' })),
      // a known host and a reason over 500 characters
      fc
        .tuple(
          fc.constantFrom('restart', 'stop', 'start'),
          fc.constantFrom('101', 'sim-host-102'),
          hostileText(),
          fc.integer({ min: 501, max: 3000 }),
        )
        .map(([v, h, r, n]) => ({ text: `${v} ${h} x${'y'.repeat(n)}${r}z`, kind: 'long reason' })),
      // two hosts where one is taken, or one host twice (every operation takes a list, SPEC §8)
      fc
        .tuple(
          fc.constantFrom(
            'stop 101,101',
            'start 101,nosuchhost',
            'history 101,102',
            'restart 101,101',
            'restart 101,nosuchhost',
            'agent 101,102',
          ),
          fc.oneof(fc.constant(''), hostileText()),
        )
        .map(([c, r]) => ({ text: `${c} ${r}`, kind: 'hosts' })),
      // words where none are taken
      fc
        .tuple(
          fc.constantFrom(
            'status',
            'status 0',
            'status 1.5',
            'status 12 more',
            'list all',
            'agent 101 now',
            'history 101 x',
          ),
          hostileText(),
        )
        .map(([c, r]) => ({
          text: c === 'status' ? `status ${r.replace(/^\s+/, '') || '$(id)'}` : `${c} ${r}`,
          kind: 'words',
        })),
    );
    const tally = new Map<string, number>();
    const details = await fc.check(
      fc.asyncProperty(badTexts, async ({ text: typed, kind }) => {
        const text = asSlackSends(typed);
        const what = `${USERS.manager}: ${COMMAND} ${JSON.stringify(text).slice(0, 300)}`;
        const { shown, immediate } = await seen(text, USERS.manager, what);
        // `status <a number>` may be answered later ("No task …"); every other bad text at once
        if (!(kind === 'words' && /^status /.test(typed)))
          assert.ok(immediate, `${what}: refused at once, got ${JSON.stringify(shown)}`);
        assert.match(
          String(shown.text),
          /\/ocp-agent|Unknown host|No task/,
          `${what}: says what to type: ${shown.text}`,
        );
        tally.set(kind, (tally.get(kind) ?? 0) + 1);
      }),
      runs(RUNS.badText),
    );
    t.diagnostic(
      `${details.numRuns} runs, seed ${details.seed}; ${[...tally].map(([k, v]) => `${k} ×${v}`).join(', ')}`,
    );
    if (details.failed) assert.fail((await fc.asyncDefaultReportMessage(details)) ?? 'property failed');
    assert.deepEqual(await storeSnapshot(stack.nc), before_, 'nothing stored, published or queued');
  });

  it('a HOST_MANAGER with a hostile reason: kept verbatim and shown, and nothing of it runs on the host', async (t: TestContext) => {
    const hosts = stack.sshd.hosts;
    const arb = fc
      .tuple(
        fc.constantFrom('restart', 'stop', 'start'),
        fc.nat({ max: hosts.length - 1 }),
        fc.boolean(),
        fc.constantFrom(marker(), marker(), marker()),
      )
      .chain(([verb, h, byName, m]) =>
        hostileText(m)
          .map((r) => r.trim())
          // A leading name=value word is a parameter, not the reason (SPEC §10): refused for the built-ins.
          .filter((r) => r !== '' && [...r].length <= 500 && !/^[^\s=]+=/.test(slackEscape(r)))
          .map((reason) => ({ verb, h, byName, m, reason })),
      );
    let longest = 0;
    const details = await fc.check(
      fc.asyncProperty(arb, async ({ verb, h, byName, reason }) => {
        const host = hosts[h]!;
        const trigger = `${Date.now()}.${randomUUID().slice(0, 8)}`;
        const requestId = `slack-${trigger.replace(/[^A-Za-z0-9_-]/g, '_')}`;
        const sub = stack.nc.subscribe(`ocp.events.request.${requestId}`, { max: 1, timeout: 15_000 });
        const parentsBefore = fake.channel(CHANNEL).length;
        const text = `${verb} ${byName ? host.name : host.id} ${slackEscape(reason)}`;
        const what = `${COMMAND} ${JSON.stringify(text).slice(0, 300)}`;
        const { answer } = await command(text, USERS.manager, trigger);
        assert.equal(answer.status, 200, what);
        let event: RequestEvent | undefined;
        for await (const msg of sub) event = msg.json<RequestEvent>();
        assert.equal(event?.type, 'accepted', `${what}: ${JSON.stringify(event)}`);
        const taskId = (event as Extract<RequestEvent, { type: 'accepted' }>).taskId;
        const task = await waitForTask(stack.nc, taskId, undefined, 60_000);
        assert.equal(task.status, 'SUCCESSFUL', `${what}: task ${taskId} ${task.status}`);
        assert.equal(task.context.stringMap.reason, reason, `${what}: the reason, verbatim`);
        // shown in the channel: the parent message, mrkdwn-escaped
        const parent = await waitFor(`${what}: the parent message`, () =>
          fake
            .channel(CHANNEL)
            .slice(parentsBefore)
            .find((p) => !p.thread_ts && taskIdOf(p) === taskId),
        );
        const texts: string[] = [];
        JSON.stringify(parent.blocks, (_, v) => {
          if (typeof v === 'string') texts.push(v);
          return v;
        });
        const escaped = slackEscape(reason);
        assert.ok(
          texts.some((s) => s.includes(escaped)),
          `${what}: reason shown in ${JSON.stringify(parent.blocks)}`,
        );
        longest = Math.max(longest, [...reason].length);
      }),
      runs(RUNS.hostileReason),
    );
    t.diagnostic(`${details.numRuns} runs, seed ${details.seed}; longest reason ${longest} characters`);
    if (details.failed) assert.fail((await fc.asyncDefaultReportMessage(details)) ?? 'property failed');

    assert.deepEqual(readdirSync(MARKERS), [], 'no injected command ran: no marker file');
    for (const host of hosts) {
      const calls = readCalls(host.agentHome).filter((c) => c.phase === 'begin');
      const odd = calls.filter((c) => !AGENT_COMMANDS.has(c.args));
      assert.deepEqual(odd, [], `host ${host.id}: ocp_agentctl saw only its own commands`);
    }
  });
});
