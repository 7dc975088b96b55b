/**
 * Property-based fuzzing of every front door against the real stack (nats-server, sshd hosts):
 * malformed path ids, bodies, queries and headers over HTTP, malformed payloads on the
 * ocp.api.* micro service and on the ocp.cmd.* intake. SPEC §3: every answer is an error
 * envelope with a code from the error table, in the check order (credentials, input,
 * permission, existence, state); a request that happens to be valid may succeed but creates
 * nothing here; nothing is created, published or run on an error; the service keeps serving.
 *
 * The oracles below follow the SPEC, not the code: where the SPEC leaves a choice open
 * (unknown keys, lenient numbers such as `page=0x10`), both answers are allowed.
 * Reproduce a failure with FUZZ_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { headers as natsHeaders, type Subscription } from 'nats';
import { type RawAnswer, rawHttp as rawHttpOnce } from '../helpers/raw-http.js';
import { accepted, request as publishRequest } from '../helpers/requests.js';
import { CODE_STATUS, HEX16, SIGN_IN_REFUSED } from '../helpers/spec-facts.js';
import { basicAuth, readTask, type Stack, startStack, TEST_USERS, waitForTask } from '../helpers/stack.js';

// ---------------------------------------------------------------- SPEC §3 facts

const OCP_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/;
const LONG_MAX = 2n ** 63n - 1n;
const REQUEST_ID = /^[A-Za-z0-9_-]{1,64}$/;
const TASK_STATUSES = ['RUNNING', 'FAILED', 'SUCCESSFUL'];

/** SPEC §3: an id is `[1-9][0-9]*` within Long range. */
const validId = (s: string): boolean => /^[1-9][0-9]*$/.test(s) && BigInt(s) <= LONG_MAX;

type User = keyof typeof TEST_USERS;
type Permission = 'HOST_MANAGER' | 'HOST_VIEWER' | 'TASK_MANAGER' | 'TASK_VIEWER';
const allows = (user: User, p: Permission): boolean =>
  (TEST_USERS[user].roles as readonly string[]).some((r) => r === 'ADMIN' || r === p);

interface RouteSpec {
  method: 'GET' | 'POST';
  path: string;
  permission: Permission;
  kind: 'agent' | 'agentStatus' | 'batch' | 'list' | 'task';
}

const COMPUTE: RouteSpec[] = [
  { method: 'POST', path: '/compute/hosts/batchRestartAgents', permission: 'HOST_MANAGER', kind: 'batch' },
  { method: 'POST', path: '/compute/hosts/:hostId/agent/restart', permission: 'HOST_MANAGER', kind: 'agent' },
  { method: 'POST', path: '/compute/hosts/:hostId/agent/stop', permission: 'HOST_MANAGER', kind: 'agent' },
  { method: 'POST', path: '/compute/hosts/:hostId/agent/start', permission: 'HOST_MANAGER', kind: 'agent' },
  { method: 'GET', path: '/compute/hosts/:hostId/agent', permission: 'HOST_VIEWER', kind: 'agentStatus' },
];
const TASKS = '/api/v2/tasks/instances';
const ROUTES: RouteSpec[] = [
  ...COMPUTE,
  ...COMPUTE.map((r) => ({ ...r, path: `/api/v2${r.path}` })),
  { method: 'GET', path: TASKS, permission: 'TASK_VIEWER', kind: 'list' },
  { method: 'GET', path: `${TASKS}/:taskId`, permission: 'TASK_VIEWER', kind: 'task' },
  { method: 'POST', path: `${TASKS}/:taskId/retry`, permission: 'TASK_MANAGER', kind: 'task' },
  { method: 'POST', path: `${TASKS}/:taskId/rollback`, permission: 'TASK_MANAGER', kind: 'task' },
  { method: 'POST', path: `${TASKS}/:taskId/subtasks/:subtaskId/retry`, permission: 'TASK_MANAGER', kind: 'task' },
  { method: 'POST', path: `${TASKS}/:taskId/subtasks/:subtaskId/skip`, permission: 'TASK_MANAGER', kind: 'task' },
  { method: 'POST', path: `${TASKS}/:taskId/subtasks/:subtaskId/cancel`, permission: 'TASK_MANAGER', kind: 'task' },
  { method: 'GET', path: `${TASKS}/:taskId/subtasks/:subtaskId/log`, permission: 'TASK_VIEWER', kind: 'task' },
];
const PARAM_ROUTES = ROUTES.filter((r) => r.path.includes('/:'));
const AGENT_ROUTES = ROUTES.filter((r) => r.kind === 'agent');
const BATCH_ROUTES = ROUTES.filter((r) => r.kind === 'batch');

/** ocp.api.<operation> (docs/): the HTTP operations on NATS. */
const API_OPERATIONS = [
  'agent.restart',
  'agent.stop',
  'agent.start',
  'agent.batchRestart',
  'agent.status',
  'task.list',
  'task.get',
  'task.retry',
  'task.rollback',
  'subtask.retry',
  'subtask.skip',
  'subtask.cancel',
  'subtask.log',
] as const;
const CREATING_OPERATIONS = new Set(['agent.restart', 'agent.stop', 'agent.start', 'agent.batchRestart']);

// ---------------------------------------------------------------- fuzz settings

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const runs = (n: number) => ({
  numRuns: Math.max(1, Math.round(n * SCALE)),
  ...(SEED === undefined ? {} : { seed: SEED }),
  // a property run that hangs is a finding, not a reason to hang the suite
  interruptAfterTimeLimit: 90_000,
  markInterruptAsFailure: true,
});

/** Run a property; fail with fast-check's report (seed, counterexample); tell what was answered. */
async function checkProperty<T>(
  t: TestContext,
  prop: fc.IAsyncPropertyWithHooks<T>,
  n: number,
  answers: Map<string, number>,
): Promise<void> {
  const startedAt = Date.now();
  const details = await fc.check(prop, runs(n));
  const tally = [...answers].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}×${v}`);
  t.diagnostic(
    `${details.numRuns} runs, ${details.numSkips} skipped (would start a real task), seed ${details.seed}, ` +
      `${Date.now() - startedAt} ms; answers: ${tally.join(' ')}`,
  );
  if (details.failed) assert.fail((await fc.asyncDefaultReportMessage(details)) ?? 'property failed');
}

const tallyOf = (answers: Map<string, number>, key: string) => answers.set(key, (answers.get(key) ?? 0) + 1);

/** Largest body the service reads (bytes, src/http/server.ts): a bigger one is malformed (400). */
const MAX_BODY = 64 * 1024;

// ---------------------------------------------------------------- arbitraries

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Ids that an OCP client might send by mistake, and what an attacker would try. */
const NASTY_IDS = [
  '0',
  '-1',
  '0100',
  '00',
  '+1',
  '1e3',
  '1.5',
  '1.0',
  ' ',
  '%20',
  '%',
  '%%',
  '%2',
  '%zz',
  '%C3%28',
  '%FF',
  '%00',
  '101%00',
  '9223372036854775808',
  '9223372036854775807',
  '18446744073709551616',
  '9007199254740993',
  '1'.repeat(300),
  '١٠١',
  '１０１',
  '101 ',
  ' 101',
  '\t101',
  '101\n',
  '../',
  '..',
  '.',
  './101',
  '%2e%2e',
  '.%2E',
  '101/..',
  '..%2f',
  '%2F',
  '\\',
  '..\\..',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-0',
  '0x65',
  '1_000',
  '1,0',
  '\uFEFF101',
  'true',
  '[]',
  '{}',
  '101?x=1',
  '101#x',
  '%31%30%31',
  '',
  '*',
  '>',
  '\u0000',
  '<script>',
  '101;id',
  '$(id)',
  '__proto__',
  'constructor',
];

const idString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NASTY_IDS) },
  { weight: 2, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 2, arbitrary: fc.stringMatching(/^[0-9]{1,40}$/) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 20, max: 4000 }))
      .map(([d, n]) => String(d).repeat(n)),
  },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String) },
  { weight: 1, arbitrary: fc.double().map(String) },
  // well-formed ids: mostly unknown hosts and tasks, sometimes the inventory's 101/102
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 200 }).map(String) },
);

/** An id as a JSON value (bodies, NATS payloads). */
const idValue: fc.Arbitrary<unknown> = fc.oneof(
  idString,
  fc.integer({ min: -5, max: 200 }),
  fc.constantFrom(0, -1, 1.5, 1e21, 2 ** 53, 2 ** 63, -0, 103, 4242),
  fc.double(),
  fc.constantFrom(null, true, false, [], {}, [101], { id: 101 }),
);

type AuthCase = { header: string | undefined; user: User | undefined };
const authArb: fc.Arbitrary<AuthCase> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom<User>('operator', 'admin', 'viewer').map((u) => ({ header: basicAuth(u), user: u })),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.constant(undefined),
        fc.string({ maxLength: 60 }),
        fc.constantFrom(
          'Basic',
          'Basic ',
          'Basic !!!!',
          'Bearer abc.def',
          'Digest username="admin"',
          'Basic Og==',
          `Basic ${b64('operator')}`,
          `Basic ${b64('operator:')}`,
          `Basic ${b64(':operator-secret-2')}`,
          `Basic ${b64('nobody:x')}`,
          `Basic ${b64('Operator:operator-secret-2')}`,
          `Basic ${b64('viewer:operator-secret-2')}`,
          `Basic ${b64('operator:operator-secret-2x')}`,
        ),
        fc
          .tuple(fc.constantFrom('admin', 'operator', 'viewer', 'root', ''), fc.string({ maxLength: 20 }))
          .map(([u, p]) => `Basic ${b64(`${u}:${p}`)}`),
        fc.base64String({ maxLength: 40 }).map((s) => `Basic ${s}`),
      )
      .map((header) => ({ header, user: undefined })),
  },
);

const traceArb: fc.Arbitrary<string | undefined> = fc.option(
  fc.oneof(
    { weight: 3, arbitrary: fc.stringMatching(/^[0-9a-f]{16}$/) },
    fc.stringMatching(/^[0-9A-F]{16}$/),
    fc.stringMatching(/^[0-9a-f]{1,15}$|^[0-9a-f]{17,40}$/),
    fc.string({ maxLength: 40 }),
    fc.constantFrom('', '0123456789abcdeg', '0123456789abcdef0', 'null'),
  ),
  { nil: undefined },
);

const contentTypeArb: fc.Arbitrary<string | undefined> = fc.option(
  fc.oneof(
    fc.constantFrom(
      'application/json',
      'application/json; charset=latin1',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
    ),
    fc.string({ maxLength: 40 }),
  ),
  { nil: undefined },
);

function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v) ?? 'undefined';
  } catch {
    return String(v);
  }
}

/** Bytes to send, shown readably in fast-check's counterexamples (a 100 KiB buffer is not). */
interface Payload {
  bytes: Uint8Array;
}
function payload(bytes: Uint8Array, label?: string): Payload {
  const text = Buffer.from(bytes).toString('utf8');
  const shown = label ?? (bytes.length > 300 ? `<${bytes.length} bytes>` : JSON.stringify(text));
  return { bytes, [fc.toStringMethod]: () => shown } as Payload;
}

/** Bodies and payloads: JSON text of any shape, JSON of anything, random bytes, text. */
const looseBytes: fc.Arbitrary<Payload> = fc
  .oneof(
    fc.json().map((s) => Buffer.from(s)),
    fc.anything().map((v) => Buffer.from(safeStringify(v))),
    fc.uint8Array({ maxLength: 300 }),
    fc.string({ maxLength: 100 }).map((s) => Buffer.from(s)),
    fc.string({ unit: 'binary', maxLength: 40 }).map((s) => Buffer.from(s)),
    fc
      .constantFrom('', ' ', '\n', 'null', '[]', '{', '}', '{}x', '"{}"', '{"a":1,}', '\uFEFF{}')
      .map((s) => Buffer.from(s)),
    // keys a JavaScript server must not trip over
    fc
      .constantFrom(
        '{"__proto__":{"hostId":101}}',
        '{"constructor":{"prototype":{"x":1}}}',
        '{"toString":1}',
        '{"hostIds":{"length":1,"0":101}}',
        '{"hostId":101,"hostId":"x"}',
      )
      .map((s) => Buffer.from(s)),
  )
  .map((bytes) => payload(bytes));

const junkText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', '   ', 'x'.repeat(129), 'r'.repeat(501)),
  fc.integer(),
  fc.constantFrom(null, true, [], {}),
);

/** A text field: mostly a fair string, sometimes junk of any type or length. */
const textField = fc.oneof({ weight: 3, arbitrary: fc.string({ maxLength: 40 }) }, junkText);
/** An unknown key, now and then (JSON.stringify drops the undefined ones). */
const rareExtra = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, fc.anything());

const agentBodyObject = fc.record(
  { hostId: idValue, reason: textField, creator: textField, extra: rareExtra },
  { requiredKeys: [] },
);
const batchBodyObject = fc.record(
  {
    hostIds: fc.oneof(
      { weight: 4, arbitrary: fc.array(idValue, { maxLength: 8 }) },
      fc.constant([]),
      fc.integer({ min: 2001, max: 2100 }).map((n) => Array.from({ length: n }, (_, i) => 1000 + i)),
      idValue,
    ),
    reason: textField,
    creator: textField,
    extra: rareExtra,
  },
  { requiredKeys: [] },
);

/** Bodies larger than MAX_BODY: valid-looking JSON padded, or garbage. */
const hugeBody: fc.Arbitrary<Payload> = fc
  .tuple(fc.integer({ min: MAX_BODY + 1, max: 160 * 1024 }), fc.constantFrom('padded', 'reason', 'hostIds', 'garbage'))
  .map(([size, kind]) => {
    if (kind === 'padded') return payload(Buffer.from(`{}${' '.repeat(size)}`), `<{} and ${size} spaces>`);
    if (kind === 'reason')
      return payload(Buffer.from(JSON.stringify({ reason: 'r'.repeat(size) })), `<{"reason": ${size} × "r"}>`);
    if (kind === 'hostIds') {
      const hostIds = Array.from({ length: Math.ceil(size / 6) }, (_, i) => 10000 + i);
      return payload(
        Buffer.from(JSON.stringify({ hostIds })),
        `<{"hostIds": [10000 … ${10000 + hostIds.length - 1}]}>`,
      );
    }
    return payload(Buffer.alloc(size, 0x7b), `<${size} × "{">`);
  });

// ---------------------------------------------------------------- HTTP client and checks

/** One request on its own connection, the path sent exactly as given; no answer in 10 s is a hang. */
const rawHttp = (port: number, method: string, path: string, headers: Record<string, string>, body?: Uint8Array) =>
  rawHttpOnce(port, method, path, headers, body, 10_000);

interface Envelope {
  successful?: unknown;
  status?: unknown;
  data?: unknown;
  error?: { code?: unknown; message?: unknown };
  traceId?: unknown;
  timestamp?: unknown;
  duration?: unknown;
  server?: unknown;
}

type Outcome = { status: number; code?: number };
const err = (code: number): Outcome => ({ status: CODE_STATUS[code] as number, code });
/** Credentials missing or wrong: 401, or 429 once too many have failed from this address or for this name. */
const REFUSED: Outcome[] = SIGN_IN_REFUSED.map((o) => ({ ...o }));
const OK: Outcome = { status: 200 };

/** The envelope fields every answer has (SPEC §3), success or error. */
function checkEnvelope(body: Envelope, status: number, sentTrace: string | undefined, what: string): void {
  assert.equal(body.status, status, `${what}: envelope status`);
  assert.match(String(body.traceId), HEX16, `${what}: traceId`);
  if (sentTrace !== undefined && HEX16.test(sentTrace)) {
    assert.equal(body.traceId, sentTrace, `${what}: a valid X-Trace-Id is kept`);
  }
  assert.match(String(body.timestamp), OCP_TIME, `${what}: timestamp`);
  assert.ok(Number.isInteger(body.duration) && (body.duration as number) >= 0, `${what}: duration ${body.duration}`);
  assert.equal(typeof body.server, 'string', `${what}: server`);
  if (status === 200) {
    assert.equal(body.successful, true, `${what}: successful`);
    assert.ok('data' in body, `${what}: data`);
    return;
  }
  assert.equal(body.successful, false, `${what}: successful`);
  const code = body.error?.code;
  assert.ok(typeof code === 'number' && CODE_STATUS[code] !== undefined, `${what}: error.code ${code} is in the table`);
  if (!SIGN_IN_REFUSED.some((o) => o.status === status && o.code === code)) {
    assert.equal(CODE_STATUS[code], status, `${what}: error.code ${code} goes with HTTP ${status}`);
  }
  assert.equal(typeof body.error?.message, 'string', `${what}: error.message`);
}

function parseEnvelope(text: string, what: string): Envelope {
  try {
    const v: unknown = JSON.parse(text);
    assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), `${what}: answer is a JSON object`);
    return v as Envelope;
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    assert.fail(`${what}: answer is not JSON: ${text.slice(0, 300)}`);
  }
}

function assertHttpAnswer(a: RawAnswer, allowed: Outcome[], sentTrace: string | undefined, what: string): Envelope {
  assert.ok(a.status < 500, `${what}: answered HTTP ${a.status}: ${a.text.slice(0, 500)}`);
  const body = parseEnvelope(a.text, `${what} → ${a.status}`);
  const code = body.error?.code;
  assert.ok(
    allowed.some((o) => o.status === a.status && (o.code === undefined || o.code === code)),
    `${what}: answered ${a.status} ${JSON.stringify(body.error ?? null)}; SPEC expects one of ${JSON.stringify(allowed)}`,
  );
  assert.equal(a.headers['x-trace-id'], body.traceId, `${what}: X-Trace-Id header = envelope traceId`);
  if (a.status === 429) assert.match(String(a.headers['retry-after']), /^[1-9][0-9]*$/, `${what}: Retry-After`);
  checkEnvelope(body, a.status, sentTrace, what);
  return body;
}

function requestHeaders(auth: AuthCase, trace: string | undefined, contentType: string | undefined) {
  const h: Record<string, string> = {};
  if (auth.header !== undefined) h.authorization = auth.header;
  if (trace !== undefined) h['x-trace-id'] = trace;
  if (contentType !== undefined) h['content-type'] = contentType;
  return h;
}

/** A path segment: raw when it is plain visible ASCII (so `%`, `..`, `\` reach the server as typed), else encoded. */
function segment(s: string, raw: boolean): string {
  if (raw && /^[\x21-\x7e]*$/.test(s) && !/[?#]/.test(s)) return s;
  try {
    return encodeURIComponent(s);
  } catch {
    return [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
  }
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The route a method and path reach after URL normalisation, with decoded params. */
function routeOf(method: string, rawPath: string): { route: RouteSpec; params: string[] } | undefined {
  const segs = new URL(rawPath, 'http://localhost').pathname.split('/');
  for (const route of ROUTES) {
    if (route.method !== method) continue;
    const pattern = route.path.split('/');
    if (pattern.length !== segs.length) continue;
    const params: string[] = [];
    const hit = pattern.every((p, i) => {
      const seg = segs[i] as string;
      if (p.startsWith(':')) {
        params.push(decodeSegment(seg));
        return true;
      }
      return p === seg;
    });
    if (hit) return { route, params };
  }
  return undefined;
}

// ---------------------------------------------------------------- body oracles

function parseJson(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  const text = Buffer.from(bytes).toString('utf8');
  if (text.trim() === '') return { ok: true, value: {} }; // an empty body is an empty object
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: Record<string, unknown>, k: string) => Object.hasOwn(o, k);

/** An id in a JSON body: valid, invalid, or beyond what a JSON number holds exactly. */
function idKind(v: unknown): 'valid' | 'invalid' | 'ambiguous' {
  if (typeof v === 'string') return validId(v) ? 'valid' : 'invalid';
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return Number.isSafeInteger(v) ? 'valid' : 'ambiguous';
  return 'invalid';
}

/** Conservative: could this value name an inventory host? (Number('101'), Number([101]) both count.) */
const mayName = (inventory: number[], v: unknown) => inventory.includes(Number(v));

/** SPEC's "malformed" beyond doubt for an agent or batch body (unknown keys and lengths are left open). */
function bodyDefinitelyMalformed(kind: 'agent' | 'batch', value: unknown): boolean {
  if (!isObject(value)) return true;
  for (const k of ['reason', 'creator']) if (has(value, k) && typeof value[k] !== 'string') return true;
  if (kind === 'batch') {
    const ids = value.hostIds;
    if (!Array.isArray(ids) || ids.length === 0) return true;
    if (ids.some((v) => idKind(v) === 'invalid')) return true;
  }
  return false;
}

// ---------------------------------------------------------------- the suite

interface Snapshot {
  taskEvents: number;
  tasks: string[];
  locks: string[];
  tasksLastSeq: number;
  locksLastSeq: number;
  workMessages: number;
  workLastSeq: number;
}

describe('API fuzzing: malformed input never breaks the service nor creates anything', () => {
  let stack: Stack;
  let port: number;
  let inventory: number[];
  let before_: Snapshot;

  async function keys(bucket: string): Promise<string[]> {
    const kv = await stack.js.views.kv(bucket, { bindOnly: true });
    const out: string[] = [];
    for await (const k of await kv.keys()) out.push(k);
    return out.sort();
  }

  async function snapshot(): Promise<Snapshot> {
    const jsm = await stack.nc.jetstreamManager();
    const events = await jsm.streams.info('OCP_EVENTS', { subjects_filter: 'ocp.events.task.>' });
    const work = await jsm.streams.info('OCP_WORK');
    const kvTasks = await jsm.streams.info('KV_ocp_tasks');
    const kvLocks = await jsm.streams.info('KV_ocp_host_locks');
    return {
      taskEvents: Object.values(events.state.subjects ?? {}).reduce((a, b) => a + b, 0),
      tasks: await keys('ocp_tasks'),
      locks: await keys('ocp_host_locks'),
      tasksLastSeq: kvTasks.state.last_seq,
      locksLastSeq: kvLocks.state.last_seq,
      workMessages: work.state.messages,
      workLastSeq: work.state.last_seq,
    };
  }

  before(async () => {
    // thousands of refused requests are expected here: keep warnings out of the output (errors still show)
    process.env.TEST_LOG_LEVEL ??= 'error';
    stack = await startStack({ hosts: 2 });
    const svc = await stack.startService();
    port = svc.httpPort as number;
    inventory = stack.config.hosts.map((h) => h.id);
    assert.deepEqual(inventory, [101, 102]);
    before_ = await snapshot();
  });
  after(async () => stack?.stop());

  it('HTTP: any id in any route with :params answers 4xx with the right code and an error envelope', async (t) => {
    const answers = new Map<string, number>();
    const arb = fc.record({
      route: fc.constantFrom(...PARAM_ROUTES),
      ids: fc.tuple(idString, idString),
      raw: fc.tuple(fc.boolean(), fc.boolean()),
      otherMethod: fc.oneof(
        { weight: 6, arbitrary: fc.constant(undefined) },
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      ),
      auth: authArb,
      trace: traceArb,
      contentType: contentTypeArb,
    });
    await checkProperty(
      t,
      fc.asyncProperty(arb, async (c) => {
        let i = 0;
        const path = c.route.path.replace(/:[A-Za-z]+/g, () => {
          const n = i++;
          return segment(c.ids[n] as string, c.raw[n] as boolean);
        });
        const method = c.otherMethod ?? c.route.method;
        const matched = routeOf(method, path);
        // The expected answer, SPEC §3's order: credentials, input, permission, existence.
        let expected: Outcome | Outcome[];
        if (!c.auth.user) expected = REFUSED;
        else if (!matched) expected = err(10002);
        else if (matched.route.kind === 'list') expected = OK;
        else if (matched.route.kind === 'batch')
          expected = err(10001); // no body: hostIds missing
        else if (!matched.params.every(validId)) expected = err(10001);
        else if (!allows(c.auth.user, matched.route.permission)) expected = err(30014);
        else if (matched.route.kind === 'task')
          expected = err(20000); // no task exists
        else if (!inventory.includes(Number(matched.params[0]))) expected = err(10002);
        else if (matched.route.kind === 'agentStatus') expected = OK;
        else {
          fc.pre(false); // a valid restart/stop/start of a real host: would create a task
          return;
        }
        const what = `${method} ${path.slice(0, 300)} as ${c.auth.user ?? JSON.stringify(c.auth.header)}`;
        const a = await rawHttp(port, method, path, requestHeaders(c.auth, c.trace, c.contentType));
        const body = assertHttpAnswer(a, [expected].flat(), c.trace, what);
        tallyOf(answers, `${a.status}/${body.error?.code ?? 'ok'}`);
      }),
      300,
      answers,
    );
  });

  it('HTTP: any body to batchRestartAgents and agent/restart|stop|start answers 4xx and creates nothing', async (t) => {
    const answers = new Map<string, number>();
    const arb = fc.record({
      route: fc.constantFrom(...AGENT_ROUTES, ...BATCH_ROUTES, ...BATCH_ROUTES),
      hostId: fc.constantFrom(101, 102, 103, 4242),
      body: fc.oneof(
        { weight: 4, arbitrary: looseBytes },
        { weight: 3, arbitrary: agentBodyObject.map((o) => payload(Buffer.from(JSON.stringify(o)))) },
        { weight: 3, arbitrary: batchBodyObject.map((o) => payload(Buffer.from(JSON.stringify(o)))) },
        { weight: 1, arbitrary: hugeBody },
      ),
      auth: authArb,
      trace: traceArb,
      contentType: contentTypeArb,
    });
    await checkProperty(
      t,
      fc.asyncProperty(arb, async (c) => {
        const path = c.route.path.replace(':hostId', String(c.hostId));
        const kind = c.route.kind === 'batch' ? 'batch' : 'agent';
        const bytes = c.body.bytes;
        const parsed = parseJson(bytes);
        const user = c.auth.user;
        let allowed: Outcome[];
        if (!user) allowed = REFUSED;
        else if (bytes.length > MAX_BODY) allowed = [err(10001)];
        else if (!parsed.ok || bodyDefinitelyMalformed(kind, parsed.value)) allowed = [err(10001)];
        else {
          const value = parsed.value as Record<string, unknown>;
          const names =
            kind === 'agent' ? [c.hostId] : Array.isArray(value.hostIds) ? (value.hostIds as unknown[]) : [];
          const mayCreate = allows(user, 'HOST_MANAGER') && names.some((v) => mayName(inventory, v));
          fc.pre(!mayCreate); // well-formed enough to start a real task: not ours to send
          // open choices: unknown keys or lengths (400); then permission (403), then a host not in the inventory (404)
          allowed = [err(10001), allows(user, 'HOST_MANAGER') ? err(10002) : err(30014)];
        }
        const what = `POST ${path} as ${user ?? JSON.stringify(c.auth.header)} body ${
          bytes.length > 300 ? `<${bytes.length} bytes>` : JSON.stringify(Buffer.from(bytes).toString('utf8'))
        }`;
        const a = await rawHttp(port, 'POST', path, requestHeaders(c.auth, c.trace, c.contentType), bytes);
        const body = assertHttpAnswer(a, allowed, c.trace, what);
        tallyOf(answers, `${a.status}/${body.error?.code ?? 'ok'}`);
      }),
      200,
      answers,
    );
  });

  it('HTTP: any query string on GET /api/v2/tasks/instances answers 200 (when valid) or 400', async (t) => {
    const answers = new Map<string, number>();
    const num = (valid: fc.Arbitrary<string>, junk: string[]) =>
      fc.oneof(valid, fc.constantFrom(...junk), fc.string({ maxLength: 10 }));
    const numJunk = ['0', '-1', '1.5', 'abc', '1e3', ' ', '0x10', '01', '+1', 'Infinity', 'NaN', '9'.repeat(30)];
    const fields = fc.record(
      {
        page: num(fc.integer({ min: 1, max: 50 }).map(String), [...numJunk, '1000001']),
        size: num(fc.integer({ min: 1, max: 2000 }).map(String), [...numJunk, '2000', '2001', '100000']),
        status: fc.oneof(
          fc.constantFrom(...TASK_STATUSES, 'running', 'PENDING', 'READY', ' RUNNING', '', 'RUNNING,FAILED'),
          fc.string({ maxLength: 12 }),
        ),
        hostId: fc.oneof(idString, fc.constantFrom('101', '102')),
        name: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('x'.repeat(300), 'Restart OCP agent')),
        junk: fc.array(
          fc.tuple(
            fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('__proto__', 'constructor', 'taskId', 'page[]')),
            fc.string({ maxLength: 10 }),
          ),
          { maxLength: 2 },
        ),
        repeat: fc.constantFrom('page', 'size', 'status', 'hostId'),
      },
      { requiredKeys: [] },
    );
    const structured = fields.map((f) => {
      const pairs: Array<[string, string]> = [];
      for (const k of ['page', 'size', 'status', 'hostId', 'name'] as const) {
        const v = f[k];
        if (v !== undefined) pairs.push([k, v]);
      }
      for (const p of f.junk ?? []) pairs.push(p);
      if (f.repeat && pairs.length > 0) pairs.push([f.repeat, '1']);
      return pairs.map(([k, v]) => `${segment(k, false)}=${segment(v, false)}`).join('&');
    });
    const rawQuery = fc.string({
      unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzPSH0123456789=&%+;?#[]./\\-_~!$'()*,:@".split('')),
      maxLength: 40,
    });
    const arb = fc.record({
      query: fc.oneof({ weight: 3, arbitrary: structured }, rawQuery),
      auth: authArb,
      trace: traceArb,
    });
    await checkProperty(
      t,
      fc.asyncProperty(arb, async (c) => {
        const path = `${TASKS}?${c.query}`;
        const url = new URL(path, 'http://localhost');
        let allowed: Outcome[];
        let exact = false;
        assert.equal(url.pathname, TASKS, 'a query string cannot change the path');
        if (!c.auth.user) {
          allowed = REFUSED;
        } else {
          const entries = [...url.searchParams].filter(([, v]) => v !== '');
          const count = new Map<string, number>();
          for (const [k] of entries) count.set(k, (count.get(k) ?? 0) + 1);
          let invalid = false;
          let open = false;
          for (const [k, v] of entries) {
            if ((count.get(k) ?? 0) > 1) {
              open = true; // which of the repeated values counts is not the SPEC's to say
              continue;
            }
            const n = Number(v);
            if (k === 'page') {
              if (!Number.isInteger(n) || n < 1) invalid = true;
              else if (!/^[1-9][0-9]{0,4}$/.test(v)) open = true;
            } else if (k === 'size') {
              if (!Number.isInteger(n) || n < 1 || n > 2000) invalid = true;
              else if (!/^[1-9][0-9]{0,3}$/.test(v)) open = true;
            } else if (k === 'status') {
              if (!TASK_STATUSES.includes(v.trim().toUpperCase())) invalid = true;
              else if (!TASK_STATUSES.includes(v)) open = true;
            } else if (k === 'hostId') {
              if (!validId(v)) invalid = true;
            } else if (k === 'name') {
              if (v.length > 100) open = true;
            } else {
              open = true; // an unknown parameter: refusing or ignoring it are both fair
            }
          }
          if (invalid) allowed = [err(10001)];
          else if (open) allowed = [OK, err(10001)];
          else {
            allowed = [OK];
            exact = true;
          }
        }
        const what = `GET ${path} as ${c.auth.user ?? JSON.stringify(c.auth.header)}`;
        const a = await rawHttp(port, 'GET', path, requestHeaders(c.auth, c.trace, undefined));
        const body = assertHttpAnswer(a, allowed, c.trace, what);
        tallyOf(answers, `${a.status}/${body.error?.code ?? 'ok'}`);
        if (a.status === 200) {
          const data = body.data as { contents?: unknown; page?: Record<string, unknown> };
          assert.deepEqual(data.contents, [], `${what}: no task exists`);
          assert.equal(data.page?.totalElements, 0, `${what}: totalElements`);
          if (exact) {
            // An empty value counts as absent (`size=&size=1` is size 1), as the oracle above judged it.
            const given = (k: string) => [...url.searchParams].find(([key, v]) => key === k && v !== '')?.[1];
            assert.equal(data.page?.number, Number(given('page') ?? 1), `${what}: page.number`);
            assert.equal(data.page?.size, Number(given('size') ?? 10), `${what}: page.size`);
          }
        }
      }),
      160,
      answers,
    );
  });

  it('NATS: any payload to ocp.api.<operation> answers an error envelope at once, never a timeout', async (t) => {
    const answers = new Map<string, number>();
    /** The keys each operation takes (SPEC §3/§5), filled with junk and sometimes with valid values. */
    const KEYS: Record<(typeof API_OPERATIONS)[number], string[]> = {
      'agent.restart': ['hostId', 'creator', 'reason'],
      'agent.stop': ['hostId', 'creator', 'reason'],
      'agent.start': ['hostId', 'creator', 'reason'],
      'agent.batchRestart': ['hostIds', 'creator', 'reason'],
      'agent.status': ['hostId'],
      'task.list': ['page', 'size', 'status', 'hostId', 'name'],
      'task.get': ['taskId'],
      'task.retry': ['taskId'],
      'task.rollback': ['taskId'],
      'subtask.retry': ['taskId', 'subtaskId'],
      'subtask.skip': ['taskId', 'subtaskId'],
      'subtask.cancel': ['taskId', 'subtaskId'],
      'subtask.log': ['taskId', 'subtaskId'],
    };
    const someId = fc.oneof({ weight: 2, arbitrary: fc.integer({ min: 1, max: 5000 }) }, idValue);
    const FIELD_KEYS = [
      'taskId',
      'subtaskId',
      'hostId',
      'hostIds',
      'creator',
      'reason',
      'page',
      'size',
      'status',
      'name',
    ];
    const fields = fc
      .tuple(
        fc.record({
          taskId: someId,
          subtaskId: someId,
          hostId: someId,
          hostIds: fc.oneof(fc.array(someId, { maxLength: 5 }), idValue),
          creator: textField,
          reason: textField,
          page: fc.oneof(someId, junkText),
          size: fc.oneof(someId, junkText),
          status: fc.oneof(junkText, fc.constantFrom(...TASK_STATUSES)),
          name: textField,
        }),
        // usually every key the operation takes, sometimes a few left out
        fc.oneof({ weight: 3, arbitrary: fc.constant([] as string[]) }, fc.subarray(FIELD_KEYS)),
      )
      .map(([f, omitted]) => Object.fromEntries(Object.entries(f).filter(([k]) => !omitted.includes(k))));
    const arb = fc.record({
      op: fc.constantFrom(...API_OPERATIONS),
      payload: fc.oneof(looseBytes, fc.record({ fields, extra: rareExtra }), fc.record({ fields, extra: rareExtra })),
      trace: traceArb,
    });
    await checkProperty(
      t,
      fc.asyncProperty(arb, async (c) => {
        let payload: Uint8Array;
        if ('bytes' in c.payload) payload = c.payload.bytes;
        else {
          const o: Record<string, unknown> = Object.fromEntries(
            Object.entries(c.payload.fields).filter(([k]) => KEYS[c.op].includes(k)),
          );
          if (c.payload.extra !== undefined) o.extra = c.payload.extra;
          payload = Buffer.from(JSON.stringify(o));
        }
        const parsed = payload.length === 0 ? { ok: true as const, value: {} } : parseJson(payload);
        if (CREATING_OPERATIONS.has(c.op) && parsed.ok && isObject(parsed.value)) {
          const v = parsed.value;
          const names = [v.hostId, ...(Array.isArray(v.hostIds) ? v.hostIds : [v.hostIds])];
          fc.pre(!names.some((n) => mayName(inventory, n))); // could start a real task
        }
        const h = natsHeaders();
        if (c.trace !== undefined) h.set('X-Trace-Id', c.trace);
        const subject = `ocp.api.${c.op}`;
        const what = `${subject} ${JSON.stringify(Buffer.from(payload).toString('utf8')).slice(0, 300)}`;
        let reply: Uint8Array;
        try {
          reply = (await stack.nc.request(subject, payload, { timeout: 3000, headers: h })).data;
        } catch (e) {
          assert.fail(`${what}: no answer: ${(e as Error).message}`);
        }
        const body = parseEnvelope(Buffer.from(reply).toString('utf8'), what);
        tallyOf(answers, `${body.status}/${body.error?.code ?? 'ok'}`);
        const status = body.status as number;
        if (body.successful === true) {
          assert.ok(
            c.op === 'task.list' || c.op === 'agent.status',
            `${what}: only a read can succeed here, got ${JSON.stringify(body).slice(0, 300)}`,
          );
          checkEnvelope(body, 200, c.trace, what);
          return;
        }
        assert.ok(typeof status === 'number' && status >= 400 && status < 500, `${what}: status ${status}`);
        checkEnvelope(body, status, c.trace, what);
        const code = body.error?.code as number;
        if (!parsed.ok || !isObject(parsed.value)) {
          assert.equal(code, 10001, `${what}: not a JSON object → 10001, got ${JSON.stringify(body.error)}`);
        }
        const codes = c.op.startsWith('agent.') ? [10001, 10002] : c.op === 'task.list' ? [10001] : [10001, 20000]; // no task exists
        assert.ok(codes.includes(code), `${what}: code ${code} not in ${codes}: ${JSON.stringify(body.error)}`);
      }),
      220,
      answers,
    );
  });

  it('NATS: any payload on ocp.cmd.agent.* is rejected once on ocp.events.request.<id>, 10001 or 10002', async (t) => {
    const answers = new Map<string, number>();
    const events: Array<{ subject: string; event: Record<string, unknown> }> = [];
    const sub: Subscription = stack.nc.subscribe('ocp.events.request.>');
    void (async () => {
      for await (const m of sub) {
        let event: Record<string, unknown>;
        try {
          event = m.json<Record<string, unknown>>();
        } catch {
          event = { unparsable: m.string() };
        }
        events.push({ subject: m.subject, event });
      }
    })();

    let counter = 0;
    const uniq = () => `${process.pid.toString(36)}${(counter++).toString(36)}`;
    const commandObject = fc.record(
      {
        hostId: fc.oneof(idValue, fc.constantFrom(103, '103', 4242, 9007199254740991)),
        creator: fc.oneof(textField, fc.constantFrom('ops', ' ops ', 'U123')),
        reason: fc.oneof(textField, fc.constant('stuck monagent')),
        extra: rareExtra,
      },
      { requiredKeys: [] },
    );
    const arb = fc.record({
      subject: fc.oneof(
        { weight: 6, arbitrary: fc.constant('ocp.cmd.agent.restart') },
        { weight: 1, arbitrary: fc.constantFrom('ocp.cmd.agent.stop', 'ocp.cmd.agent.start') },
        {
          weight: 1,
          arbitrary: fc.constantFrom('ocp.cmd.agent.reboot', 'ocp.cmd.agent.RESTART', 'ocp.cmd.agent.restart.now'),
        },
      ),
      payload: fc.oneof(
        looseBytes,
        commandObject.map((object) => ({ object })),
        commandObject.map((object) => ({ object })),
      ),
      requestId: fc.constantFrom('none', 'valid', 'invalid', 'number'),
      requestIdBase: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{0,30}$/), fc.string({ maxLength: 20 })),
      msgId: fc.constantFrom('none', 'valid', 'invalid'),
      trace: traceArb,
    });
    let published = 0;
    await checkProperty(
      t,
      fc.asyncProperty(arb, async (c) => {
        let bytes: Uint8Array;
        if ('object' in c.payload) {
          const o: Record<string, unknown> = { ...c.payload.object };
          if (c.requestId === 'valid') o.requestId = `fz${c.requestIdBase.replace(/[^A-Za-z0-9_-]/g, '')}-${uniq()}`;
          if (c.requestId === 'invalid') o.requestId = `${c.requestIdBase}.${uniq()}`; // a dot is never valid
          if (c.requestId === 'number') o.requestId = counter++;
          bytes = Buffer.from(JSON.stringify(o));
        } else {
          bytes = c.payload.bytes;
        }
        const op = c.subject.slice('ocp.cmd.agent.'.length);
        const knownOp = ['restart', 'stop', 'start'].includes(op);
        const parsed = parseJson(bytes);
        const body = parsed.ok && Buffer.from(bytes).toString('utf8').trim() !== '' ? parsed.value : undefined;
        fc.pre(!(knownOp && isObject(body) && mayName(inventory, body.hostId))); // could start a real task

        const msgId = c.msgId === 'valid' ? `m-${uniq()}` : c.msgId === 'invalid' ? `bad id.${uniq()}` : undefined;
        const given = isObject(body) ? body.requestId : undefined;
        const usable = [given, msgId].find((v): v is string => typeof v === 'string' && REQUEST_ID.test(v));
        const h = natsHeaders();
        if (c.trace !== undefined) h.set('X-Trace-Id', c.trace);
        const start = events.length;
        const ack = await stack.js.publish(c.subject, bytes, { headers: h, ...(msgId ? { msgID: msgId } : {}) });
        assert.equal(ack.duplicate, false, 'each fuzz message is new');
        published++;
        // SPEC §5: the request's id, else one made from Nats-Msg-Id; with no usable id, "invalid"
        // (a well-formed command without one may be given an id of its own: msg-<stream seq>).
        const subjects = usable
          ? [`ocp.events.request.${usable}`]
          : ['ocp.events.request.invalid', `ocp.events.request.msg-${ack.seq}`];
        const what = `${c.subject} ${JSON.stringify(Buffer.from(bytes).toString('utf8')).slice(0, 300)} msgId=${msgId}`;
        const deadline = Date.now() + 3000;
        while (events.length === start && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        const got = events[start];
        assert.ok(got, `${what}: no request event within 3 s`);
        assert.ok(subjects.includes(got.subject), `${what}: event on ${got.subject}, expected one of ${subjects}`);
        const ev = got.event as { type?: unknown; requestId?: unknown; error?: { code?: unknown; message?: unknown } };
        tallyOf(answers, `${got.subject.endsWith('.invalid') ? 'invalid' : 'id'}/${ev.error?.code ?? ev.type}`);
        assert.equal(ev.type, 'rejected', `${what}: ${JSON.stringify(ev).slice(0, 300)}`);
        assert.equal(`ocp.events.request.${ev.requestId}`, got.subject, `${what}: requestId names the subject`);
        assert.equal(typeof ev.error?.message, 'string', `${what}: error.message`);
        // An unknown operation is 404 / 10002 whatever the payload (SPEC §8); a bad payload 10001.
        const codes = !knownOp ? [10002] : isObject(body) ? [10001, 10002] : [10001];
        assert.ok(codes.includes(ev.error?.code as number), `${what}: code ${ev.error?.code} not in ${codes}`);
      }),
      160,
      answers,
    );

    // One event per request, nothing redelivered: no late duplicates, the consumer is drained.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(events.length, published, 'exactly one request event per published message');
    sub.unsubscribe();
    const jsm = await stack.nc.jetstreamManager();
    const intake = await jsm.consumers.info('OCP_CMD', 'intake');
    assert.equal(intake.num_pending, 0, 'intake consumer: nothing left to deliver');
    assert.equal(intake.num_ack_pending, 0, 'intake consumer: nothing awaiting an ack');
    assert.equal(intake.num_redelivered, 0, 'intake consumer: no message redelivered');
  });

  it('nothing was created: no task, task event, host lock or work item', async () => {
    const after_ = await snapshot();
    assert.deepEqual(after_, before_);
  });

  it('the service keeps serving: /healthz, a valid HTTP read, a valid NATS request is accepted and runs', async () => {
    const health = await rawHttp(port, 'GET', '/healthz', {});
    assert.equal(health.status, 200);
    const list = await rawHttp(port, 'GET', `${TASKS}?page=1&size=5`, { authorization: basicAuth('viewer') });
    assertHttpAnswer(list, [OK], undefined, 'GET list as viewer');

    const requestId = `fuzz-after-${process.pid}`;
    const ev = accepted(
      await publishRequest(stack.nc, stack.js, 'restart', { hostId: 101, creator: 'fuzz', requestId }),
    );
    assert.ok(await readTask(stack.nc, ev.taskId), 'the task is stored');
    const task = await waitForTask(stack.nc, ev.taskId);
    assert.equal(task.status, 'SUCCESSFUL');

    const reply = await stack.nc.request('ocp.api.task.get', Buffer.from(JSON.stringify({ taskId: ev.taskId })), {
      timeout: 5000,
    });
    const body = parseEnvelope(Buffer.from(reply.data).toString('utf8'), 'ocp.api.task.get');
    checkEnvelope(body, 200, undefined, 'ocp.api.task.get');
  });
});
