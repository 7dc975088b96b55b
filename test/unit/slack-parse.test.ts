/**
 * The text of `/ocp-agent <text>` (src/slack/parse-command.ts): every verb with
 * good and bad input, the role each command needs, and help showing only what
 * the caller may run. Every refusal names the problem and shows what to type.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config.js';
import {
  helpText,
  MAX_BATCH_HOSTS,
  parseCommandText,
  type Role,
  requiredRole,
  type SlackCommand,
  unescapeSlack,
} from '../../src/slack/parse-command.js';

const good: Array<[text: string, command: SlackCommand]> = [
  ['', { kind: 'help' }],
  ['   \n\t ', { kind: 'help' }],
  ['help', { kind: 'help' }],
  ['HELP me please', { kind: 'help' }],
  ['whoami', { kind: 'whoami' }],
  ['  WhoAmI ', { kind: 'whoami' }],
  ['restart 101', { kind: 'run', operation: 'restart', params: {}, hosts: ['101'] }],
  ['  Restart   101  ', { kind: 'run', operation: 'restart', params: {}, hosts: ['101'] }],
  ['restart sim-host-101', { kind: 'run', operation: 'restart', params: {}, hosts: ['sim-host-101'] }],
  [
    'restart ocp_host.3 agent stuck',
    { kind: 'run', operation: 'restart', params: {}, hosts: ['ocp_host.3'], reason: 'agent stuck' },
  ],
  [
    'restart 101   agent  stuck\nafter upgrade  ',
    { kind: 'run', operation: 'restart', params: {}, hosts: ['101'], reason: 'agent  stuck\nafter upgrade' },
  ],
  [
    'restart 101,102,ocp-host-3 rolling fix',
    { kind: 'run', operation: 'restart', params: {}, hosts: ['101', '102', 'ocp-host-3'], reason: 'rolling fix' },
  ],
  [
    'restart 101 a &amp; b &lt;now&gt;',
    { kind: 'run', operation: 'restart', params: {}, hosts: ['101'], reason: 'a & b <now>' },
  ],
  ['restart 101 &amp;lt;', { kind: 'run', operation: 'restart', params: {}, hosts: ['101'], reason: '&lt;' }],
  [
    'restart 101 ping <@U123|bob>',
    { kind: 'run', operation: 'restart', params: {}, hosts: ['101'], reason: 'ping <@U123|bob>' },
  ],
  ['restart 9007199254740991', { kind: 'run', operation: 'restart', params: {}, hosts: ['9007199254740991'] }],
  ['restart a', { kind: 'run', operation: 'restart', params: {}, hosts: ['a'] }],
  [`restart ${'h'.repeat(63)}`, { kind: 'run', operation: 'restart', params: {}, hosts: ['h'.repeat(63)] }],
  [
    'restart <http://db1.example.com|db1.example.com>',
    { kind: 'run', operation: 'restart', params: {}, hosts: ['db1.example.com'] },
  ],
  ['restart <http://db1.example.com>', { kind: 'run', operation: 'restart', params: {}, hosts: ['db1.example.com'] }],
  [
    `restart 101 ${'r'.repeat(500)}`,
    { kind: 'run', operation: 'restart', params: {}, hosts: ['101'], reason: 'r'.repeat(500) },
  ],
  [
    'stop 101 disk maintenance',
    { kind: 'run', operation: 'stop', params: {}, hosts: ['101'], reason: 'disk maintenance' },
  ],
  ['STOP sim-host-1', { kind: 'run', operation: 'stop', params: {}, hosts: ['sim-host-1'] }],
  ['start 101', { kind: 'run', operation: 'start', params: {}, hosts: ['101'] }],
  [
    'start 101 after maintenance',
    { kind: 'run', operation: 'start', params: {}, hosts: ['101'], reason: 'after maintenance' },
  ],
  ['agent 101', { kind: 'agent', host: '101' }],
  ['Agent sim-host-101', { kind: 'agent', host: 'sim-host-101' }],
  ['status 1234', { kind: 'status', taskId: 1234 }],
  ['status #1234', { kind: 'status', taskId: 1234 }],
  ['status 9007199254740991', { kind: 'status', taskId: 9007199254740991 }],
  ['list', { kind: 'list' }],
  [' LIST ', { kind: 'list' }],
  ['history 101', { kind: 'history', host: '101' }],
  ['history sim-host-101', { kind: 'history', host: 'sim-host-101' }],
  // Every operation takes a host list: several hosts make a batch (SPEC §8).
  [
    'stop 101,102 rack move',
    { kind: 'run', operation: 'stop', params: {}, hosts: ['101', '102'], reason: 'rack move' },
  ],
  ['start 101,102', { kind: 'run', operation: 'start', params: {}, hosts: ['101', '102'] }],
  // A token with `=` in the hosts' place, or `all`, is a selector (SPEC §10).
  [
    'restart cluster=obcluster1,zone=z1 rolling upgrade',
    {
      kind: 'run',
      operation: 'restart',
      params: {},
      hosts: [],
      selector: { cluster: 'obcluster1', zone: 'z1' },
      reason: 'rolling upgrade',
    },
  ],
  ['stop all', { kind: 'run', operation: 'stop', params: {}, hosts: [], selector: 'all' }],
  [
    'restart all every one of them',
    { kind: 'run', operation: 'restart', params: {}, hosts: [], selector: 'all', reason: 'every one of them' },
  ],
  ['start env=prod', { kind: 'run', operation: 'start', params: {}, hosts: [], selector: { env: 'prod' } }],
  // Case-sensitive: `ALL` is no selector but a host name like any other.
  ['restart ALL', { kind: 'run', operation: 'restart', params: {}, hosts: ['ALL'] }],
];

describe('parseCommandText: accepted', () => {
  for (const [text, command] of good) {
    test(JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text), () => {
      assert.deepEqual(parseCommandText(text), { ok: true, command });
    });
  }

  test(`a batch of ${MAX_BATCH_HOSTS} hosts`, () => {
    const hosts = Array.from({ length: MAX_BATCH_HOSTS }, (_, i) => String(i + 1));
    const r = parseCommandText(`restart ${hosts.join(',')}`);
    assert.deepEqual(r, { ok: true, command: { kind: 'run', operation: 'restart', params: {}, hosts } });
  });
});

/** text, what the error must say (the problem), what it must show to type. */
const bad: Array<[text: string, problem: RegExp, toType: RegExp]> = [
  ['restart', /`restart` needs a host/, /`\/ocp-agent restart 101 /],
  ['stop', /`stop` needs a host/, /`\/ocp-agent stop 101/],
  ['start   ', /`start` needs a host/, /`\/ocp-agent start 101`/],
  ['agent', /`agent` needs a host/, /`\/ocp-agent agent 101`/],
  ['history', /`history` needs a host/, /`\/ocp-agent history 101`/],
  ['status', /`status` needs a task id/, /`\/ocp-agent status 1234`/],
  ['status abc', /`abc` is not a task id/, /`\/ocp-agent status 1234`/],
  ['status 0', /`0` is not a task id/, /status 1234/],
  ['status 0100', /`0100` is not a task id/, /status 1234/],
  ['status -1', /`-1` is not a task id/, /status 1234/],
  ['status 1e3', /`1e3` is not a task id/, /status 1234/],
  ['status 1.5', /`1.5` is not a task id/, /status 1234/],
  ['status 9007199254740992', /`9007199254740992` is not a task id/, /status 1234/],
  ['status 12 34', /`status` takes one task id and nothing more, not `34`/, /`\/ocp-agent status 1234`/],
  ['list 101', /`list` takes no more words, not `101`/, /`\/ocp-agent history &lt;host&gt;`/],
  ['agent 101 now', /`agent` takes one host and nothing more, not `now`/, /`\/ocp-agent agent 101`/],
  ['history 101 102', /`history` takes one host and nothing more/, /`\/ocp-agent history 101`/],
  ['whoami U0BOB', /`whoami` takes no more words, not `U0BOB`/, /`\/ocp-agent whoami`/],
  [
    'frobnicate 101',
    /Unknown command `frobnicate`/,
    /`restart`, `stop`, `start`, `agent`, `status`, `list`, `history`, `whoami`, `help`.*`\/ocp-agent help`/,
  ],
  ['reboot 101', /Unknown command `reboot`/, /`\/ocp-agent help`/],
  ['restart <@U123|bob>', /`&lt;@U123\|bob&gt;` is a Slack mention or link, not a host/, /`\/ocp-agent restart 101/],
  ['restart <#C123|general>', /is a Slack mention or link, not a host/, /restart 101/],
  ['agent <!here>', /`&lt;!here&gt;` is a Slack mention or link/, /`\/ocp-agent agent 101`/],
  ['restart 101,<@U1>', /`&lt;@U1&gt;` is a Slack mention or link/, /restart 101/],
  ['restart -host', /`-host` is not a host/, /its id .* or its name/],
  ['restart host!', /`host!` is not a host/, /restart 101/],
  ['restart .hidden', /`.hidden` is not a host/, /restart 101/],
  ['restart &lt;101&gt;', /`&lt;101&gt;` is not a host/, /restart 101/],
  [`restart ${'h'.repeat(64)}`, /is not a host: .*at most 63/, /restart 101/],
  ['restart 0', /`0` is not a host id/, /restart 101/],
  ['restart 0100', /`0100` is not a host id/, /restart 101/],
  ['restart 12345678901234567', /`12345678901234567` is not a host id/, /restart 101/],
  ['restart 9007199254740992', /`9007199254740992` is not a host id/, /restart 101/],
  ['restart 101,', /`101,` has an empty host/, /`\/ocp-agent restart 101,102,ocp-host-3 \[reason…\]`/],
  ['restart 101, 102', /`101,` has an empty host: separate hosts with commas and no spaces/, /restart 101,102/],
  ['restart ,101', /has an empty host/, /restart 101,102/],
  ['restart 101,,102', /has an empty host/, /restart 101,102/],
  ['restart 101,102,101', /`101` is named twice/, /`\/ocp-agent restart 101,102`/],
  ['restart db1,DB1', /`DB1` is named twice/, /restart 101,102/],
  // Leading name=value tokens are parameters (SPEC §10): the built-ins take none.
  [
    'restart 101 force=yes now',
    /`force` is not a parameter of `restart`, which takes no parameters/,
    /restart &lt;host&gt;/,
  ],
  ['agent 101,102', /`agent` takes one host at a time/, /`\/ocp-agent agent 101`/],
  ['agent cluster=obcluster1', /`agent` takes one host at a time/, /`\/ocp-agent agent 101`/],
  ['history all', /`history` takes one host at a time/, /`\/ocp-agent history 101`/],
  // Selectors: every problem named, and what to type.
  ['restart cluster=', /`cluster=` is not a selector: it cluster has no value/, /restart cluster=obcluster1,zone=z1/],
  ['restart =obcluster1', /has no label key/, /restart cluster=obcluster1,zone=z1 \[reason…\]`/],
  ['restart cluster=a,cluster=b', /cluster is given twice/, /restart cluster=obcluster1,zone=z1/],
  ['restart cluster=a,,zone=b', /has an empty pair/, /restart cluster=obcluster1,zone=z1/],
  ['restart cluster=a,', /has an empty pair/, /restart all`/],
  ['restart cluster=a,101', /"101" is not key=value: a selector is labels only, never host ids/, /cluster=obcluster1/],
  ['restart all,cluster=a', /mixes all with labels: all names every host and stands alone/, /restart all`/],
  ['restart 101,all', /`all` names every host and stands alone/, /`\/ocp-agent restart all \[reason…\]`/],
  ['restart all,101', /`all` names every host and stands alone/, /restart all/],
  ['restart cluster=a=b', /the value of cluster \("a=b"\) must be letters, digits/, /cluster=obcluster1/],
  ['restart clu$ter=a', /label key "clu\$ter" must be letters, digits/, /cluster=obcluster1/],
  ['restart zone=<@U1>', /the value of zone \("&lt;@U1&gt;"\)/, /cluster=obcluster1/],
  ['history 101,102', /`history` takes one host at a time/, /`\/ocp-agent history 101`/],
  [
    `restart 101 ${'r'.repeat(501)}`,
    /reason is 501 characters long; keep it to 500/,
    /`\/ocp-agent restart &lt;host&gt;/,
  ],
  [
    `stop 101 ${'&amp;'.repeat(501)}`,
    /reason is 501 characters long/,
    /`\/ocp-agent stop &lt;host&gt;\[,&lt;host&gt;…\]\|&lt;selector&gt; \[reason…\]`/,
  ],
  [
    `restart ${Array.from({ length: MAX_BATCH_HOSTS + 1 }, (_, i) => i + 1).join(',')}`,
    new RegExp(`${MAX_BATCH_HOSTS + 1} hosts are too many for one batch: at most ${MAX_BATCH_HOSTS}`),
    /`\/ocp-agent restart &lt;host&gt;,&lt;host&gt;,…`/,
  ],
];

describe('parseCommandText: an operation with parameters', () => {
  const [restartProcess] = parseConfig(
    {
      operations: [
        {
          name: 'restart-process',
          title: 'Restart one OCP agent process',
          params: { process: { enum: ['ocp_agentd', 'ocp_monagent'] } },
          steps: [{ name: 'Restart the process', timeout: 60, command: '{agentctl} restart {process}' }],
        },
      ],
    },
    {},
    'test.yml',
    '/tmp',
  ).operations.filter((o) => !o.builtin);
  const ops = [restartProcess!];

  test('after a selector, leading name=value tokens are parameters, then the reason', () => {
    assert.deepEqual(
      parseCommandText('restart-process cluster=obcluster1,zone=z1 process=ocp_monagent a b', undefined, ops),
      {
        ok: true,
        command: {
          kind: 'run',
          operation: 'restart-process',
          hosts: [],
          selector: { cluster: 'obcluster1', zone: 'z1' },
          params: { process: 'ocp_monagent' },
          reason: 'a b',
        },
      },
    );
  });

  test('a second selector-like token is a parameter, refused by name when the operation has none of it', () => {
    const r = parseCommandText('restart-process cluster=obcluster1 zone=z1 process=ocp_monagent', undefined, ops);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.error, /`zone` is not a parameter of `restart-process`, which takes `process`/);
  });
});

describe('parseCommandText: refused, saying why and what to type', () => {
  for (const [text, problem, toType] of bad) {
    test(JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text), () => {
      const r = parseCommandText(text);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.match(r.error, problem);
      assert.match(r.error, toType);
    });
  }

  test('a long bad token is shown cut, with no backticks to break the code span', () => {
    const r = parseCommandText(`restart ${'`'.repeat(3)}${'x'.repeat(100)}`);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.match(r.error, /^`'''x{37}…` is not a host/);
  });

  test('a configured slash command is used in the examples', () => {
    const r = parseCommandText('status', '/ocp');
    assert.deepEqual(r, { ok: false, error: '`status` needs a task id: `/ocp status 1234`' });
  });
});

describe('requiredRole', () => {
  const cases: Array<[string, Role | undefined]> = [
    ['restart 1', 'HOST_MANAGER'],
    ['restart 1,2', 'HOST_MANAGER'],
    ['stop 1', 'HOST_MANAGER'],
    ['start 1', 'HOST_MANAGER'],
    ['agent 1', 'HOST_VIEWER'],
    ['status 1', 'TASK_VIEWER'],
    ['list', 'TASK_VIEWER'],
    ['history 1', 'TASK_VIEWER'],
    ['help', undefined],
    ['whoami', undefined],
    ['', undefined],
  ];
  for (const [text, role] of cases) {
    test(`${JSON.stringify(text)} → ${role ?? 'anyone'}`, () => {
      const r = parseCommandText(text);
      assert.ok(r.ok);
      assert.equal(requiredRole(r.command), role);
    });
  }
});

describe('helpText shows only what the caller may run', () => {
  const verbsIn = (text: string) =>
    [...text.matchAll(/^`\/ocp-agent (\w+)/gm)].map((m) => m[1]).filter((v): v is string => v !== undefined);
  const cases: Array<[Role[], string[]]> = [
    [[], ['whoami', 'help']],
    [['HOST_MANAGER'], ['restart', 'stop', 'start', 'whoami', 'help']],
    [['HOST_VIEWER'], ['agent', 'whoami', 'help']],
    [['TASK_VIEWER'], ['status', 'list', 'history', 'whoami', 'help']],
    [['TASK_MANAGER'], ['whoami', 'help']],
    [
      ['HOST_MANAGER', 'HOST_VIEWER', 'TASK_MANAGER', 'TASK_VIEWER'],
      ['restart', 'stop', 'start', 'agent', 'status', 'list', 'history', 'whoami', 'help'],
    ],
  ];
  for (const [roles, verbs] of cases) {
    test(roles.join('+') || 'no role', () => {
      assert.deepEqual(verbsIn(helpText(new Set(roles))), verbs);
    });
  }

  test('usage lines, written for mrkdwn', () => {
    const text = helpText(new Set<Role>(['HOST_MANAGER']));
    assert.match(
      text,
      /^`\/ocp-agent restart &lt;host&gt;\[,&lt;host&gt;…\]\|&lt;selector&gt; \[reason…\]` restart the OCP agent$/m,
    );
    assert.match(
      text,
      /^`\/ocp-agent stop &lt;host&gt;\[,&lt;host&gt;…\]\|&lt;selector&gt; \[reason…\]` stop the OCP agent$/m,
    );
    assert.match(text, /Several hosts \(`101,102`\) make a batch, which asks for a confirmation first/);
    assert.match(text, /name hosts by their labels: `cluster=obcluster1,zone=z1` \(every label must match\) or `all`/);
    assert.match(text, /A host is its id or its name/);
    assert.doesNotMatch(text, /<host>/, 'a bare <host> would be read by Slack as a link');
  });

  test('no role: says so, and how to find what to give an admin', () => {
    assert.match(helpText(new Set()), /You hold no role that runs the other commands.*`\/ocp-agent whoami`/);
    assert.doesNotMatch(helpText(new Set<Role>(['TASK_VIEWER'])), /You hold no role/);
  });

  test('the configured slash command', () => {
    assert.match(helpText(new Set<Role>(['TASK_VIEWER']), '/ocp'), /^`\/ocp list` /m);
  });
});

describe('unescapeSlack', () => {
  const cases: Array<[string, string]> = [
    ['a &amp; b', 'a & b'],
    ['&lt;x&gt;', '<x>'],
    ['&amp;lt;', '&lt;'],
    ['&quot; stays', '&quot; stays'],
  ];
  for (const [input, out] of cases) test(input, () => assert.equal(unescapeSlack(input), out));
});

describe('parseCommandText: a batch’s rolling options (SPEC §10)', () => {
  test('canary, maxFailures and maxParallel tokens after the hosts, before the reason', () => {
    const r = parseCommandText('restart cluster=c1 canary=2 maxFailures=5% maxParallel=10 after the upgrade');
    assert.ok(r.ok);
    assert.deepEqual(r.command, {
      kind: 'run',
      operation: 'restart',
      hosts: [],
      selector: { cluster: 'c1' },
      params: {},
      batch: { canary: 2, maxFailures: '5%', maxParallel: 10 },
      reason: 'after the upgrade',
    });
    const count = parseCommandText('restart 101,102 maxFailures=1');
    assert.ok(count.ok && count.command.kind === 'run');
    assert.deepEqual(count.command.batch, { maxFailures: 1 });
  });

  const refused: Array<[string, RegExp]> = [
    [
      'restart 101,102 maxFailures=120%',
      /`maxFailures=120%`: maxFailures must be a whole number of hosts, or a percentage/,
    ],
    ['restart 101,102 canary=two', /`canary=two`: canary must be a whole number/],
    ['restart 101,102 maxParallel=0', /`maxParallel=0`: maxParallel must be a whole number from 1 to 2000/],
    ['restart 101,102 canary=1 canary=2', /`canary` is given twice/],
    ['restart 101,102 canery=1', /`canery` is not a parameter of `restart`.*canary=/],
  ];
  for (const [text, error] of refused) {
    test(`refuses ${text}`, () => {
      const r = parseCommandText(text);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, error);
    });
  }
});
