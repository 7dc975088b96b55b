/**
 * A local stand-in for Slack's Web API, for tests: a node:http server on
 * 127.0.0.1 (random port) that answers the few methods ocp-chatops uses the way
 * Slack does, records every call, and keeps channel state (messages, threads,
 * edits) so a test can look at a channel as a user would see it.
 *
 * Point a WebClient at it with `slackApiUrl: fake.apiUrl` (Bolt:
 * `clientOptions: { slackApiUrl }`). Like Slack it accepts
 * application/x-www-form-urlencoded bodies (what @slack/web-api sends: object
 * and array arguments such as `blocks` arrive as JSON strings, numbers and
 * booleans as strings) and application/json bodies; the token may come in
 * `Authorization: Bearer` or, for form bodies, as a `token` field.
 *
 * Errors are HTTP 200 with `{ ok: false, error }`, as Slack answers them; only
 * rate limits are HTTP 429 with a `Retry-After` header (seconds).
 *
 * It also serves response_urls (`responseUrl()`): POST JSON there and it is
 * recorded in `responses`. Like Slack, a response_url takes at most 5 posts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  at: number;
  status: number;
  body: unknown;
}

export interface FakeMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks?: unknown[];
  thread_ts?: string;
  reply_broadcast?: boolean;
  user: string;
  updates: number;
}

export interface FakeSlack {
  /** The Web API base, including `/api/`: http://127.0.0.1:<port>/api/ */
  apiUrl: string;
  /** The bot token the fake accepts; any other (or none) gets invalid_auth. Change it to revoke the app's token. */
  token: string;
  /** Every Web API call in arrival order, rate-limited and failed ones too. */
  calls: SlackCall[];
  callsTo(method: string): SlackCall[];
  /** Top-level messages of a channel in posting order, with their current text/blocks; broadcast thread replies included (Slack shows them in the channel too). */
  channel(id: string): FakeMessage[];
  /** Replies whose thread_ts is `ts`, in posting order. */
  thread(channel: string, ts: string): FakeMessage[];
  ephemerals: Array<{ channel: string; user: string; text?: string; blocks?: unknown[] }>;
  /** A fresh response_url served by this fake. */
  responseUrl(): string;
  /** What was delivered to response_urls (rejected posts are not listed). */
  responses: Array<{ url: string; body: Record<string, unknown> }>;
  addChannel(id: string, opts?: { member?: boolean }): void;
  /** A user group and its members; `handle` (default the id in lower case) and `name` as `usergroups.list` shows them. */
  setUsergroup(id: string, users: string[], opts?: { handle?: string; name?: string }): void;
  /** The token's scopes, sent as Slack does in `x-oauth-scopes` on each answer to the bot token; none: no header. */
  scopes?: string[];
  /** Artificial latency of usergroups.users.list, in ms (default 0). */
  usergroupDelayMs: number;
  /** The next `calls` calls of `method` (or of any method, '*') answer HTTP 429, Retry-After: <retryAfter>. */
  rateLimit(method: string, opts: { calls: number; retryAfter: number }): void;
  /**
   * Answer `method`, one this fake does not know itself, with `answer`, which checks the
   * token itself (apps.connections.open takes the app-level token, not the bot's). Its
   * calls are recorded and rate-limited like any other.
   */
  serve(method: string, answer: (call: { token: string | undefined; args: Record<string, unknown> }) => Answer): void;
  stop(): Promise<void>;
}

const TEAM = { team: 'T-fake', team_id: 'T0FAKE', url: 'https://t-fake.slack.com/' };
const BOT = { user: 'ocpbot', user_id: 'U0BOT', bot_id: 'B0BOT', app_id: 'A0FAKE' };
const KNOWN_METHODS = new Set([
  'auth.test',
  'chat.postMessage',
  'chat.update',
  'chat.postEphemeral',
  'usergroups.users.list',
  'usergroups.list',
]);
/** Arguments Slack takes as JSON inside a form field. */
const JSON_FIELDS = new Set(['blocks', 'attachments', 'metadata']);
const BOOLEAN_FIELDS = new Set(['reply_broadcast', 'unfurl_links', 'unfurl_media', 'mrkdwn', 'as_user', 'link_names']);
const MAX_BLOCKS = 50;
const RESPONSE_URL_MAX_USES = 5;
/** Seconds of the first ts; each message gets the next 100 µs, so ts sort as strings and as numbers. */
const TS_BASE_SECONDS = 1_700_000_000;

/** An HTTP answer of the fake: Slack's errors are 200 with `ok: false`. */
export type Answer = { status: number; body: Record<string, unknown>; headers?: Record<string, string> };

class BadRequest extends Error {}

function ok(body: Record<string, unknown> = {}): Answer {
  return { status: 200, body: { ok: true, ...body } };
}

function fail(error: string, extra: Record<string, unknown> = {}): Answer {
  return { status: 200, body: { ok: false, error, ...extra } };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function normalizeArg(key: string, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (JSON_FIELDS.has(key)) {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value; // left as a string: the method's validation rejects it
    }
  }
  if (BOOLEAN_FIELDS.has(key)) {
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0' || value === '') return false;
  }
  return value;
}

/** Method arguments from the query string and the body, form or JSON. */
function parseArgs(req: IncomingMessage, url: URL, raw: string): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const [k, v] of url.searchParams) args[k] = v;
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (raw.length > 0) {
    if (type === 'application/json') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new BadRequest('invalid_json');
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BadRequest('invalid_json');
      Object.assign(args, parsed);
    } else if (type === 'application/x-www-form-urlencoded' || type === '') {
      for (const [k, v] of new URLSearchParams(raw)) args[k] = v;
    } else {
      throw new BadRequest('invalid_form_data');
    }
  }
  for (const [k, v] of Object.entries(args)) args[k] = normalizeArg(k, v);
  return args;
}

function bearer(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

/** Slack's answer to bad blocks, or undefined when they pass. */
function checkBlocks(blocks: unknown): string | undefined {
  if (blocks === undefined || blocks === null || blocks === '') return undefined;
  if (!Array.isArray(blocks)) return 'invalid_blocks';
  if (blocks.length > MAX_BLOCKS) return 'invalid_blocks';
  for (const b of blocks) {
    if (b === null || typeof b !== 'object' || typeof (b as { type?: unknown }).type !== 'string')
      return 'invalid_blocks';
  }
  return undefined;
}

function hasContent(args: Record<string, unknown>): boolean {
  const text = args.text;
  const blocks = args.blocks;
  const attachments = args.attachments;
  return (
    (typeof text === 'string' && text.length > 0) ||
    (Array.isArray(blocks) && blocks.length > 0) ||
    (Array.isArray(attachments) && attachments.length > 0)
  );
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function snapshot(m: FakeMessage): FakeMessage {
  return structuredClone(m);
}

function wireMessage(m: FakeMessage): Record<string, unknown> {
  return {
    type: 'message',
    ...(m.reply_broadcast ? { subtype: 'thread_broadcast' } : {}),
    user: m.user,
    bot_id: BOT.bot_id,
    app_id: BOT.app_id,
    team: TEAM.team_id,
    ts: m.ts,
    ...(m.text !== undefined ? { text: m.text } : { text: '' }),
    ...(m.blocks !== undefined ? { blocks: m.blocks } : {}),
    ...(m.thread_ts !== undefined ? { thread_ts: m.thread_ts } : {}),
    ...(m.updates > 0 ? { edited: { user: m.user, ts: m.ts } } : {}),
  };
}

export async function startFakeSlack(opts: { token?: string } = {}): Promise<FakeSlack> {
  const token = opts.token ?? 'xoxb-fake-ocp-chatops';
  const calls: SlackCall[] = [];
  const channels = new Map<string, { member: boolean; messages: FakeMessage[] }>();
  const usergroups = new Map<string, string[]>();
  const usergroupNames = new Map<string, { handle: string; name: string }>();
  const limits = new Map<string, { calls: number; retryAfter: number }>();
  const served = new Map<string, Parameters<FakeSlack['serve']>[1]>();
  const ephemerals: FakeSlack['ephemerals'] = [];
  const responses: FakeSlack['responses'] = [];
  const responseUrlUses = new Map<string, number>();
  let tsSeq = 0;
  let responseSeq = 0;
  let base = '';

  const nextTs = (): string => {
    tsSeq += 1;
    const micros = tsSeq * 100;
    const seconds = TS_BASE_SECONDS + Math.floor(micros / 1_000_000);
    return `${seconds}.${String(micros % 1_000_000).padStart(6, '0')}`;
  };

  const takeRateLimit = (method: string): number | undefined => {
    for (const key of [method, '*']) {
      const l = limits.get(key);
      if (l && l.calls > 0) {
        l.calls -= 1;
        if (l.calls === 0) limits.delete(key);
        return l.retryAfter;
      }
    }
    return undefined;
  };

  const fake: FakeSlack = {
    apiUrl: '',
    token,
    calls,
    callsTo: (method) => calls.filter((c) => c.method === method),
    channel: (id) =>
      (channels.get(id)?.messages ?? []).filter((m) => m.thread_ts === undefined || m.reply_broadcast).map(snapshot),
    thread: (channel, ts) => (channels.get(channel)?.messages ?? []).filter((m) => m.thread_ts === ts).map(snapshot),
    ephemerals,
    responseUrl() {
      responseSeq += 1;
      const url = `${base}/response/${responseSeq}-${Math.random().toString(36).slice(2, 10)}`;
      responseUrlUses.set(new URL(url).pathname, 0);
      return url;
    },
    responses,
    addChannel(id, o = {}) {
      const existing = channels.get(id);
      const member = o.member ?? true;
      if (existing) existing.member = member;
      else channels.set(id, { member, messages: [] });
    },
    setUsergroup(id, users, o = {}) {
      usergroups.set(id, [...users]);
      const handle = o.handle ?? id.toLowerCase();
      usergroupNames.set(id, { handle, name: o.name ?? handle });
    },
    usergroupDelayMs: 0,
    rateLimit(method, o) {
      if (o.calls > 0) limits.set(method, { calls: o.calls, retryAfter: o.retryAfter });
      else limits.delete(method);
    },
    serve(method, answer) {
      served.set(method, answer);
    },
    stop: async () => {
      await new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };

  async function runMethod(method: string, args: Record<string, unknown>): Promise<Answer> {
    switch (method) {
      case 'auth.test':
        return ok({ ...TEAM, user: BOT.user, user_id: BOT.user_id, bot_id: BOT.bot_id, is_enterprise_install: false });

      case 'chat.postMessage': {
        const id = str(args.channel);
        const ch = id === undefined ? undefined : channels.get(id);
        if (id === undefined || ch === undefined) return fail('channel_not_found');
        if (!ch.member) return fail('not_in_channel');
        const bad = checkBlocks(args.blocks);
        if (bad) return fail(bad);
        if (!hasContent(args)) return fail('no_text');
        const threadTs = str(args.thread_ts);
        const msg: FakeMessage = {
          channel: id,
          ts: nextTs(),
          ...(typeof args.text === 'string' ? { text: args.text } : {}),
          ...(Array.isArray(args.blocks) ? { blocks: args.blocks } : {}),
          ...(threadTs !== undefined ? { thread_ts: threadTs } : {}),
          ...(threadTs !== undefined && args.reply_broadcast === true ? { reply_broadcast: true } : {}),
          user: BOT.user_id,
          updates: 0,
        };
        ch.messages.push(msg);
        return ok({ channel: id, ts: msg.ts, message: wireMessage(msg) });
      }

      case 'chat.update': {
        const id = str(args.channel);
        const ch = id === undefined ? undefined : channels.get(id);
        if (id === undefined || ch === undefined) return fail('channel_not_found');
        const ts = str(args.ts);
        const msg = ts === undefined ? undefined : ch.messages.find((m) => m.ts === ts);
        if (msg === undefined) return fail('message_not_found');
        const bad = checkBlocks(args.blocks);
        if (bad) return fail(bad);
        if (!hasContent(args)) return fail('no_text');
        // Like Slack: a field left out keeps its old value; `blocks: []` removes the blocks.
        if (typeof args.text === 'string') msg.text = args.text;
        if (Array.isArray(args.blocks)) {
          if (args.blocks.length > 0) msg.blocks = args.blocks;
          else delete msg.blocks;
        }
        msg.updates += 1;
        return ok({ channel: id, ts: msg.ts, text: msg.text ?? '', message: wireMessage(msg) });
      }

      case 'chat.postEphemeral': {
        const id = str(args.channel);
        if (id === undefined || !channels.has(id)) return fail('channel_not_found');
        const user = str(args.user);
        if (user === undefined) return fail('user_not_found');
        const bad = checkBlocks(args.blocks);
        if (bad) return fail(bad);
        if (!hasContent(args)) return fail('no_text');
        ephemerals.push({
          channel: id,
          user,
          ...(typeof args.text === 'string' ? { text: args.text } : {}),
          ...(Array.isArray(args.blocks) ? { blocks: args.blocks } : {}),
        });
        return ok({ message_ts: nextTs() });
      }

      case 'usergroups.users.list': {
        const id = str(args.usergroup);
        const users = id === undefined ? undefined : usergroups.get(id);
        if (fake.usergroupDelayMs > 0) await sleep(fake.usergroupDelayMs);
        if (users === undefined) return fail('no_such_subteam');
        return ok({ users: [...users] });
      }

      case 'usergroups.list': {
        // Like Slack: members only with include_users (a form field arrives as the string "true").
        const withUsers = args.include_users === true || args.include_users === 'true' || args.include_users === '1';
        return ok({
          usergroups: [...usergroups].map(([id, users]) => ({
            id,
            team_id: TEAM.team_id,
            is_usergroup: true,
            ...usergroupNames.get(id),
            user_count: users.length,
            ...(withUsers ? { users: [...users] } : {}),
          })),
        });
      }

      default:
        return fail('unknown_method', { req_method: method });
    }
  }

  async function handleApi(req: IncomingMessage, url: URL, call: SlackCall): Promise<Answer> {
    const raw = await readBody(req);
    let args: Record<string, unknown>;
    try {
      args = parseArgs(req, url, raw);
    } catch (e) {
      if (!(e instanceof BadRequest)) throw e;
      call.args = { _raw: raw };
      return fail(e.message);
    }
    call.args = args;
    const retryAfter = takeRateLimit(call.method);
    if (retryAfter !== undefined) {
      return { status: 429, body: { ok: false, error: 'ratelimited' }, headers: { 'retry-after': String(retryAfter) } };
    }
    const given = bearer(req) ?? (typeof args.token === 'string' ? args.token : undefined);
    const answer = served.get(call.method);
    if (answer) return answer({ token: given, args });
    if (!KNOWN_METHODS.has(call.method)) return fail('unknown_method', { req_method: call.method });
    if (given !== fake.token) return fail('invalid_auth');
    const answered = await runMethod(call.method, args);
    return fake.scopes
      ? { ...answered, headers: { ...answered.headers, 'x-oauth-scopes': fake.scopes.join(',') } }
      : answered;
  }

  async function handleResponseUrl(req: IncomingMessage, url: URL): Promise<Answer> {
    const raw = await readBody(req);
    const uses = responseUrlUses.get(url.pathname);
    if (uses === undefined) return { status: 404, body: { ok: false, error: 'no_such_response_url' } };
    if (uses >= RESPONSE_URL_MAX_USES) return { status: 404, body: { ok: false, error: 'used_url' } };
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return { status: 400, body: { ok: false, error: 'invalid_payload' } };
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return { status: 400, body: { ok: false, error: 'invalid_payload' } };
    }
    const record = body as Record<string, unknown>;
    const bad = checkBlocks(normalizeArg('blocks', record.blocks));
    if (bad) return { status: 400, body: { ok: false, error: bad } };
    responseUrlUses.set(url.pathname, uses + 1);
    responses.push({ url: `${base}${url.pathname}`, body: record });
    return { status: 200, body: { ok: true } };
  }

  function send(res: ServerResponse, a: Answer): void {
    const payload = JSON.stringify(a.body);
    res.writeHead(a.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(payload),
      ...a.headers,
    });
    res.end(payload);
  }

  const server = createServer((req, res) => {
    const at = Date.now();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const apiMatch = /^\/api\/([A-Za-z0-9_.]+)$/.exec(url.pathname);
    void (async () => {
      if (apiMatch && (req.method === 'POST' || req.method === 'GET')) {
        const method = apiMatch[1]!;
        // Recorded on arrival so `calls` keeps arrival order even when answers are delayed.
        const call: SlackCall = { method, args: {}, at, status: 0, body: undefined };
        calls.push(call);
        const a = await handleApi(req, url, call);
        call.status = a.status;
        call.body = a.body;
        send(res, a);
      } else if (url.pathname.startsWith('/response/') && req.method === 'POST') {
        send(res, await handleResponseUrl(req, url));
      } else {
        await readBody(req);
        send(res, { status: 404, body: { ok: false, error: 'not_found' } });
      }
    })().catch((err: unknown) => {
      if (!res.headersSent)
        send(res, { status: 500, body: { ok: false, error: 'fake_slack_error', detail: String(err) } });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}`;
  fake.apiUrl = `${base}/api/`;
  return fake;
}
