/**
 * The Slack front door (SPEC §4): the /ocp-agent slash command and the task
 * buttons, on Bolt. Over HTTP (/slack/events on the service's port, with
 * Bolt's signature and timestamp check) or Socket Mode when SLACK_APP_TOKEN is
 * set. Handlers are exported apart from their registration so tests can call
 * them with fake `ack` and `respond`.
 *
 * The request path acknowledges before anything slow: text and hosts are
 * checked from memory, then `ack()`, then the role lookup and the work.
 */

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  App,
  type BlockAction,
  type Logger as BoltLogger,
  type BufferedIncomingMessage,
  type ButtonAction,
  HTTPModuleFunctions,
  HTTPReceiver,
  LogLevel,
  type ReceiverProcessEventErrorHandlerArgs,
  type RespondFn,
  type SlackActionMiddlewareArgs,
  type SlackCommandMiddlewareArgs,
  SocketModeReceiver,
} from '@slack/bolt';
import { WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { FrontDoor } from '../api/ports.js';
import { findHost, type HostConfig } from '../config.js';
import type { SlackDoorCommand, SlackOrigin } from '../contracts/events.js';
import { type Selector, selectHosts, selectorText } from '../contracts/selector.js';
import { optionsStringMap, resolveBatchOptions } from '../core/rolling.js';
import { asCodedError } from '../errors.js';
import { findOperation } from '../operations/registry.js';
import { cancel, retry, rollback, skip } from '../tasks/act-on-task.js';
import { cancelBatch, pause, resume } from '../tasks/control-batch.js';
import { createTask, operationOrThrow } from '../tasks/create-task.js';
import type { OperationDeps } from '../tasks/deps.js';
import { agentStatus, getTask, listTasks } from '../tasks/read-tasks.js';
import { newTraceId } from '../trace-id.js';
import { hostContext } from './host-context.js';
import { helpText, parseCommandText, type Role, requiredRole, type SlackCommand } from './parse-command.js';
import type { PendingBatches, PublishDoorCommand } from './ports.js';
import { ACTIONS, renderAgentStatus, renderConfirm, renderTaskList, renderTaskStatus } from './render-blocks.js';
import { renderWhoami } from './render-whoami.js';
import type { SlackRoles } from './slack-roles.js';

export interface SlackAppDeps {
  ops: OperationDeps;
  /** Sends a single-host request on to the task intake. */
  publishDoorCommand: PublishDoorCommand;
  roles: SlackRoles;
  /** Batches waiting for their confirmation click. */
  pending: PendingBatches;
  logger: Logger;
}

/** The Web API client's own retries (transient errors); 429s are ours to honour. */
export const SLACK_RETRY = { retries: 2, factor: 1, minTimeout: 200, maxTimeout: 1000 };

/**
 * Socket Mode's apps.connections.open, asked until Slack answers: again after 0.5 s, then
 * twice as long each time, at most every 30 s. The Slack door is shut until then. Its
 * client would otherwise take Bolt's clientOptions and so SLACK_RETRY: three failures in a
 * row on a reconnect (Slack or a proxy down for a second) were thrown where nothing
 * catches them, and the process died of the unhandled rejection. The timers are unref'd:
 * a service stopped meanwhile is not kept alive by them.
 */
export const SOCKET_OPEN_RETRY = { forever: true, minTimeout: 500, factor: 2, maxTimeout: 30_000, unref: true };
/** How long stop waits (ms) for Slack to answer the WebSocket's close frame before going on. */
const SOCKET_CLOSE_WAIT_MS = 2000;

/** Slack's ids are safe; a request id keeps `[A-Za-z0-9_-]` and at most 64 characters. */
export function requestIdOf(triggerId: string): string {
  return `slack-${triggerId.replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 64);
}

const ephemeral = (text: string) => ({ response_type: 'ephemeral' as const, replace_original: false, text });

const ROLE_HINT: Record<Role, string> = {
  HOST_MANAGER: 'restart, stop or start the agent',
  HOST_VIEWER: 'see the agent of a host',
  TASK_MANAGER: 'retry, skip, roll back, cancel, pause or resume',
  TASK_VIEWER: 'see tasks',
};

function refusal(role: Role): string {
  return `:no_entry: You need the *${role}* role to ${ROLE_HINT[role]}. Ask an admin to add you to one of its Slack user groups (access.slack.${role}).`;
}

/** Hosts named in a command, each by id or name; the unknown ones are reported. */
function resolveHosts(ops: OperationDeps, names: readonly string[]): { hosts: HostConfig[]; unknown: string[] } {
  const hosts: HostConfig[] = [];
  const unknown: string[] = [];
  for (const n of names) {
    const h = findHost(ops.config, /^[0-9]+$/.test(n) ? Number(n) : n);
    if (h) hosts.push(h);
    else unknown.push(n);
  }
  return { hosts, unknown };
}

export function createCommandHandler(d: SlackAppDeps) {
  const { ops, logger } = d;
  const slash = ops.config.slack.command;

  async function run(
    cmd: SlackCommand,
    hosts: HostConfig[],
    c: SlackCommandMiddlewareArgs['command'],
    respond: RespondFn,
  ) {
    const roles = await d.roles.rolesOf(c.user_id);
    if (cmd.kind === 'help') return respond(ephemeral(helpText(roles, slash, ops.config.operations)));
    const need = requiredRole(cmd, ops.config.operations);
    if (need && !roles.has(need)) return respond(ephemeral(refusal(need)));
    const now = new Date();
    switch (cmd.kind) {
      case 'run': {
        const op = operationOrThrow(ops, cmd.operation);
        // Several hosts (a batch), a selector (whatever it matches: the preview), or an
        // operation that asks for it: a confirmation click first. A selector is kept as
        // typed and resolved again on the click, against the inventory of that moment.
        const { selector } = cmd;
        // Batch options are checked against what the hosts are now (a canary larger than the batch).
        const options = resolveBatchOptions(ops.config.batch, cmd.batch, hosts.length);
        if (!options.ok) return respond(ephemeral(`:warning: ${options.problem.message}`));
        if (hosts.length > 1 || selector !== undefined || op.confirm) {
          const batchId = randomUUID();
          await d.pending.put(batchId, {
            operation: op.name,
            ...(selector === undefined ? { hostIds: hosts.map((h) => h.id) } : { selector }),
            params: cmd.params,
            ...(cmd.batch ? { batch: cmd.batch } : {}),
            ...(cmd.reason ? { reason: cmd.reason } : {}),
            expiresAt: new Date(now.getTime() + CONFIRM_LIFETIME_MS).toISOString(),
          });
          const request = {
            params: cmd.params,
            ...(hosts.length > 1 ? { options: optionsStringMap(options.options) } : {}),
            reason: cmd.reason,
            ...(selector === undefined ? {} : { selector: selectorText(selector) }),
          };
          const r = renderConfirm(op, hosts, request, JSON.stringify({ batchId }));
          return respond({ response_type: 'ephemeral', replace_original: false, text: r.text, blocks: r.blocks });
        }
        const host = hosts[0] as HostConfig;
        const requestId = requestIdOf(c.trigger_id);
        const origin: SlackOrigin = {
          kind: 'slack',
          teamId: c.team_id,
          channelId: c.channel_id,
          userId: c.user_id,
          responseUrl: c.response_url,
          triggerId: c.trigger_id,
        };
        const payload: SlackDoorCommand = {
          hostId: host.id,
          requestId,
          origin,
          ...(Object.keys(cmd.params).length > 0 ? { params: cmd.params } : {}),
          ...(cmd.batch ?? {}),
          ...(cmd.reason ? { reason: cmd.reason } : {}),
        };
        // On the Slack door's own way in: only it may say a request comes from a
        // Slack user (docs/SECURITY.md). Durable before we return; one trigger_id
        // makes one task (deduplicated by requestId).
        await d.publishDoorCommand(op.name, payload);
        logger.info({ requestId, hostId: host.id, user: c.user_id, op: op.name }, 'Slack request published');
        return;
      }
      case 'agent': {
        const host = hosts[0] as HostConfig;
        const r = renderAgentStatus(await agentStatus(ops, host.id));
        return respond({ response_type: 'ephemeral', replace_original: false, text: r.text, blocks: r.blocks });
      }
      case 'status': {
        const stored = await ops.store.get(cmd.taskId);
        if (!stored)
          return respond(ephemeral(`No task ${cmd.taskId}. \`${slash} list\` shows running and recent tasks.`));
        const r = renderTaskStatus(stored.record.task, { now, ...hostContext(ops.config, stored.record.steps) });
        return respond({ response_type: 'ephemeral', replace_original: false, text: r.text, blocks: r.blocks });
      }
      case 'list':
      case 'history': {
        const host = cmd.kind === 'history' ? (hosts[0] as HostConfig) : undefined;
        const page = await listTasks(ops, { page: 1, size: 20, ...(host ? { hostId: host.id } : {}) });
        const title = host ? `Recent tasks on ${host.name} (${host.id})` : 'Running and recent tasks';
        const r = renderTaskList(title, page.contents, { now, ...(host ? { labels: host.labels } : {}) });
        return respond({ response_type: 'ephemeral', replace_original: false, text: r.text, blocks: r.blocks });
      }
      case 'whoami': {
        const groups = await d.roles.groupsOf(c.user_id).then(
          (list) => ({ ok: true as const, groups: list }),
          (err: Error & { data?: { error?: string } }) => ({
            ok: false as const,
            error: err.data?.error ?? err.message,
          }),
        );
        const grants = ops.config.access.slack;
        return respond(ephemeral(renderWhoami({ userId: c.user_id, groups, roles, grants })));
      }
    }
  }

  return async function handleCommand({ command, ack, respond }: SlackCommandMiddlewareArgs): Promise<void> {
    const parsed = parseCommandText(command.text ?? '', slash, ops.config.operations);
    if (!parsed.ok) {
      await ack(ephemeral(parsed.error));
      return;
    }
    const cmd = parsed.command;
    if (cmd.kind === 'run' && cmd.selector !== undefined) {
      // The preview is made now; the click resolves the selector again.
      const hosts = selectHosts(ops.config.hosts, cmd.selector);
      if (hosts.length === 0) {
        await ack(ephemeral(noMatch(ops.config.hosts, cmd.selector, slash, cmd.operation)));
        return;
      }
      await ack();
      return runAnswering(cmd, hosts, command, respond);
    }
    const named = 'hosts' in cmd ? cmd.hosts : 'host' in cmd ? [cmd.host] : [];
    const { hosts, unknown } = resolveHosts(ops, named);
    if (unknown.length > 0) {
      const known = ops.config.hosts
        .slice(0, 10)
        .map((h) => `${h.id} (${h.name})`)
        .join(', ');
      await ack(
        ephemeral(
          `:question: Unknown host ${unknown.map((u) => `\`${u}\``).join(', ')}. Name a host by id or name, e.g. ${known}.`,
        ),
      );
      return;
    }
    await ack();
    await runAnswering(cmd, hosts, command, respond);
  };

  /** Run an acknowledged command; a failure is told to the requester. */
  async function runAnswering(
    cmd: SlackCommand,
    hosts: HostConfig[],
    c: SlackCommandMiddlewareArgs['command'],
    respond: RespondFn,
  ): Promise<void> {
    try {
      await run(cmd, hosts, c, respond);
    } catch (err) {
      const coded = asCodedError(err);
      logger.warn({ err: coded.message, user: c.user_id }, 'Slack command failed');
      await respond(ephemeral(`:warning: ${coded.message}`));
    }
  }
}

/** Values a refusal shows per label key of a selector that matched nothing. */
const LABEL_VALUES_SHOWN = 10;

/**
 * A selector that matches no host: what the inventory has under each of its
 * keys, so the requester sees what to type. Labels are of the label grammar:
 * nothing in them needs escaping in mrkdwn.
 */
function noMatch(hosts: readonly HostConfig[], selector: Selector, slash: string, verb: string): string {
  if (selector === 'all') return ':question: The inventory has no hosts: there is nothing to run on.';
  const seen = Object.keys(selector).map((key) => ({
    key,
    values: [...new Set(hosts.flatMap((h) => (Object.hasOwn(h.labels, key) ? [h.labels[key] as string] : [])))],
  }));
  const lines = seen.map(({ key, values }) => {
    if (values.length === 0) return `no host has a \`${key}\` label`;
    const shown = values.slice(0, LABEL_VALUES_SHOWN).map((v) => `\`${key}=${v}\``);
    const more = values.length > LABEL_VALUES_SHOWN ? ` and ${values.length - LABEL_VALUES_SHOWN} more` : '';
    return `hosts have ${shown.join(', ')}${more}`;
  });
  const known = seen.find((k) => k.values.length > 0);
  const example = known ? `${known.key}=${known.values[0]}` : 'all';
  return `:question: No host matches \`${selectorText(selector)}\` (every label must match, exactly and case-sensitively): ${lines.join('; ')}. E.g. \`${slash} ${verb} ${example}\`.`;
}

const ButtonValue = z.object({
  taskId: z.number().int().positive(),
  subtaskId: z.number().int().positive().optional(),
});
const BatchValue = z.object({ batchId: z.uuid() });
/** A button's value as JSON; undefined when it is none. */
function jsonOrUndefined(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? '');
  } catch {
    return undefined;
  }
}

/**
 * The role that may confirm (or cancel) a stored confirmation: its
 * operation's; HOST_MANAGER for one that is gone or never was (the built-ins').
 */
async function roleToConfirm(d: SlackAppDeps, batchId: string | undefined): Promise<Role> {
  const pending = batchId ? await d.pending.read(batchId) : undefined;
  const op = pending ? findOperation(d.ops.config.operations, pending.operation) : undefined;
  return op?.role ?? 'HOST_MANAGER';
}

/** How long a batch confirmation can be clicked (ms); Slack's response_url lives 30 minutes. */
const CONFIRM_LIFETIME_MS = 15 * 60_000;
const CONFIRM_GONE = 'This confirmation has expired or was cancelled; type the command again.';

/** What each task button does (a task button carries its task, and a subtask for the subtask's buttons). */
const TASK_BUTTONS: Readonly<
  Record<string, (ops: SlackAppDeps['ops'], v: { taskId: number; subtaskId: number }) => Promise<{ id: number }>>
> = {
  [ACTIONS.retry]: (ops, v) => retry(ops, v.taskId),
  [ACTIONS.rollback]: (ops, v) => rollback(ops, v.taskId),
  [ACTIONS.skip]: (ops, v) => skip(ops, v.taskId, v.subtaskId),
  [ACTIONS.cancel]: (ops, v) => cancel(ops, v.taskId, v.subtaskId),
  [ACTIONS.pause]: (ops, v) => pause(ops, v.taskId),
  [ACTIONS.resume]: (ops, v) => resume(ops, v.taskId),
  [ACTIONS.cancelTask]: (ops, v) => cancelBatch(ops, v.taskId),
};

export function createActionHandler(d: SlackAppDeps) {
  const { ops, logger } = d;
  return async function handleAction({
    action,
    body,
    ack,
    respond,
  }: SlackActionMiddlewareArgs<BlockAction<ButtonAction>>): Promise<void> {
    await ack();
    const userId = body.user.id;
    try {
      const roles = await d.roles.rolesOf(userId);
      if (action.action_id === ACTIONS.cancelBatch || action.action_id === ACTIONS.confirmBatch) {
        // Confirming a request, or removing someone's, needs the role of its operation.
        // The role is checked before anything of the value is believed (it may not even be JSON).
        const value = BatchValue.safeParse(jsonOrUndefined(action.value));
        const batchId = value.success ? value.data.batchId : undefined;
        const need = await roleToConfirm(d, batchId);
        if (!roles.has(need)) return void (await respond(ephemeral(refusal(need))));
        if (!batchId) return void (await respond(ephemeral(CONFIRM_GONE)));
        if (action.action_id === ACTIONS.cancelBatch) {
          const confirmedBy = await d.pending.cancel(batchId);
          if (confirmedBy) {
            // A Confirm won the race: say so, and leave its answer in place.
            return void (await respond(
              ephemeral(`Too late to cancel: <@${confirmedBy}> confirmed it, and it has started.`),
            ));
          }
          return void (await respond({ replace_original: true, text: 'Not started.' }));
        }
        // Taken by this click (compare-and-set): a second click finds it confirmed,
        // and a Cancel meanwhile finds it too late (or this click finds it gone).
        const v = await d.pending.confirm(batchId, userId, new Date());
        if (!v) return void (await respond(ephemeral(CONFIRM_GONE)));
        const channelId = body.channel?.id ?? body.container?.channel_id;
        const { record } = await createTask(ops, {
          operation: v.operation,
          ...(v.selector === undefined ? { hostIds: v.hostIds } : { selector: v.selector }),
          params: v.params,
          ...(v.batch ? { batch: v.batch } : {}),
          creator: `slack:${userId}`,
          requestId: requestIdOf(body.trigger_id),
          traceId: newTraceId(),
          ...(v.reason ? { reason: v.reason } : {}),
          ...(channelId
            ? {
                origin: {
                  door: 'slack' as const,
                  user: userId,
                  channel: channelId,
                  ...(body.team?.id ? { team: body.team.id } : {}),
                  ...(body.response_url ? { replyTo: body.response_url } : {}),
                  ref: body.trigger_id,
                },
              }
            : {}),
        });
        await respond({ replace_original: true, text: `${record.task.name} started: task ${record.task.id}.` });
        return;
      }
      if (!roles.has('TASK_MANAGER')) return void (await respond(ephemeral(refusal('TASK_MANAGER'))));
      const v = ButtonValue.parse(JSON.parse(action.value ?? '{}'));
      const subtaskId = v.subtaskId ?? 0;
      const task = await (TASK_BUTTONS[action.action_id] ?? ((o, x) => getTask(o, x.taskId)))(ops, {
        taskId: v.taskId,
        subtaskId,
      });
      logger.info({ taskId: task.id, action: action.action_id, user: userId }, 'Slack button handled');
    } catch (err) {
      const coded = asCodedError(err);
      await respond(ephemeral(`:warning: ${coded.message}`));
    }
  };
}

/**
 * An event Bolt fails on before anyone acknowledged it (a signed body that is no interaction Bolt
 * can read: `actions` but no `user`, say) is a malformed request: 400, not a server error.
 * After an ack, and for Bolt's authorization failures (401), Bolt's own handling stands.
 */
export async function processEventError(args: ReceiverProcessEventErrorHandlerArgs): Promise<boolean> {
  const { error, response, logger } = args;
  if (response.headersSent || (error as { code?: unknown }).code === 'slack_bolt_authorization_error') {
    return HTTPModuleFunctions.defaultProcessEventErrorHandler(args);
  }
  logger.warn(`Slack request not processed, answered 400: ${error.message}`);
  response.writeHead(400);
  response.end();
  return true;
}

/**
 * Bolt's `authorize`, given instead of `token`. With a token Bolt calls auth.test as it is built
 * and keeps that one promise: a token Slack refused at that moment (revoked, mistyped, Slack
 * unreachable) was an unhandled rejection that killed the whole process, or, once a request had
 * awaited it, a 401 for every command until a restart. Here the bot's identity is asked for
 * until Slack gives it, each refusal is logged (never the token), and commands and clicks go on
 * meanwhile: they answer on their response_url and need no identity.
 */
export function botAuthorize(client: Pick<WebClient, 'auth'>, botToken: string, logger: Logger) {
  let identity: Promise<{ botUserId?: string; botId?: string }> | undefined;
  return async () => {
    identity ??= client.auth
      .test()
      .then((r) => ({ ...(r.user_id ? { botUserId: r.user_id } : {}), ...(r.bot_id ? { botId: r.bot_id } : {}) }))
      .catch((err: Error) => {
        logger.error(
          { err: err.message },
          'Slack refused the bot token (auth.test); asking again with the next request',
        );
        identity = undefined;
        return {};
      });
    return { botToken, ...(await identity) };
  };
}

/** Bolt's logger interface over pino. */
function boltLogger(logger: Logger): BoltLogger {
  let level = LogLevel.INFO;
  const line = (msg: unknown[]) => msg.map(String).join(' ');
  return {
    debug: (...m) => logger.debug(line(m)),
    info: (...m) => logger.info(line(m)),
    warn: (...m) => logger.warn(line(m)),
    error: (...m) => logger.error(line(m)),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}

/** The path of a request-target as Bolt reads it; undefined when it is no URL at all. */
function slackPath(target: string | undefined): string | undefined {
  try {
    return new URL(target ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

/** Slack's door; over HTTP it rides on the service's port. */
export interface SlackFrontDoor extends FrontDoor {
  /** For the service's HTTP server: handles /slack/events, returns false for anything else. */
  handleHttp(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

/** Whether a buffered request carries a valid, fresh Slack signature. */
async function signedBySlack(signingSecret: string, req: BufferedIncomingMessage): Promise<boolean> {
  try {
    await HTTPModuleFunctions.parseAndVerifyHTTPRequest({ signingSecret }, req);
    return true;
  } catch {
    return false;
  }
}

/**
 * Largest Slack request body read, in bytes: 64 KiB. Slack's slash commands and interactions
 * are a few KiB; a click on our largest message (8,000 characters of blocks, a 2,000-character
 * button value) is ~14 KB, and its percent-encoded UTF-8 at worst about four times that.
 */
export const SLACK_BODY_LIMIT_BYTES = 64 * 1024;
/**
 * Largest body read from a request whose headers carry no signature that could be valid
 * (1 KiB): such a request is refused whatever its body, except Slack's `ssl_check=1`, which
 * Bolt answers unsigned and which is a few dozen bytes.
 */
export const UNSIGNED_BODY_LIMIT_BYTES = 1024;

/**
 * Whether the headers carry a signature that Bolt could find valid: `v0=` and 64 hex digits,
 * and a timestamp no older than Bolt's five minutes. Anyone can forge these, so a request that
 * has them is still read only up to SLACK_BODY_LIMIT_BYTES and then checked by Bolt; one
 * without them can never pass the check.
 */
function mayBeSigned(req: IncomingMessage): boolean {
  const signature = req.headers['x-slack-signature'];
  const timestamp = req.headers['x-slack-request-timestamp'];
  if (typeof signature !== 'string' || typeof timestamp !== 'string') return false;
  if (!/^v0=[0-9a-f]{64}(=|$)/.test(signature)) return false;
  const t = Number(timestamp);
  return !Number.isNaN(t) && t >= Math.floor(Date.now() / 1000) - 5 * 60;
}

/**
 * The request's body if it has at most `limit` bytes; 'too large' as soon as it has more (by
 * its Content-Length, or while it arrives), without reading the rest.
 */
function readAtMost(req: IncomingMessage, limit: number): Promise<Buffer | 'too large'> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.resolve('too large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        done();
        req.pause();
        resolve('too large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const onClose = () => onError(new Error('the client closed the connection before the body ended'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** An answer with no body that closes the connection, so the rest of an unread body is never taken in. */
function refuseUnread(res: ServerResponse, status: 401 | 413): void {
  res.writeHead(status, { connection: 'close' }).end();
}

export async function startSlackApp(
  d: SlackAppDeps & { signingSecret: string; botToken: string; appToken?: string; apiUrl: string },
): Promise<SlackFrontDoor> {
  const logger = boltLogger(d.logger.child({ component: 'bolt' }));
  const clientOptions = { slackApiUrl: d.apiUrl, retryConfig: SLACK_RETRY };
  // Socket Mode needs no signing secret: the app-level token authenticates the connection.
  const socket = d.appToken
    ? new SocketModeReceiver({
        appToken: d.appToken,
        logger,
        // Its client asks apps.connections.open on SLACK_API_URL, as the rest of the app does.
        installerOptions: { clientOptions: { slackApiUrl: d.apiUrl, retryConfig: SOCKET_OPEN_RETRY } },
      })
    : undefined;
  const receiver = socket
    ? undefined
    : new HTTPReceiver({
        signingSecret: d.signingSecret,
        endpoints: '/slack/events',
        logger,
        processBeforeResponse: false,
        processEventErrorHandler: processEventError,
      });
  const authorize = botAuthorize(new WebClient(d.botToken, clientOptions), d.botToken, d.logger);
  void authorize(); // ask now, so a refused token is in the log at start-up
  const app = new App({
    authorize,
    logger,
    clientOptions,
    receiver: socket ?? receiver,
  });
  app.command(d.ops.config.slack.command, createCommandHandler(d));
  const onAction = createActionHandler(d);
  for (const id of Object.values(ACTIONS) as string[]) {
    app.action<BlockAction<ButtonAction>>(id, onAction);
  }
  if (socket) await app.start();
  return {
    name: 'slack',
    async handleHttp(req, res) {
      // Only what Bolt serves: a POST to exactly /slack/events. Anything else (another method,
      // /slack/events/, /slack/eventsX) makes Bolt throw, so it is left to the API's 401/404.
      if (!receiver || req.method !== 'POST' || slackPath(req.url) !== '/slack/events') return false;
      // The body is read before its signature can be checked (the signature covers it), so
      // only as far as it may be Slack's: 64 KiB, or 1 KiB without a signature that could be
      // valid. Past that the request is refused unread and its connection closed.
      const signed = mayBeSigned(req);
      if (Number(req.headers['content-length']) > SLACK_BODY_LIMIT_BYTES) {
        refuseUnread(res, 413);
        return true;
      }
      let body: Buffer | 'too large';
      try {
        body = await readAtMost(req, signed ? SLACK_BODY_LIMIT_BYTES : UNSIGNED_BODY_LIMIT_BYTES);
      } catch {
        req.destroy(); // the client went away mid-body: nobody to answer
        return true;
      }
      if (body === 'too large') {
        if (signed)
          d.logger.warn({ limit: SLACK_BODY_LIMIT_BYTES }, 'Slack request body over the limit; refused unread');
        refuseUnread(res, signed ? 413 : 401);
        return true;
      }
      // Bolt reads a body it has been handed (rawBody) instead of the stream. One that does
      // not parse to an object (`null`, `[]`, `7` as JSON) made Bolt throw outside any
      // handler: the connection hung unanswered. It is a malformed request: 400.
      const buffered = Object.assign(req, { rawBody: body }) as BufferedIncomingMessage;
      let parsed: unknown;
      try {
        parsed = HTTPModuleFunctions.parseHTTPRequestBody(buffered);
      } catch {
        parsed = undefined;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        // Unsigned or wrongly signed, it is Bolt's 401 (Bolt checks the signature before parsing).
        if (await signedBySlack(d.signingSecret, buffered)) {
          res.writeHead(400).end();
          return true;
        }
      }
      receiver.requestListener(buffered, res);
      return true;
    },
    async stop() {
      if (!socket) return;
      // Bolt's stop() does not wait for the close handshake; the client's disconnect() does.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        socket.client.disconnect(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, SOCKET_CLOSE_WAIT_MS);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}
