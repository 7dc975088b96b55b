/**
 * Property-based fuzzing of the configuration (SPEC §6): host entries, whole documents written
 * as YAML or JSON, arbitrary text, and the environment. Every value is validated at start-up and
 * a bad one stops the process with a message naming the field; so each generated document is
 * either refused with a ConfigError naming every field that is wrong, or accepted — and then
 * every host field that ends up in a command on the host is of the safe kind (SPEC §7): an
 * address that is an IP or a host name, a POSIX user name, absolute paths of plain characters,
 * each written quoted into the scripts.
 *
 * The oracles are written from the SPEC's words, not from the schema's regular expressions.
 * Reproduce a failure with FUZZ_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { type Config, ConfigError, loadConfig, parseConfig } from '../../src/config.js';
import { shellQuote } from '../../src/core/runbooks/runbook.js';
import { planStep } from '../../src/core/task.js';
import { launchAndWaitScript } from '../../src/ssh/remote-step.js';
import { agentStatusCommand } from '../../src/tasks/read-tasks.js';

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const runs = (n: number) => ({
  numRuns: Math.max(1, Math.round(n * SCALE)),
  ...(SEED === undefined ? {} : { seed: SEED }),
});

const scratch = mkdtempSync(join(tmpdir(), 'config-fuzz-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------- what SPEC §6/§7 call safe

/** RFC 1123 §2.1 host name: labels of letters, digits and inner hyphens (≤ 63), dot-separated, ≤ 253 in all. */
function isHostName(s: string): boolean {
  const name = s.endsWith('.') ? s.slice(0, -1) : s;
  if (name.length === 0 || name.length > 253) return false;
  return name
    .split('.')
    .every(
      (l) => l.length >= 1 && l.length <= 63 && /^[A-Za-z0-9-]+$/.test(l) && !l.startsWith('-') && !l.endsWith('-'),
    );
}
const addressOk = (v: unknown) => typeof v === 'string' && (isIP(v) !== 0 || isHostName(v));
/** POSIX user name as useradd takes it: lower case letter or _, then letters, digits, _ and -, 32 at most. */
const usernameOk = (v: unknown) => typeof v === 'string' && /^[a-z_][a-z0-9_-]*$/.test(v) && v.length <= 32;
/** An absolute path of the POSIX portable file name characters (letters, digits, . _ -) and '/'. */
const pathOk = (v: unknown) =>
  typeof v === 'string' && v.startsWith('/') && [...v].every((c) => /[A-Za-z0-9._/-]/.test(c));
const portOk = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
const idOk = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
const nameOk = (v: unknown) => typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v) && v.length <= 63;

/** Characters that mean something to a shell, or end a word. */
const SHELL_SPECIAL = /[\s;|&$()`'"\\<>*?~#!{}[\]]/;

// ---------------------------------------------------------------- hostile values

const HOSTILE_STRINGS = [
  'a;rm -rf /',
  '$(x)',
  '`id`',
  '127.0.0.1\n',
  '127.0.0.1;id',
  ' 127.0.0.1',
  '127.0.0.1 x',
  '-oProxyCommand=touch /tmp/x',
  '-p',
  'a..b',
  '.',
  '-',
  '',
  ' ',
  "it's",
  'a"b',
  'a\\b',
  'a|b',
  'a&b',
  'a>b',
  '${HOME}',
  '~/x',
  '*',
  'x\u0000y',
  'é',
  'h\u00f4st',
  '\u202eetc',
  'a'.repeat(300),
  `${'a'.repeat(64)}.example`,
  'user@host',
  'host:22',
  '[::1]',
  'host_name',
  '/home/admin/ocp agent',
  '/home/admin/x;rm -rf /',
  '/home/$(id)',
  '/home/`id`',
  "/home/it's",
  '/home/x\n',
  'relative/path',
  'ocp_agent',
  '/home/x*',
  '/home/ä',
  'Admin',
  'root user',
  'admin;',
  '-oX',
  'ad\nmin',
  'admin ',
  'ädmin',
  'a'.repeat(33),
];
const wrongTypes = fc.constantFrom<unknown>(
  null,
  true,
  0,
  -1,
  1.5,
  [],
  {},
  ['x'],
  { a: 1 },
  2 ** 53,
  '22',
  65536,
  1e10,
);
const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 2, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
);

/** A field value, or the field left out. */
type Field = { value: unknown } | { absent: true };
const present = (value: unknown): Field => ({ value });
const ABSENT: Field = { absent: true };
/** A field's fair values (left out, when optional) and its foul ones: hostile strings, wrong types, missing. */
const field = (valid: fc.Arbitrary<unknown>, optional: boolean) => ({
  good: optional ? fc.oneof({ weight: 3, arbitrary: valid.map(present) }, fc.constant(ABSENT)) : valid.map(present),
  bad: fc.oneof(
    { weight: 3, arbitrary: hostileString.map(present) },
    { weight: 1, arbitrary: wrongTypes.map(present) },
    ...(optional ? [] : [{ weight: 1, arbitrary: fc.constant(ABSENT) }]),
  ),
});

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const validPath = fc
  .array(fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/), { maxLength: 4 })
  .map((segs) => `/${segs.join('/')}`);
const HOST_FIELDS = {
  id: { arb: field(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), false), ok: idOk, optional: false },
  name: { arb: field(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/), false), ok: nameOk, optional: false },
  address: {
    arb: field(
      fc.oneof(
        fc.ipV4(),
        fc.ipV6(),
        fc.domain(),
        fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')),
      ),
      false,
    ),
    ok: addressOk,
    optional: false,
  },
  port: {
    arb: field(fc.integer({ min: 1, max: 65535 }), true),
    ok: portOk,
    optional: true,
  },
  username: { arb: field(fc.stringMatching(/^[a-z_][a-z0-9_-]{0,20}$/), true), ok: usernameOk, optional: true },
  agentHome: { arb: field(validPath, true), ok: pathOk, optional: true },
  stateDir: { arb: field(validPath, true), ok: pathOk, optional: true },
} as const;
type HostField = keyof typeof HOST_FIELDS;
const FIELD_NAMES = Object.keys(HOST_FIELDS) as HostField[];

/** A host entry: fair values, except for up to three fields given foul ones (and now and then an unknown key). */
const hostArb = fc.record({
  fields: fc
    .record({
      good: fc.record(
        Object.fromEntries(FIELD_NAMES.map((k) => [k, HOST_FIELDS[k].arb.good])) as Record<
          HostField,
          fc.Arbitrary<Field>
        >,
      ),
      bad: fc.record(
        Object.fromEntries(FIELD_NAMES.map((k) => [k, HOST_FIELDS[k].arb.bad])) as Record<
          HostField,
          fc.Arbitrary<Field>
        >,
      ),
      foul: fc.oneof(
        { weight: 3, arbitrary: fc.constant([] as HostField[]) },
        { weight: 2, arbitrary: fc.subarray(FIELD_NAMES, { minLength: 1, maxLength: 3 }) },
      ),
    })
    .map(
      ({ good, bad, foul }) =>
        Object.fromEntries(FIELD_NAMES.map((k) => [k, foul.includes(k) ? bad[k] : good[k]])) as Record<
          HostField,
          Field
        >,
    ),
  unknown: fc.oneof(
    { weight: 5, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom('password', 'command', 'addr', 'agent_home', 'Port', 'extra') },
  ),
});

function buildHost(h: { fields: Record<HostField, Field>; unknown: string | undefined }) {
  const host: Record<string, unknown> = {};
  for (const k of FIELD_NAMES) {
    const f = h.fields[k];
    if ('value' in f) host[k] = f.value;
  }
  if (h.unknown !== undefined) host[h.unknown] = 'x';
  return host;
}

/** Fields that are wrong, as the paths a ConfigError must name ("hosts.0.address"); unknown keys by name. */
function wrongFields(h: { fields: Record<HostField, Field>; unknown: string | undefined }, at: string): string[] {
  const wrong: string[] = [];
  for (const k of FIELD_NAMES) {
    const f = h.fields[k];
    if ('absent' in f ? !HOST_FIELDS[k].optional : !HOST_FIELDS[k].ok(f.value)) wrong.push(`${at}.${k}`);
  }
  if (h.unknown !== undefined) wrong.push(h.unknown);
  return wrong;
}

function expectOutcome(parse: () => Config, wrong: string[], what: string): Config | undefined {
  let config: Config | undefined;
  let error: unknown;
  try {
    config = parse();
  } catch (e) {
    error = e;
  }
  if (wrong.length === 0) {
    assert.equal(error, undefined, `${what}: refused a valid configuration: ${(error as Error)?.message}`);
    return config;
  }
  assert.ok(
    error instanceof ConfigError,
    `${what}: expected a ConfigError naming ${wrong}, got ${error === undefined ? 'an accepted configuration' : String(error)}`,
  );
  for (const path of wrong) {
    assert.ok(error.message.includes(path), `${what}: the error names ${path}: ${error.message}`);
  }
  return undefined;
}

/** Every value of an accepted host that reaches the host's shell is of the safe kind, and written quoted. */
function assertHostSafe(config: Config, what: string): void {
  for (const h of config.hosts) {
    assert.ok(addressOk(h.address) && !h.address.startsWith('-'), `${what}: address ${JSON.stringify(h.address)}`);
    assert.ok(usernameOk(h.username), `${what}: username ${JSON.stringify(h.username)}`);
    assert.ok(pathOk(h.agentHome), `${what}: agentHome ${JSON.stringify(h.agentHome)}`);
    assert.ok(pathOk(h.stateDir), `${what}: stateDir ${JSON.stringify(h.stateDir)}`);
    assert.ok(portOk(h.port), `${what}: port ${h.port}`);
    for (const v of [h.address, h.username, h.agentHome, h.stateDir]) {
      assert.ok(!SHELL_SPECIAL.test(v), `${what}: ${JSON.stringify(v)} holds a shell metacharacter`);
    }
    // each {placeholder} of a step becomes its value in single quotes, and nothing else changes
    const values: Record<string, string> = {
      agentHome: h.agentHome,
      agentctl: `${h.agentHome}/bin/ocp_agentctl`,
      killGraceSeconds: String(config.ssh.killGraceSeconds),
    };
    for (const rb of config.runbooks) {
      for (const step of rb.steps) {
        const { script } = planStep(step, { id: h.id, agentHome: h.agentHome }, config.ssh.killGraceSeconds);
        const expected = step.command.replace(/(?<!\$)\{(agentHome|agentctl|killGraceSeconds)\}/g, (_, k: string) =>
          shellQuote(values[k] as string),
        );
        assert.equal(script, expected, `${what}: ${step.name}: values quoted into the script`);
      }
    }
    assert.ok(agentStatusCommand(h.agentHome).startsWith(`'${h.agentHome}/bin/ocp_agentctl'`));
    const wrapper = launchAndWaitScript(h.stateDir, '0a-1-2-1', 'true', 60);
    assert.ok(wrapper.includes(shellQuote(`${h.stateDir}/runs`)), `${what}: stateDir quoted in the wrapper`);
  }
}

// ---------------------------------------------------------------- document mutations

interface Mutation {
  path: (string | number)[];
  value: unknown;
  /** the path a ConfigError must name, when the value is wrong */
  wrong?: string;
}

/** A known field set to a value from its valid or its invalid side. */
function setting(
  path: (string | number)[],
  valid: fc.Arbitrary<unknown>,
  invalid: fc.Arbitrary<unknown>,
): fc.Arbitrary<Mutation> {
  return fc.oneof(
    valid.map((value) => ({ path, value })),
    invalid.map((value) => ({ path, value, wrong: path.join('.') })),
  );
}
const intRange = (min: number, max: number) => fc.integer({ min, max });
const outside = (min: number, max: number) =>
  fc.constantFrom<unknown>(min - 1, max + 1, 1.5, '7', null, [], true, -1e9);
const MUTATIONS: fc.Arbitrary<Mutation>[] = [
  setting(['ssh', 'killGraceSeconds'], intRange(0, 3600), outside(0, 3600)),
  setting(['ssh', 'connectTimeoutSeconds'], intRange(1, 300), outside(1, 300)),
  setting(['executor', 'leaseSeconds'], intRange(2, 3600), outside(2, 3600)),
  setting(['executor', 'concurrency'], intRange(1, 1000), outside(1, 1000)),
  setting(['batch', 'maxParallel'], intRange(1, 2000), outside(1, 2000)),
  setting(['nats', 'replicas'], fc.constantFrom(1, 3, 5), fc.constantFrom<unknown>(0, 2, 4, '3', null)),
  setting(
    ['slack', 'command'],
    fc.stringMatching(/^\/[a-z0-9_-]{1,31}$/),
    fc.constantFrom<unknown>('ocp-agent', '/Ocp', '/a b', '/x;y', '/', 7, `/${'a'.repeat(40)}`),
  ),
  setting(
    ['slack', 'defaultChannel'],
    fc.stringMatching(/^[CG][A-Z0-9]{2,12}$/),
    fc.constantFrom<unknown>('general', '#ops', 'c0123', 'C0;rm', 42),
  ),
  setting(
    ['access', 'users', 0, 'passwordHash'],
    fc.constant('scrypt:c2FsdHNhbHRzYWx0c2FsdA==:aGFzaA=='),
    fc.constantFrom<unknown>('hunter2', 'bcrypt:a:b', 'scrypt:$(x):y', '', 1),
  ),
  setting(
    ['access', 'users', 0, 'roles'],
    fc.subarray(['ADMIN', 'HOST_MANAGER', 'TASK_VIEWER'], { minLength: 1 }),
    fc.constantFrom<unknown>([], ['ROOT'], 'ADMIN', [1]),
  ),
  setting(
    ['access', 'slack', 'HOST_MANAGER', 'users'],
    fc.array(fc.stringMatching(/^U[A-Z0-9]{3,10}$/), { maxLength: 3 }),
    fc.constantFrom<unknown>(['alice'], ['U1;x'], 'U123', [null]),
  ),
  setting(
    ['access', 'slack', 'TASK_VIEWER', 'usergroups'],
    fc.array(fc.stringMatching(/^S[A-Z0-9]{3,10}$/), { maxLength: 3 }),
    fc.constantFrom<unknown>(['ops'], ['S 1'], {}, [1]),
  ),
  // unknown keys, anywhere
  fc
    .tuple(
      fc.constantFrom<(string | number)[]>(
        [],
        ['ssh'],
        ['executor'],
        ['slack'],
        ['access'],
        ['access', 'users', 0],
        ['nats'],
      ),
      fc.constantFrom('extra', 'sshh', 'Hosts', 'token', 'privateKey'),
    )
    .map(([at, key]) => ({ path: [...at, key], value: 'x', wrong: key })),
  // the hosts themselves
  hostArb.map((h) => {
    const wrong = wrongFields(h, 'hosts.1');
    return { path: ['hosts', 1], value: buildHost(h), ...(wrong.length > 0 ? { wrong: wrong.join('|') } : {}) };
  }),
];

function baseDocument(): Record<string, unknown> {
  return {
    hosts: [
      {
        id: 100,
        name: 'ocp-host-1',
        address: '127.0.0.1',
        port: 22,
        username: 'admin',
        agentHome: '/home/admin/ocp_agent',
      },
    ],
    ssh: { privateKeyPath: '~/.ssh/id_ed25519', knownHostsPath: '~/.ssh/known_hosts', killGraceSeconds: 30 },
    access: {
      users: [{ username: 'alice', passwordHash: 'scrypt:c2FsdHNhbHRzYWx0c2FsdA==:aGFzaA==', roles: ['HOST_MANAGER'] }],
      slack: { HOST_MANAGER: { usergroups: ['S0123ABCD'], users: ['U0456EFGH'] } },
    },
    batch: { maxParallel: 20 },
    executor: { leaseSeconds: 30 },
    nats: { replicas: 1 },
    slack: { command: '/ocp-agent', defaultChannel: 'C0123OPS' },
  };
}

function apply(doc: Record<string, unknown>, m: Mutation): void {
  let at: Record<string | number, unknown> = doc;
  for (const key of m.path.slice(0, -1)) {
    const next = at[key];
    if (typeof next !== 'object' || next === null)
      at[key] = typeof m.path[m.path.indexOf(key) + 1] === 'number' ? [] : {};
    at = at[key] as Record<string | number, unknown>;
  }
  at[m.path[m.path.length - 1] as string | number] = m.value;
}

let fileSeq = 0;
function writeConfig(text: string): string {
  const dir = join(scratch, `c${fileSeq++}`);
  mkdirSync(dir);
  const path = join(dir, 'ocp-chatops.yml');
  writeFileSync(path, text);
  return path;
}

describe('configuration fuzzing: refused naming the field, or accepted and safe for the host', () => {
  test('a host entry with any fields: every wrong field named, or every field safe and quoted', (t) => {
    const tally = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(hostArb, (h) => {
        const host = buildHost(h);
        const wrong = wrongFields(h, 'hosts.0');
        const what = `host ${JSON.stringify(host)}`;
        if (process.env.DBG) console.log('DBG', wrong.join(' '), JSON.stringify(host));
        const config = expectOutcome(() => parseConfig({ hosts: [host] }, {}, 'fuzz.yml', scratch), wrong, what);
        if (config) {
          tally.accepted++;
          assertHostSafe(config, what);
          const got = config.hosts[0]!;
          for (const k of FIELD_NAMES) {
            const f = h.fields[k];
            if ('value' in f) assert.equal(got[k], f.value, `${what}: ${k} kept as written`);
          }
        } else tally.refused++;
      }),
      runs(500),
    );
    t.diagnostic(JSON.stringify(tally));
    assert.ok(tally.accepted > 20 && tally.refused > 20, `both sides were tried: ${JSON.stringify(tally)}`);
  });

  test('hostile host values are always refused, naming the field', () => {
    const hostile = fc.oneof(
      fc.constantFrom(...HOSTILE_STRINGS).filter((s) => SHELL_SPECIAL.test(s)),
      fc
        .tuple(fc.string({ maxLength: 10 }), fc.constantFrom(...' ;|&$()`\'"\\\n<>*?'), fc.string({ maxLength: 10 }))
        .map(([a, c, b]) => `${a}${c}${b}`),
    );
    fc.assert(
      fc.property(fc.constantFrom('address', 'username', 'agentHome', 'stateDir'), hostile, (key, value) => {
        const host = {
          id: 1,
          name: 'h',
          address: '127.0.0.1',
          [key]: key === 'address' || key === 'username' ? value : `/ok/${value}`,
        };
        const what = `${key} ${JSON.stringify(host[key])}`;
        assert.throws(
          () => parseConfig({ hosts: [host] }, {}, 'fuzz.yml', scratch),
          (e: unknown) => e instanceof ConfigError && e.message.includes(`hosts.0.${key}:`),
          what,
        );
      }),
      runs(300),
    );
  });

  test('a whole document, as YAML or JSON, with any fields changed: refused naming each wrong one, or accepted and safe', (t) => {
    const tally = { accepted: 0, refused: 0 };
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.oneof(...MUTATIONS), { minLength: 1, maxLength: 3, selector: (m) => m.path.join('.') }),
        fc.constantFrom('yaml', 'json'),
        (mutations, format) => {
          const doc = baseDocument();
          for (const m of mutations) apply(doc, m);
          const text = format === 'yaml' ? stringify(doc) : JSON.stringify(doc, null, 2);
          const path = writeConfig(text);
          // each wrong mutation must be named; a host's wrong fields are alternatives (one of them named is not enough: all)
          const wrong = mutations.flatMap((m) => (m.wrong ? m.wrong.split('|') : []));
          const what = `${format}:\n${text}`;
          const config = expectOutcome(() => loadConfig({ CONFIG_FILE: path }, scratch).config, wrong, what);
          if (config) {
            tally.accepted++;
            assertHostSafe(config, what);
          } else tally.refused++;
        },
      ),
      runs(300),
    );
    t.diagnostic(JSON.stringify(tally));
    assert.ok(tally.accepted > 10 && tally.refused > 10, `both sides were tried: ${JSON.stringify(tally)}`);
  });

  test('any text as the configuration file: a configuration or a ConfigError, never another failure', () => {
    const texts = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 100 }),
      fc.json({ maxDepth: 3 }),
      fc.anything({ maxDepth: 3 }).map((v) => {
        try {
          return String(stringify(v) ?? '');
        } catch {
          return String(v);
        }
      }),
      fc.constantFrom(
        '',
        '---',
        '~',
        '[]',
        '42',
        '"hosts"',
        'hosts: 7',
        'hosts: [1, 2]',
        'hosts:\n  - !!binary aGVsbG8=',
        'a: &a [*a]',
        'a: &x [1]\nb: [*x, *x, *x]\nc: [*b, *b]',
        '!!js/function "function(){}"',
        '__proto__: {hosts: []}',
        'constructor: {prototype: {x: 1}}',
        'hosts:\n  - {id: 1, name: h, address: 127.0.0.1, agentHome: !!str /x}',
        'runbooks: /etc/passwd',
        'runbooks: /dev/null',
        'runbooks: "\\0"',
        'runbooks: ./ocp-chatops.yml',
        'ssh: {privateKeyPath: ""}',
        '\uFEFFhosts: []',
        'hosts: []\nhosts: []',
        `hosts: [${'['.repeat(500)}`,
      ),
    );
    fc.assert(
      fc.property(texts, (text) => {
        const path = writeConfig(text);
        try {
          const { config } = loadConfig({ CONFIG_FILE: path }, scratch);
          assertHostSafe(config, JSON.stringify(text));
        } catch (e) {
          assert.ok(e instanceof ConfigError, `${JSON.stringify(text).slice(0, 300)}: threw ${String(e)}`);
          assert.ok(e.message.length > 0);
        }
      }),
      runs(300),
    );
  });

  test('any environment: accepted, or a ConfigError naming the variable', () => {
    const VARS = ['HTTP_PORT', 'HTTP_HOST', 'NATS_URL', 'LOG_LEVEL', 'ROLES', 'SLACK_API_URL', 'NATS_USER'] as const;
    const value = fc.oneof(
      hostileString,
      fc.constantFrom(
        '0',
        '3000',
        '65535',
        '65536',
        '-1',
        '1e3',
        '0x10',
        '127.0.0.1',
        '::',
        'nats://127.0.0.1:4222',
        'nats://u:p@h:1',
        'http://x',
        'debug',
        'trace',
        'loud',
        'api,slack',
        'api,,x',
        'https://slack.com/api/',
      ),
    );
    fc.assert(
      fc.property(fc.constantFrom(...VARS), value, (name, v) => {
        const env: NodeJS.ProcessEnv = { [name]: v };
        if (name === 'NATS_USER') env.NATS_PASSWORD = 'pw';
        try {
          parseConfig({}, env, 'fuzz.yml', scratch);
        } catch (e) {
          assert.ok(e instanceof ConfigError, `${name}=${JSON.stringify(v)}: threw ${String(e)}`);
          assert.ok(e.message.includes(name), `${name}=${JSON.stringify(v)}: the error names ${name}: ${e.message}`);
        }
      }),
      runs(300),
    );
  });
});
