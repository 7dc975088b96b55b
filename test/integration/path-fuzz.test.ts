/**
 * Property-based fuzzing of whole HTTP request-targets against the real stack (nats-server,
 * sshd hosts, Slack on against a local fake): route templates with segments replaced, inserted,
 * percent-encoded, dot segments (`..`, `%2e%2e`), encoded slashes and backslashes, double and
 * trailing slashes, unicode, case changes, `/slack/events` look-alikes, and request-targets that
 * are not paths at all (`*`, absolute-form, `[`, `:x`), with any method, credentials and odd
 * headers. SPEC §3: every answer is below 500 and comes at once; an API answer is an error
 * envelope with a code from the table (or the read asked for); nothing is stored.
 *
 * What a path means is computed from the URL standard, not from the code: where two readings
 * are fair (absolute-form, `%65` for `e`), the answer may follow either.
 * Reproduce a failure with FUZZ_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import { type FakeSlack, startFakeSlack } from '../helpers/fake-slack.js';
import { type RawAnswer, rawHttp } from '../helpers/raw-http.js';
import { SIGNING_SECRET } from '../helpers/slack-user.js';
import { CODE_STATUS, HEX16, SIGN_IN_REFUSED } from '../helpers/spec-facts.js';
import { basicAuth, type Stack, startStack, TEST_USERS } from '../helpers/stack.js';
import { type StoreSnapshot, storeSnapshot } from '../helpers/store-snapshot.js';

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** Runs of the property (× FUZZ_SCALE); each request times out on its own after 30 s (rawHttp). */
const RUNS = 300;

type User = keyof typeof TEST_USERS;
type Permission = 'HOST_MANAGER' | 'HOST_VIEWER' | 'TASK_MANAGER' | 'TASK_VIEWER';
const allows = (user: User, p: Permission) =>
  (TEST_USERS[user].roles as readonly string[]).some((r) => r === 'ADMIN' || r === p);

interface RouteSpec {
  method: 'GET' | 'POST';
  path: string;
  permission: Permission;
  /** creates a task when its host exists and the caller may */
  creates: boolean;
}
const COMPUTE: RouteSpec[] = [
  { method: 'POST', path: '/compute/hosts/batchRestartAgents', permission: 'HOST_MANAGER', creates: true },
  { method: 'POST', path: '/compute/hosts/:hostId/agent/restart', permission: 'HOST_MANAGER', creates: true },
  { method: 'POST', path: '/compute/hosts/:hostId/agent/stop', permission: 'HOST_MANAGER', creates: true },
  { method: 'POST', path: '/compute/hosts/:hostId/agent/start', permission: 'HOST_MANAGER', creates: true },
  { method: 'GET', path: '/compute/hosts/:hostId/agent', permission: 'HOST_VIEWER', creates: false },
];
const TASKS = '/api/v2/tasks/instances';
const ROUTES: RouteSpec[] = [
  ...COMPUTE,
  ...COMPUTE.map((r) => ({ ...r, path: `/api/v2${r.path}` })),
  { method: 'GET', path: TASKS, permission: 'TASK_VIEWER', creates: false },
  { method: 'GET', path: `${TASKS}/:taskId`, permission: 'TASK_VIEWER', creates: false },
  { method: 'POST', path: `${TASKS}/:taskId/retry`, permission: 'TASK_MANAGER', creates: false },
  { method: 'POST', path: `${TASKS}/:taskId/rollback`, permission: 'TASK_MANAGER', creates: false },
  { method: 'POST', path: `${TASKS}/:taskId/subtasks/:subtaskId/retry`, permission: 'TASK_MANAGER', creates: false },
  { method: 'POST', path: `${TASKS}/:taskId/subtasks/:subtaskId/skip`, permission: 'TASK_MANAGER', creates: false },
  { method: 'POST', path: `${TASKS}/:taskId/subtasks/:subtaskId/cancel`, permission: 'TASK_MANAGER', creates: false },
  { method: 'GET', path: `${TASKS}/:taskId/subtasks/:subtaskId/log`, permission: 'TASK_VIEWER', creates: false },
];
const PLAIN = ['/healthz', '/readyz', '/metrics'];
const TEMPLATES = [...ROUTES.map((r) => r.path), ...PLAIN, '/slack/events', '/', '/api/v2'];

const WORDS = [
  'compute',
  'hosts',
  'agent',
  'restart',
  'stop',
  'start',
  'batchRestartAgents',
  'api',
  'v2',
  'tasks',
  'instances',
  'subtasks',
  'log',
  'retry',
  'skip',
  'rollback',
  'cancel',
  'slack',
  'events',
  'healthz',
  'readyz',
  'metrics',
];
/** Segments an attacker tries: dot segments (plain and encoded), encoded slashes, NUL, bad escapes, unicode. */
const ODD = [
  '',
  '.',
  '..',
  '...',
  '%2e',
  '%2E',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  '%2e.',
  '%2F',
  '%2f',
  '..%2f',
  '..%2F..',
  '%5c',
  '%5C..%5C',
  '\\',
  '..\\',
  '..\\..',
  '%00',
  '101%00',
  '%',
  '%zz',
  '%C3%28',
  '%FF',
  '%C0%AE%C0%AE',
  ';',
  ';x=1',
  '101;x',
  '*',
  '~',
  '@',
  ':',
  '%3F',
  '%23',
  '%20',
  '+',
  '%E2%80%AE',
  '%EF%BC%8E%EF%BC%8E',
  '%D8%A1',
  'é',
];
const IDS = ['101', '102', '1', '999999', '0', '-1', '9223372036854775808', '1e3', ' ', '%31%30%31', '١٠١'];
/** Request-targets that are not origin-form paths. */
const ODD_TARGETS = [
  '*',
  '[',
  ']',
  ':abc/compute',
  ':80/healthz',
  '@evil.example/compute/hosts/101/agent',
  'http://127.0.0.1/compute/hosts/101/agent',
  'http://evil.example/api/v2/tasks/instances',
  'http://user:pw@127.0.0.1/api/v2/tasks/instances',
  'https://[::1]/healthz',
  '//evil.example/api/v2/tasks/instances',
  '/slack/events/../api/v2/tasks/instances',
  '/slack/events/..%2fapi/v2/tasks/instances',
  '/slack/events%2f..%2fapi',
  '/slack/eventsX',
  '/slack/events/',
  '/slack/events//',
  '/SLACK/EVENTS',
  '/slack/%65vents',
  '?page=1',
  '#frag',
  '/%',
  '/\\\\evil.example/x',
];

/** Percent-encode one character of a word (RFC 3986: an unreserved one means the same). */
function encodeOne(word: string, at: number): string {
  if (word.length === 0) return word;
  const i = at % word.length;
  const hex = (word.codePointAt(i) as number).toString(16).toUpperCase().padStart(2, '0');
  return `${word.slice(0, i)}%${hex}${word.slice(i + 1)}`;
}

/** Visible ASCII goes as typed; anything else is percent-encoded (or sent raw as latin-1 when it can be). */
function wire(segment: string, rawLatin1: boolean): string {
  if (/^[\x21-\x7e]*$/.test(segment)) return segment.replace(/[?#]/g, (c) => encodeURIComponent(c));
  if (rawLatin1 && /^[\x21-\xff]*$/.test(segment)) return segment;
  try {
    return encodeURIComponent(segment);
  } catch {
    return [...Buffer.from(segment, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  }
}

type Edit =
  | { kind: 'replace'; at: number; segment: string }
  | { kind: 'insert'; at: number; segment: string }
  | { kind: 'encode'; at: number; char: number }
  | { kind: 'case'; at: number }
  | { kind: 'double'; at: number }
  /** `x/..`, `.`, `%2e`: read by the URL standard, these lead back to the same route */
  | { kind: 'detour'; at: number; segment: string }
  | { kind: 'trailing' };

const segmentArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ODD) },
  { weight: 2, arbitrary: fc.constantFrom(...WORDS) },
  { weight: 1, arbitrary: fc.constantFrom(...IDS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
);
const detourArb = fc.record({
  kind: fc.constant('detour' as const),
  at: fc.nat(),
  segment: fc.constantFrom('x/..', 'compute/..', 'restart/%2e%2e', '101/%2E%2e', '.', '%2e', './.', 'a/b/../..'),
});
const editArb: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 4, arbitrary: detourArb },
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), segment: segmentArb }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), segment: segmentArb }),
  fc.record({ kind: fc.constant('encode' as const), at: fc.nat(), char: fc.nat() }),
  fc.record({ kind: fc.constant('case' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('double' as const), at: fc.nat() }),
  fc.constant({ kind: 'trailing' as const }),
);

/** A request-target: a mutated route template, random segments, or an odd target. */
const targetArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        template: fc.constantFrom(...TEMPLATES),
        ids: fc.tuple(fc.constantFrom(...IDS), fc.constantFrom(...IDS)),
        edits: fc.array(editArb, { minLength: 1, maxLength: 3 }),
        raw: fc.boolean(),
        query: fc.option(fc.constantFrom('?page=1', '?x=../..', '?%zz', '?a=%00', '#x'), { nil: undefined }),
      })
      .map(({ template, ids, edits, raw, query }) => {
        let n = 0;
        const segs = template
          .split('/')
          .slice(1)
          .map((s) => (s.startsWith(':') ? (ids[n++ % 2] as string) : s));
        const wired = segs.map((s) => wire(s, raw));
        let trailing = '';
        for (const e of edits) {
          const grows = e.kind === 'insert' || e.kind === 'detour';
          const at = wired.length === 0 ? 0 : ('at' in e ? e.at : 0) % (wired.length + (grows ? 1 : 0));
          if (e.kind === 'replace' && wired.length > 0) wired[at] = wire(e.segment, raw);
          else if (e.kind === 'insert') wired.splice(at, 0, wire(e.segment, raw));
          else if (e.kind === 'detour') wired.splice(at, 0, e.segment);
          else if (e.kind === 'encode' && wired.length > 0) wired[at] = encodeOne(wired[at] as string, e.char);
          else if (e.kind === 'case' && wired.length > 0) {
            const s = wired[at] as string;
            wired[at] = s === s.toUpperCase() ? s.toLowerCase() : s.toUpperCase();
          } else if (e.kind === 'double') wired.splice(at, 0, '');
          else if (e.kind === 'trailing') trailing = '/';
        }
        return `/${wired.join('/')}${trailing}${query ?? ''}`;
      }),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.array(segmentArb, { minLength: 1, maxLength: 8 }), fc.boolean())
      .map(([segs, raw]) => `/${segs.map((s) => wire(s, raw)).join('/')}`),
  },
  { weight: 1, arbitrary: fc.constantFrom(...ODD_TARGETS) },
);

type AuthCase = { header: string | undefined; user: User | undefined };
const authArb: fc.Arbitrary<AuthCase> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom<User>('viewer', 'operator', 'admin').map((u) => ({ header: basicAuth(u), user: u })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(undefined, 'Basic', 'Basic Og==', `Basic ${Buffer.from('viewer:nope').toString('base64')}`)
      .map((header) => ({ header, user: undefined })),
  },
);

const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,60}$/);
const extraHeadersArb = fc.dictionary(
  fc.constantFrom(
    'x-forwarded-for',
    'x-forwarded-host',
    'x-forwarded-proto',
    'x-original-url',
    'x-rewrite-url',
    'x-http-method-override',
    'x-trace-id',
    'content-type',
    'accept',
    'x-slack-signature',
    'x-slack-request-timestamp',
    'cookie',
    'forwarded',
  ),
  headerValue,
  { maxKeys: 3 },
);

const methodArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('GET', 'POST') },
  { weight: 1, arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') },
);

type Outcome = { status: number; code?: number; kind: 'envelope' | 'plain' | 'slack' };
const err = (code: number): Outcome => ({ status: CODE_STATUS[code] as number, code, kind: 'envelope' });

/** RFC 3986 §6.2.2.2: percent-encoded unreserved characters mean the characters themselves. */
function decodeUnreserved(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (whole, hex: string) => {
    const c = String.fromCharCode(Number.parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : whole;
  });
}

function routeOf(method: string, pathname: string): { route: RouteSpec; params: string[] } | undefined {
  const segs = pathname.split('/');
  for (const route of ROUTES) {
    if (route.method !== method) continue;
    const pattern = route.path.split('/');
    if (pattern.length !== segs.length) continue;
    const params: string[] = [];
    const hit = pattern.every((p, i) => {
      const seg = segs[i] as string;
      if (!p.startsWith(':')) return p === seg;
      try {
        params.push(decodeURIComponent(seg));
      } catch {
        params.push(seg);
      }
      return true;
    });
    if (hit) return { route, params };
  }
  return undefined;
}

/**
 * The paths a request-target may fairly be read as (the URL standard; absolute-form; RFC 3986
 * normalisation), and whether it may be refused as malformed (400) instead.
 */
function readings(target: string): { paths: string[]; unparsable: boolean } {
  const paths = new Set<string>();
  // RFC 9112: a request-target is visible ASCII, and a path starts with '/' (absolute-form and `*`
  // aside); anything else is a malformed request
  let unparsable = /[^\x21-\x7e]/.test(target) || !target.startsWith('/');
  for (const make of [() => new URL(`http://localhost${target}`), () => new URL(target, 'http://localhost')]) {
    try {
      const p = make().pathname;
      paths.add(p);
      paths.add(new URL(decodeUnreserved(p), 'http://localhost').pathname);
    } catch {
      unparsable = true;
    }
  }
  return { paths: [...paths], unparsable };
}

/** What the SPEC allows for one reading of the path; undefined: it could start a real task (not ours to send). */
function outcomesFor(
  method: string,
  path: string,
  user: User | undefined,
  inventory: string[],
  body: string | undefined,
): Outcome[] | undefined {
  if (method === 'GET' && PLAIN.includes(path)) return [{ status: 200, kind: 'plain' }];
  // Bolt checks the signature first: an unsigned request is refused
  if (method === 'POST' && path === '/slack/events') return [{ status: 401, kind: 'slack' }];
  // credentials missing or wrong: 401, or 429 once too many have failed (SPEC §3)
  if (!user) return SIGN_IN_REFUSED.map((o) => ({ ...o, kind: 'envelope' as const }));
  const match = routeOf(method, path);
  if (!match) return [err(10002)];
  const { route, params } = match;
  const names = [...params, ...(body ?? '').split(/[^0-9]+/)]; // a batch names its hosts in the body
  if (route.creates && allows(user, route.permission) && names.some((p) => inventory.includes(p))) return undefined;
  // the route's own answers (SPEC §3), exactly checked by api-fuzz: here any of its errors, or the read
  const outcomes = Object.keys(CODE_STATUS).map((c) => err(Number(c)));
  if (method === 'GET') outcomes.push({ status: 200, kind: 'envelope' });
  return outcomes;
}

function checkAnswer(a: RawAnswer, method: string, allowed: Outcome[], what: string): string {
  assert.ok(a.status < 500, `${what}: answered HTTP ${a.status}: ${a.text.slice(0, 300)}`);
  const fits = allowed.filter((o) => o.status === a.status);
  assert.ok(
    fits.length > 0,
    `${what}: answered ${a.status} ${a.text.slice(0, 200)}; allowed ${JSON.stringify(allowed)}`,
  );
  if (method === 'HEAD' || fits.every((o) => o.kind !== 'envelope')) return `${a.status}`;
  let body: { status?: unknown; successful?: unknown; traceId?: unknown; error?: { code?: unknown } };
  try {
    body = JSON.parse(a.text);
  } catch {
    assert.fail(`${what}: ${a.status} answer is not JSON: ${a.text.slice(0, 200)}`);
  }
  assert.equal(body.status, a.status, `${what}: envelope status`);
  assert.match(String(body.traceId), HEX16, `${what}: traceId`);
  assert.equal(a.headers['x-trace-id'], body.traceId, `${what}: X-Trace-Id header`);
  if (a.status === 200) {
    assert.equal(body.successful, true, `${what}: successful`);
    return '200';
  }
  assert.equal(body.successful, false, `${what}: successful`);
  const code = body.error?.code;
  assert.ok(
    fits.some((o) => o.code === undefined || o.code === code),
    `${what}: ${a.status} with code ${code}; allowed ${JSON.stringify(fits)}`,
  );
  return `${a.status}/${code}`;
}

describe('HTTP path fuzzing: any request-target, method and headers answer below 500 and store nothing', () => {
  let fake: FakeSlack;
  let stack: Stack;
  let port: number;
  let inventory: string[];
  let before_: StoreSnapshot;

  before(async () => {
    process.env.TEST_LOG_LEVEL ??= 'error';
    fake = await startFakeSlack();
    fake.addChannel('C0OPS');
    stack = await startStack({
      hosts: 2,
      slack: { apiUrl: fake.apiUrl, botToken: fake.token, signingSecret: SIGNING_SECRET },
    });
    const svc = await stack.startService();
    port = svc.httpPort as number;
    inventory = stack.config.hosts.map((h) => String(h.id));
    before_ = await storeSnapshot(stack.nc);
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
  });

  it('answers every request-target below 500, with an error envelope from the table where the API answers', async (t: TestContext) => {
    const tally = new Map<string, number>();
    const arb = fc.record({
      target: targetArb,
      // the method of the route the path leads to, or any
      method: fc.oneof(methodArb, fc.constant('ROUTE')),
      auth: authArb,
      extra: extraHeadersArb,
      body: fc.option(fc.constantFrom('{}', '{"hostIds":[101]}', 'payload=%7B%7D', '{'), { nil: undefined }),
    });
    const details = await fc.check(
      fc.asyncProperty(arb, async (c) => {
        const { paths, unparsable } = readings(c.target);
        const method =
          c.method !== 'ROUTE' ? c.method : paths.some((p) => routeOf('POST', p) !== undefined) ? 'POST' : 'GET';
        const body = c.body === undefined || method === 'GET' || method === 'HEAD' ? undefined : c.body;
        const allowed: Outcome[] = unparsable ? [err(10001)] : [];
        for (const p of paths) {
          const o = outcomesFor(method, p, c.auth.user, inventory, body);
          fc.pre(o !== undefined); // one reading would restart a real host
          allowed.push(...o);
        }
        const headers: Record<string, string> = { ...c.extra };
        if (c.auth.header !== undefined) headers.authorization = c.auth.header;
        const what = `${method} ${JSON.stringify(c.target)} as ${c.auth.user ?? JSON.stringify(c.auth.header)} (readings ${JSON.stringify(paths)})`;
        const a = await rawHttp(port, method, c.target, headers, body === undefined ? undefined : Buffer.from(body));
        const key = checkAnswer(a, method, allowed, what);
        tally.set(key, (tally.get(key) ?? 0) + 1);
      }),
      {
        numRuns: Math.max(1, Math.round(RUNS * SCALE)),
        ...(SEED === undefined ? {} : { seed: SEED }),
      },
    );
    t.diagnostic(
      `${details.numRuns} runs, ${details.numSkips} skipped (would restart a real host), seed ${details.seed}; ` +
        `answers: ${[...tally].map(([k, v]) => `${k}×${v}`).join(' ')}`,
    );
    if (details.failed) assert.fail((await fc.asyncDefaultReportMessage(details)) ?? 'property failed');
  });

  it('stored nothing: streams, buckets and tasks are exactly as before', async () => {
    assert.deepEqual(await storeSnapshot(stack.nc), before_);
  });

  it('keeps serving: /healthz, and a read of the task list', async () => {
    assert.equal((await rawHttp(port, 'GET', '/healthz', {})).status, 200);
    const list = await rawHttp(port, 'GET', `${TASKS}?page=1`, { authorization: basicAuth('viewer') });
    assert.equal(list.status, 200, list.text);
  });
});
