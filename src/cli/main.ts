/**
 * `ocp-chatops`, the command-line client (issue 16). It talks to the HTTP API
 * only (credentials: credentials.ts), except `hash-password` (local) and
 * `doctor` (the checks, with the service's own configuration). Each command is
 * one entry of COMMANDS — its usage, help and run — so approve and reject slot
 * in beside the others once approvals exist.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { OcpTask } from '../contracts/ocp-task.js';
import { isSelectorToken, parseSelector } from '../contracts/selector.js';
import { doctorCommand } from '../doctor/command.js';
import { hashPassword } from '../http/auth.js';
import { type Api, ApiError, createApi } from './api-client.js';
import { readCredentials } from './credentials.js';
import { type CliIo, EXIT, type ExitCode } from './io.js';
import { batchBar, changes, isBatch, renderList, renderTask, taskTitle } from './render.js';

interface Parsed {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

interface Command {
  usage: string;
  summary: string;
  /** Further help lines. */
  help?: string;
  options?: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  /** Positional arguments: at least, at most. */
  args: [number, number];
  /** Whether it needs the API (and so credentials). */
  api: boolean;
  run(p: Parsed, ctx: { api: Api; io: CliIo }): Promise<ExitCode>;
}

const TASKS = '/api/v2/tasks/instances';
/** How often a followed task is read again (ms). */
const FOLLOW_EVERY_MS = 500;

/** The hosts token as the API takes it: ids, names resolved through the inventory, or a selector. */
async function hostsBody(api: Api, token: string): Promise<Record<string, unknown>> {
  if (isSelectorToken(token)) {
    const parsed = parseSelector(token);
    if (!parsed.ok) throw new ApiError(`${token} is not a selector: it ${parsed.error}`, 0);
    return { selector: parsed.selector };
  }
  const parts = token.split(',');
  const named = parts.filter((p) => !/^[1-9][0-9]*$/.test(p));
  let ids = new Map<string, number>();
  if (named.length > 0) {
    const hosts = await api<{ contents: Array<{ id: number; name: string }> }>('GET', '/api/v2/ocp-chatops/hosts');
    ids = new Map(hosts.contents.map((h) => [h.name, h.id]));
    const unknown = named.filter((n) => !ids.has(n));
    if (unknown.length > 0) throw new ApiError(`unknown host ${unknown.join(', ')}: name hosts by id or name`, 404);
  }
  const hostIds = parts.map((p) => ids.get(p) ?? Number(p));
  return hostIds.length === 1 ? { hostId: hostIds[0] } : { hostIds };
}

/** Read the task until it ends, printing each step that changes (a batch: its progress bar). Exit 0 when SUCCESSFUL. */
async function follow(api: Api, io: CliIo, first: OcpTask): Promise<ExitCode> {
  let last: OcpTask | undefined;
  let task = first;
  let lastBar = '';
  for (;;) {
    if (isBatch(task)) {
      const bar = batchBar(task);
      if (bar !== lastBar) {
        if (io.stderr.isTTY) io.stderr.write(`\r${bar}\x1b[K`);
        else io.stderr.write(`${bar}\n`);
        lastBar = bar;
      }
      for (const line of changes(last, task).filter((l) => /FAILED/.test(l))) {
        io.stdout.write(`${io.stderr.isTTY ? '\n' : ''}${line}\n`);
      }
    } else {
      for (const line of changes(last, task)) io.stdout.write(`${line}\n`);
    }
    if (task.status !== 'RUNNING') break;
    last = task;
    await new Promise((r) => setTimeout(r, FOLLOW_EVERY_MS));
    task = await api<OcpTask>('GET', `${TASKS}/${task.id}`);
  }
  if (isBatch(task) && io.stderr.isTTY) io.stderr.write('\n');
  io.stdout.write(`${taskTitle(task)}\n`);
  return task.status === 'SUCCESSFUL' ? EXIT.ok : EXIT.failed;
}

function operationCommand(op: 'restart' | 'stop' | 'start'): Command {
  return {
    usage: `${op} <host>[,<host>…]|<selector> [--reason <text>] [--wait]`,
    summary: `${op} the OCP agent on hosts (several, or a selector: a batch)`,
    help: [
      'A host is its id or its name; a selector is labels that must all match (cluster=obcluster1,zone=z1) or `all`.',
      '  --reason <text>  why, kept with the task and shown in Slack',
      '  --wait           follow the task to its end: a line per step (a batch: a progress bar);',
      '                   exit 0 when it ends SUCCESSFUL, 1 when FAILED',
    ].join('\n'),
    options: { reason: { type: 'string' }, wait: { type: 'boolean' } },
    args: [1, 1],
    api: true,
    async run({ positionals, values }, { api, io }) {
      const body = {
        ...(await hostsBody(api, positionals[0] as string)),
        ...(typeof values.reason === 'string' ? { reason: values.reason } : {}),
      };
      const task = await api<OcpTask>('POST', `/api/v2/ocp-chatops/operations/${op}`, body);
      io.stdout.write(`${taskTitle(task)}\n`);
      return values.wait ? follow(api, io, task) : EXIT.ok;
    },
  };
}

const taskId = (text: string | undefined): number => {
  if (!text || !/^[1-9][0-9]*$/.test(text)) throw new ApiError(`${text ?? ''} is not a task id`, 0);
  return Number(text);
};

/** A subtask given, or the task's first in `status` (the one an operator means). */
async function subtaskOf(api: Api, task: number, given: string | undefined, status: string, verb: string) {
  if (given !== undefined) return taskId(given);
  const t = await api<OcpTask>('GET', `${TASKS}/${task}`);
  const s = t.subtasks.find((x) => x.status === status);
  if (!s)
    throw new ApiError(
      `task ${task} has no ${status} subtask to ${verb}; name one: ocp-chatops ${verb} ${task} <subtask>`,
      409,
    );
  return s.id;
}

const COMMANDS: Record<string, Command> = {
  restart: operationCommand('restart'),
  stop: operationCommand('stop'),
  start: operationCommand('start'),
  status: {
    usage: 'status <task> [--wait]',
    summary: "a task's steps and their state",
    options: { wait: { type: 'boolean' } },
    args: [1, 1],
    api: true,
    async run({ positionals, values }, { api, io }) {
      const task = await api<OcpTask>('GET', `${TASKS}/${taskId(positionals[0])}`);
      if (values.wait && task.status === 'RUNNING') return follow(api, io, task);
      io.stdout.write(`${renderTask(task)}\n`);
      return EXIT.ok;
    },
  },
  list: {
    usage: 'list [--status RUNNING|FAILED|SUCCESSFUL] [--page <n>] [--size <n>]',
    summary: 'running and recent tasks, newest first',
    options: { status: { type: 'string' }, page: { type: 'string' }, size: { type: 'string' } },
    args: [0, 0],
    api: true,
    async run({ values }, { api, io }) {
      const q = new URLSearchParams({ size: '20' });
      for (const k of ['status', 'page', 'size'] as const)
        if (typeof values[k] === 'string') q.set(k, values[k] as string);
      io.stdout.write(`${renderList(await api('GET', `${TASKS}?${q}`))}\n`);
      return EXIT.ok;
    },
  },
  history: {
    usage: 'history <host> [--page <n>]',
    summary: 'recent tasks of one host',
    options: { page: { type: 'string' } },
    args: [1, 1],
    api: true,
    async run({ positionals, values }, { api, io }) {
      const body = await hostsBody(api, positionals[0] as string);
      if (body.hostId === undefined) throw new ApiError('history takes one host', 0);
      const q = new URLSearchParams({ hostId: String(body.hostId), size: '20' });
      if (typeof values.page === 'string') q.set('page', values.page);
      io.stdout.write(`${renderList(await api('GET', `${TASKS}?${q}`))}\n`);
      return EXIT.ok;
    },
  },
  retry: {
    usage: 'retry <task> [<subtask>]',
    summary: "run a failed task's failed steps again (or one subtask)",
    args: [1, 2],
    api: true,
    async run({ positionals: [t, s] }, { api, io }) {
      const id = taskId(t);
      const path = s === undefined ? `${TASKS}/${id}/retry` : `${TASKS}/${id}/subtasks/${taskId(s)}/retry`;
      io.stdout.write(`${taskTitle(await api<OcpTask>('POST', path))}\n`);
      return EXIT.ok;
    },
  },
  skip: {
    usage: 'skip <task> [<subtask>]',
    summary: 'mark a failed subtask (default: the first) SUCCESSFUL and go on',
    args: [1, 2],
    api: true,
    async run({ positionals: [t, s] }, { api, io }) {
      const id = taskId(t);
      const sub = await subtaskOf(api, id, s, 'FAILED', 'skip');
      io.stdout.write(`${taskTitle(await api<OcpTask>('POST', `${TASKS}/${id}/subtasks/${sub}/skip`))}\n`);
      return EXIT.ok;
    },
  },
  rollback: {
    usage: 'rollback <task>',
    summary: 'start the agent again on each host whose chain failed',
    args: [1, 1],
    api: true,
    async run({ positionals: [t] }, { api, io }) {
      io.stdout.write(`${taskTitle(await api<OcpTask>('POST', `${TASKS}/${taskId(t)}/rollback`))}\n`);
      return EXIT.ok;
    },
  },
  cancel: {
    usage: 'cancel <task> [<subtask>]',
    summary: 'cancel a running subtask (default: the first running)',
    args: [1, 2],
    api: true,
    async run({ positionals: [t, s] }, { api, io }) {
      const id = taskId(t);
      const sub = await subtaskOf(api, id, s, 'RUNNING', 'cancel');
      io.stdout.write(`${taskTitle(await api<OcpTask>('POST', `${TASKS}/${id}/subtasks/${sub}/cancel`))}\n`);
      return EXIT.ok;
    },
  },
  'hash-password': {
    usage: 'hash-password',
    summary: 'a passwordHash for access.users, from a password typed without echo (or one line of stdin)',
    args: [0, 0],
    api: false,
    async run(_p, { io }) {
      const password = await io.readSecret('Password: ');
      if (!password) {
        io.stderr.write('ocp-chatops: no password given\n');
        return EXIT.failed;
      }
      io.stdout.write(`${hashPassword(password, randomBytes(16))}\n`);
      return EXIT.ok;
    },
  },
};

const NAMES = [...Object.keys(COMMANDS), 'doctor'];

export function mainHelp(): string {
  const rows = [
    ...Object.values(COMMANDS).map((c) => [c.usage, c.summary]),
    ['doctor [--json]', 'check the set-up: hosts, NATS, Slack, HTTP users (ocp-chatops doctor --help)'],
  ];
  return [
    'Usage: ocp-chatops <command> [options]   (ocp-chatops <command> --help for more)',
    '',
    ...rows.map(([u, s]) => `  ${u}\n      ${s}`),
    '',
    'The service: OCP_CHATOPS_URL (default http://127.0.0.1:3000), OCP_CHATOPS_USER and',
    'OCP_CHATOPS_PASSWORD, or url=, user=, password= lines in ~/.config/ocp-chatops/credentials.',
    'Exit codes: 0 done; 1 refused or failed (the API says why); 2 used wrongly.',
    '',
  ].join('\n');
}

const commandHelp = (c: Command) => `Usage: ocp-chatops ${c.usage}\n\n${c.summary}.\n${c.help ? `\n${c.help}\n` : ''}`;

export async function runCli(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(mainHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  // doctorCommand answers its own --help.
  if (name === 'doctor') return doctorCommand(rest, io);
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`ocp-chatops: unknown command ${name}; commands: ${NAMES.join(', ')}\n`);
    return EXIT.usage;
  }
  let parsed: Parsed;
  try {
    const r = parseArgs({
      args: [...rest],
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    parsed = { positionals: r.positionals, values: r.values as Parsed['values'] };
  } catch (err) {
    io.stderr.write(`ocp-chatops ${name}: ${(err as Error).message}\n\n${commandHelp(command)}`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    io.stdout.write(commandHelp(command));
    return EXIT.ok;
  }
  const [least, most] = command.args;
  if (parsed.positionals.length < least || parsed.positionals.length > most) {
    io.stderr.write(`ocp-chatops ${name}: wrong number of arguments\n\n${commandHelp(command)}`);
    return EXIT.usage;
  }
  let api: Api = async () => {
    throw new ApiError('no API for this command', 0);
  };
  if (command.api) {
    const creds = readCredentials(io.env);
    if (!creds.ok) {
      io.stderr.write(`ocp-chatops: ${creds.error}\n`);
      return EXIT.usage;
    }
    if (creds.warning) io.stderr.write(`ocp-chatops: ${creds.warning}\n`);
    api = createApi(creds.credentials);
  }
  try {
    return await command.run(parsed, { api, io });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const where = err.status > 0 ? ` (HTTP ${err.status}${err.code !== undefined ? `, code ${err.code}` : ''})` : '';
    io.stderr.write(`ocp-chatops: ${err.message}${where}\n`);
    return EXIT.failed;
  }
}
