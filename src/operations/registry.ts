/**
 * The registry of operations (SPEC §8): each operation declared once — its
 * verb, title, runbook, role, parameters, confirmation and rollback — and
 * every door (HTTP, NATS commands, the NATS API, Slack, their help, JSON
 * Schemas, docs) derived from it. Restart, Stop and Start are the built-in
 * entries; operations of one's own come from the config file's `operations:`
 * and become entries of the same kind, with a runbook of their own.
 *
 * Adding an operation is one entry here or one entry in the config file.
 */
import { z } from 'zod';
import { MAX_PARAM_CHARS, type ParamSpec, paramUsage } from '../contracts/params.js';
import { PERMISSIONS, type Permission } from '../contracts/roles.js';
import { RESTART, START, STOP } from '../core/runbooks/builtin.js';
import { PLACEHOLDERS, type Runbook, RunbookStep } from '../core/runbooks/runbook.js';

/** Steps a Rollback runs on each failed host: steps of `runbook`, by name (default: all of them). */
export interface RollbackPlan {
  runbook: string;
  steps?: readonly string[];
}

export interface OperationDef {
  /** The Slack verb and the API name: `[a-z][a-z0-9-]{1,30}`. */
  name: string;
  /** The task's name for one host; several hosts make "Batch <title, first letter lower-cased>". */
  title: string;
  /** What it does, for help texts: "restart the OCP agent". */
  summary: string;
  /** The configured runbook whose steps each host runs. */
  runbook: string;
  /** Who may run it. */
  role: Permission;
  /** Declared parameters, each a `{name}` placeholder of the steps, shell-quoted. */
  params: Readonly<Record<string, ParamSpec>>;
  /** Slack asks for a confirmation click first, even for one host. */
  confirm: boolean;
  /** Takes the host lock (one agent operation per host at a time), as the built-ins do. */
  exclusive: boolean;
  /** Absent: the task prohibits rollback (409 / 20003, no Rollback button). */
  rollback?: RollbackPlan;
  /** Slack text after the verb for an example: "101 agent stuck after upgrade". */
  example: string;
  builtin: boolean;
}

const START_ALL = 'Start all OCP agent processes';
const FINISH = 'Finish OCP agent operation';
/** SPEC §2: a failed Restart or Stop is rolled back by starting the agent again, then finishing. */
const START_AGAIN: RollbackPlan = { runbook: RESTART, steps: [START_ALL, FINISH] };

export const BUILTIN_OPERATIONS: readonly OperationDef[] = [
  {
    name: 'restart',
    title: RESTART,
    summary: 'restart the OCP agent',
    runbook: RESTART,
    role: 'HOST_MANAGER',
    params: {},
    confirm: false,
    exclusive: true,
    rollback: START_AGAIN,
    example: '101 agent stuck after upgrade',
    builtin: true,
  },
  {
    name: 'stop',
    title: STOP,
    summary: 'stop the OCP agent',
    runbook: STOP,
    role: 'HOST_MANAGER',
    params: {},
    confirm: false,
    exclusive: true,
    rollback: START_AGAIN,
    example: '101 disk maintenance',
    builtin: true,
  },
  {
    name: 'start',
    title: START,
    summary: 'start the OCP agent',
    runbook: START,
    role: 'HOST_MANAGER',
    params: {},
    confirm: false,
    exclusive: true,
    rollback: START_AGAIN,
    example: '101',
    builtin: true,
  },
];

/** Words a parameter may not be named (SPEC §8): request fields and batch options, now or to come. */
export const RESERVED_PARAM_NAMES = [
  'reason',
  'force',
  'canary',
  'maxParallel',
  'maxFailures',
  'selector',
  'operation',
] as const;
/** Slack verbs that are not operations: an operation may not take their name. */
export const OTHER_VERBS = ['agent', 'status', 'list', 'history', 'help', 'whoami'] as const;

const OPERATION_NAME = /^[a-z][a-z0-9-]{1,30}$/;
const PARAM_NAME = /^[a-z][A-Za-z0-9]{0,30}$/;

/** "Restart OCP agent" → "Batch restart OCP agent" (SPEC §2, §8). */
export function batchTitle(title: string): string {
  return `Batch ${title.charAt(0).toLowerCase()}${title.slice(1)}`;
}

export function findOperation(operations: readonly OperationDef[], name: string): OperationDef | undefined {
  return operations.find((o) => o.name === name);
}

/**
 * The operation a task was made by: its `operation` (an operation of one's
 * own), else its name (the built-ins, and tasks stored before the registry).
 */
export function operationOfTask(
  operations: readonly OperationDef[],
  task: { name: string; context: { stringMap: Readonly<Record<string, string>> } },
): OperationDef | undefined {
  const named = task.context.stringMap.operation;
  if (named !== undefined) return findOperation(operations, named);
  return operations.find((o) => o.builtin && (o.title === task.name || batchTitle(o.title) === task.name));
}

// ---------------------------------------------------------------- operations of one's own

const ParamSpecConfig = z.union([
  z.strictObject({ enum: z.array(z.string().min(1).max(MAX_PARAM_CHARS)).min(1).max(100) }),
  z.strictObject({
    pattern: z
      .string()
      .min(1)
      .max(500)
      .refine((p) => {
        try {
          new RegExp(p, 'u');
          return true;
        } catch {
          return false;
        }
      }, 'must be a regular expression'),
  }),
]);

/** One entry of the config file's `operations:` (SPEC §8). */
export const OperationConfig = z.strictObject({
  name: z.string().regex(OPERATION_NAME, 'must match [a-z][a-z0-9-]{1,30}'),
  title: z.string().trim().min(1).max(200),
  role: z.enum(PERMISSIONS).default('HOST_MANAGER'),
  confirm: z.boolean().default(false),
  exclusive: z.boolean().default(true),
  params: z
    .record(
      z
        .string()
        .regex(PARAM_NAME, 'a parameter name must match [a-z][A-Za-z0-9]{0,30}')
        .refine((n) => !(RESERVED_PARAM_NAMES as readonly string[]).includes(n), {
          error: `a parameter may not be named ${RESERVED_PARAM_NAMES.join(', ')}`,
        })
        .refine((n) => !(PLACEHOLDERS as readonly string[]).includes(n), {
          error: `a parameter may not take a placeholder's name (${PLACEHOLDERS.join(', ')})`,
        }),
      ParamSpecConfig,
    )
    .default({}),
  steps: z.array(RunbookStep).min(1).max(50),
  rollback: z.array(RunbookStep).min(1).max(50).optional(),
});
export type OperationConfig = z.infer<typeof OperationConfig>;

/** The runbook names an operation of one's own gets (never a built-in one's). */
const runbookName = (op: string) => `operation ${op}`;
const rollbackName = (op: string) => `operation ${op} rollback`;

/** An operation of one's own as a registry entry and the runbooks its steps make. */
export function fromConfig(c: OperationConfig): { operation: OperationDef; runbooks: Runbook[] } {
  const params = Object.keys(c.params);
  const runbooks: Runbook[] = [{ name: runbookName(c.name), steps: c.steps, params }];
  if (c.rollback) runbooks.push({ name: rollbackName(c.name), steps: c.rollback, params });
  const example = ['101', ...Object.entries(c.params).map(([n, s]) => `${n}=${'enum' in s ? s.enum[0] : '…'}`)];
  return {
    operation: {
      name: c.name,
      title: c.title,
      summary: c.title.charAt(0).toLowerCase() + c.title.slice(1),
      runbook: runbookName(c.name),
      role: c.role,
      params: c.params,
      confirm: c.confirm,
      exclusive: c.exclusive,
      ...(c.rollback ? { rollback: { runbook: rollbackName(c.name) } } : {}),
      example: example.join(' '),
      builtin: false,
    },
    runbooks,
  };
}

/**
 * Problems of a list of operations of one's own against the built-ins and each
 * other, as `[index, field, message]`: a name or title taken twice, a verb of
 * Slack's own.
 */
export function conflictsOf(configured: readonly OperationConfig[]): Array<[number, string, string]> {
  const out: Array<[number, string, string]> = [];
  const names = new Set<string>([...BUILTIN_OPERATIONS.map((o) => o.name), ...OTHER_VERBS]);
  const titles = new Set<string>(BUILTIN_OPERATIONS.flatMap((o) => [o.title, batchTitle(o.title)]));
  configured.forEach((c, i) => {
    if (names.has(c.name))
      out.push([i, 'name', `"${c.name}" is taken (a built-in operation, a verb or another entry)`]);
    if (titles.has(c.title) || titles.has(batchTitle(c.title))) {
      out.push([i, 'title', `"${c.title}" is the task name of another operation`]);
    }
    names.add(c.name);
    titles.add(c.title);
    titles.add(batchTitle(c.title));
  });
  return out;
}

/**
 * How the operation is typed after the slash command (and in the CLI):
 * `restart-process <host>[,<host>…]|<selector> process=<a|b> [reason…]`, a
 * selector being `key=value[,key=value…]` over labels or `all` (SPEC §10).
 */
export function usageOf(op: OperationDef): string {
  const params = Object.entries(op.params).map(([n, s]) => paramUsage(n, s));
  return [op.name, '<host>[,<host>…]|<selector>', ...params, '[reason…]'].join(' ');
}
