/**
 * The text of `/ocp-agent <text>` (SPEC §4) as a command, or a sentence saying
 * what is wrong and what to type instead. Pure: no I/O. Hosts stay as typed
 * (ids or names); whoever handles the command resolves them against the
 * inventory.
 *
 * Slack sends the text with `&`, `<`, `>` escaped as `&amp;`, `&lt;`, `&gt;`,
 * and (with "escape channels, users and links" on) mentions as `<@U123|bob>`
 * and links as `<http://x.example|x.example>`. The reason is unescaped; a
 * mention is refused as a host; a link whose label is a host name (Slack links
 * `host.example.com` by itself) counts as that name.
 */

import {
  BATCH_OPTION_FIELDS,
  BATCH_OPTION_NAMES,
  type BatchOptionName,
  type BatchOptionsInput,
} from '../contracts/batch-options.js';
import { MAX_HOSTS } from '../contracts/host-list.js';
import { paramAccepts, paramUsage } from '../contracts/params.js';
import type { Permission } from '../contracts/roles.js';
import { isSelectorToken, parseSelector, SELECTOR_EXAMPLE, type Selector } from '../contracts/selector.js';
import { BUILTIN_OPERATIONS, findOperation, type OperationDef, usageOf } from '../operations/registry.js';

export type Role = Permission;

export type SlackCommand =
  | { kind: 'help' }
  /**
   * An operation of the registry (SPEC §8): `hosts` as typed, one or several
   * (a batch), or a `selector` over labels (SPEC §10; `hosts` is empty then);
   * its parameters as typed `name=value`, each checked against its declaration.
   */
  | {
      kind: 'run';
      operation: string;
      hosts: string[];
      selector?: Selector;
      params: Record<string, string>;
      /** A batch's rolling options typed as `canary=2`, `maxFailures=5%`, `maxParallel=10` (SPEC §10). */
      batch?: BatchOptionsInput;
      reason?: string;
    }
  | { kind: 'agent'; host: string }
  | { kind: 'status'; taskId: number }
  | { kind: 'list' }
  | { kind: 'history'; host: string }
  /** Who the caller is to Slack and to us: what an admin needs to fill `access.slack`. */
  | { kind: 'whoami' };

export type ParseResult = { ok: true; command: SlackCommand } | { ok: false; error: string };

/** The verbs that are not operations, in the order help shows them (after the operations). */
type OtherVerb = Exclude<SlackCommand['kind'], 'run'>;
const OTHER_VERBS: readonly OtherVerb[] = ['agent', 'status', 'list', 'history', 'whoami', 'help'];

/** Hosts one batch may name. */
export const MAX_BATCH_HOSTS = MAX_HOSTS;
/** Characters (code points) a reason may hold, after unescaping. */
export const MAX_REASON_CHARS = 500;

const HOST_ID_RE = /^[1-9][0-9]{0,15}$/;
const HOST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const TASK_ID_RE = /^[1-9][0-9]*$/;
/** Slack's escaped link: `<http://host.example.com|host.example.com>` or `<http://host.example.com>`. */
const LINK_RE = /^<https?:\/\/([^|>/]+)\/?(?:\|([^>]*))?>$/;

const ROLE_OF: Record<OtherVerb, Role | undefined> = {
  agent: 'HOST_VIEWER',
  status: 'TASK_VIEWER',
  list: 'TASK_VIEWER',
  history: 'TASK_VIEWER',
  whoami: undefined,
  help: undefined,
};

/** The role a command needs; undefined: anyone may run it. */
export function requiredRole(
  command: SlackCommand,
  operations: readonly OperationDef[] = BUILTIN_OPERATIONS,
): Role | undefined {
  if (command.kind === 'run') return findOperation(operations, command.operation)?.role;
  return ROLE_OF[command.kind];
}

interface Usage {
  args: string;
  does: string;
  example: string;
}

/** An operation's usage, from the registry. */
function usageOfOperation(op: OperationDef): Usage {
  return { args: usageOf(op), does: op.summary, example: `${op.name} ${op.example}` };
}

/** Usage line (after the slash command) and what it does, per verb that is not an operation. */
const USAGE: Record<OtherVerb, Usage> = {
  agent: { args: 'agent <host>', does: "show the agent's processes on a host", example: 'agent 101' },
  status: { args: 'status <taskId>', does: "show a task's subtasks and their state", example: 'status 1234' },
  list: { args: 'list', does: 'running and recent tasks, who ran them and why', example: 'list' },
  history: { args: 'history <host>', does: 'recent tasks of one host', example: 'history 101' },
  whoami: {
    args: 'whoami',
    does: 'your Slack user id, your user groups and the roles they give you',
    example: 'whoami',
  },
  help: { args: 'help', does: 'this help', example: 'help' },
};

/**
 * Usage for the commands the caller may run (help always), one line each, in
 * mrkdwn: "`/ocp-agent restart &lt;host&gt;[,&lt;host&gt;…] [reason…]` restart the
 * OCP agent …" (Slack shows `<host>`).
 */
export function helpText(
  allowed: ReadonlySet<Role>,
  slashCommand = '/ocp-agent',
  operations: readonly OperationDef[] = BUILTIN_OPERATIONS,
): string {
  const usages = [
    ...operations.filter((op) => allowed.has(op.role)).map(usageOfOperation),
    ...OTHER_VERBS.filter((verb) => {
      const role = ROLE_OF[verb];
      return role === undefined || allowed.has(role);
    }).map((verb) => USAGE[verb]),
  ];
  const lines = usages.map((u) => `\`${slashCommand} ${mrkdwn(u.args)}\` ${u.does}`);
  const notes = ['A host is its id or its name.'];
  if (operations.some((op) => allowed.has(op.role))) {
    notes.push('Several hosts (`101,102`) make a batch, which asks for a confirmation first.');
    notes.push(
      `Or name hosts by their labels: \`${SELECTOR_EXAMPLE}\` (every label must match) or \`all\`; the confirmation shows what it matches.`,
    );
    notes.push(
      `A batch rolls: after the hosts, ${BATCH_OPTIONS_USAGE} (e.g. \`restart cluster=obcluster1 canary=2 maxFailures=5% after upgrade\`): the canary's hosts run first and alone, past maxFailures no new host starts; its message has Pause and Resume buttons.`,
    );
  }
  const anyRole = usages.length > OTHER_VERBS.filter((verb) => ROLE_OF[verb] === undefined).length;
  if (!anyRole) {
    notes.push(
      `You hold no role that runs the other commands; ask an admin for one (\`${slashCommand} whoami\` shows what to give them).`,
    );
  }
  return [...lines, ...notes].join('\n');
}

/**
 * Usage as mrkdwn. Help and errors are shown in Slack, where a bare `<host>`
 * would be read as a link: the brackets are written as entities.
 */
function mrkdwn(usage: string): string {
  return usage.replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

const fail = (error: string): ParseResult => ({ ok: false, error });
const ok = (command: SlackCommand): ParseResult => ({ ok: true, command });

/** A token as it may be shown back inside `code` in mrkdwn: no backticks, no raw `<`/`>`, not too long. */
function shown(token: string): string {
  const cut = [...token].length > 40 ? `${[...token].slice(0, 40).join('')}…` : token;
  return cut.replaceAll('`', "'").replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** Slack's three escapes undone, in one pass (so `&amp;lt;` becomes `&lt;`, not `<`). */
export function unescapeSlack(text: string): string {
  return text.replace(/&(amp|lt|gt);/g, (_, e: string) => (e === 'amp' ? '&' : e === 'lt' ? '<' : '>'));
}

/** White space as JavaScript's `\s` means it (Unicode spaces and line terminators), for one UTF-16 unit. */
const SPACE = /^\s$/;
const isSpace = (text: string, i: number) => SPACE.test(text[i] as string);

/**
 * The first word, the second, and the rest of the text (as typed, trimmed), in one pass that
 * reads each character at most twice. A regular expression doing the same
 * (`^\s*(\S*)\s*(\S*)\s*([\s\S]*?)\s*$`) backtracked over every run of spaces once per
 * character before it: 8,000 spaces took ~20 ms, 16,000 four times that, on the request path.
 */
export function splitCommandText(text: string): { verb: string; arg: string; rest: string } {
  const first = firstWord(text);
  const second = firstWord(first.rest);
  let end = second.rest.length;
  while (end > 0 && isSpace(second.rest, end - 1)) end--;
  return { verb: first.word, arg: second.word, rest: second.rest.slice(0, end) };
}

/** The first word of the text and what follows it, spaces before and after it skipped; one pass. */
function firstWord(text: string): { word: string; rest: string } {
  let i = 0;
  while (i < text.length && isSpace(text, i)) i++;
  const from = i;
  while (i < text.length && !isSpace(text, i)) i++;
  const word = text.slice(from, i);
  while (i < text.length && isSpace(text, i)) i++;
  return { word, rest: text.slice(i) };
}

type HostCheck = { ok: true; host: string } | { ok: false; error: string };

/** One host token: an id, a name, or a Slack link whose label is a name. */
function checkHost(token: string, example: string): HostCheck {
  const link = LINK_RE.exec(token);
  const host = link ? (link[2] ?? link[1] ?? '') : token;
  if (HOST_ID_RE.test(host) && Number(host) <= Number.MAX_SAFE_INTEGER) return { ok: true, host };
  if (/^[0-9]+$/.test(host)) {
    return {
      ok: false,
      error: `\`${shown(token)}\` is not a host id: ids are whole numbers from 1 to ${Number.MAX_SAFE_INTEGER} without leading zeros. Type the id or the name: \`${example}\``,
    };
  }
  if (HOST_NAME_RE.test(host)) return { ok: true, host };
  if (token.startsWith('<') && !link) {
    return {
      ok: false,
      error: `\`${shown(token)}\` is a Slack mention or link, not a host. Type the host's id or name: \`${example}\``,
    };
  }
  return {
    ok: false,
    error: `\`${shown(token)}\` is not a host: give its id (e.g. \`101\`) or its name (letters, digits, \`.\`, \`_\`, \`-\`, at most 63): \`${example}\``,
  };
}

/**
 * One host, or (`several`: an operation) several comma-separated ones. `usage`
 * is what to type, `example` a command that works.
 */
function checkHosts(
  list: string,
  verb: string,
  usage: Usage,
  several: boolean,
  cmd: string,
): { ok: true; hosts: string[] } | { ok: false; error: string } {
  const example = `${cmd} ${usage.example}`;
  if (list === '') {
    return { ok: false, error: `\`${verb}\` needs a host: \`${cmd} ${mrkdwn(usage.args)}\`, e.g. \`${example}\`` };
  }
  const parts = list.split(',');
  if ((parts.length > 1 || isSelectorToken(list)) && !several) {
    return { ok: false, error: `\`${verb}\` takes one host at a time. Type \`${example}\`` };
  }
  if (parts.includes('all')) {
    return {
      ok: false,
      error: `\`all\` names every host and stands alone; it does not go in a list of hosts: \`${cmd} ${verb} all [reason…]\``,
    };
  }
  if (parts.some((p) => p === '')) {
    return {
      ok: false,
      error: `\`${shown(list)}\` has an empty host: separate hosts with commas and no spaces: \`${cmd} ${verb} 101,102,ocp-host-3 [reason…]\``,
    };
  }
  if (parts.length > MAX_BATCH_HOSTS) {
    return {
      ok: false,
      error: `${parts.length} hosts are too many for one batch: at most ${MAX_BATCH_HOSTS}. Split them: \`${cmd} ${verb} &lt;host&gt;,&lt;host&gt;,…\``,
    };
  }
  const hosts: string[] = [];
  const seen = new Set<string>();
  for (const part of parts) {
    const checked = checkHost(part, example);
    if (!checked.ok) return checked;
    // Host names are case-insensitive (DNS); an id and a name of one host are caught on lookup.
    const key = checked.host.toLowerCase();
    if (seen.has(key)) {
      return {
        ok: false,
        error: `\`${shown(checked.host)}\` is named twice: name each host once, e.g. \`${cmd} ${verb} 101,102\``,
      };
    }
    seen.add(key);
    hosts.push(checked.host);
  }
  return { ok: true, hosts };
}

/** How the batch options are typed, for help and errors. */
export const BATCH_OPTIONS_USAGE = '`canary=<n>`, `maxFailures=<n|n%>`, `maxParallel=<n>`';

/** One batch option token's value, checked as the API checks the field; an error names it. */
function readBatchOption(
  name: BatchOptionName,
  value: string,
  batch: BatchOptionsInput,
  usage: string,
): string | undefined {
  if (Object.hasOwn(batch, name)) return `\`${name}\` is given twice: ${usage}`;
  const parsed = BATCH_OPTION_FIELDS[name].safeParse(value);
  if (!parsed.success || parsed.data === undefined) {
    const why = parsed.success ? 'needs a value' : (parsed.error.issues[0]?.message ?? 'is not valid');
    return `\`${shown(`${name}=${value}`)}\`: ${name} ${mrkdwn(why.replaceAll('`', "'"))}. Type ${usage}`;
  }
  (batch as Record<string, unknown>)[name] = parsed.data;
  return undefined;
}

/**
 * After the hosts (SPEC §10): leading `name=value` tokens are the operation's
 * parameters, each declared and taking its value, or a batch's options
 * (`canary`, `maxFailures`, `maxParallel`); the first other token begins the
 * reason. Every declared parameter must be given.
 */
function readParams(
  op: OperationDef,
  text: string,
  cmd: string,
): { ok: true; params: Record<string, string>; batch: BatchOptionsInput; rest: string } | { ok: false; error: string } {
  const usage = `\`${cmd} ${mrkdwn(usageOf(op))}\``;
  const params: Record<string, string> = {};
  const batch: BatchOptionsInput = {};
  let rest = text;
  for (;;) {
    const { word: token, rest: after } = firstWord(rest);
    const eq = token.indexOf('=');
    if (eq <= 0) break;
    const name = token.slice(0, eq);
    const value = token.slice(eq + 1);
    if ((BATCH_OPTION_NAMES as readonly string[]).includes(name)) {
      const error = readBatchOption(name as BatchOptionName, value, batch, usage);
      if (error) return { ok: false, error };
      rest = after;
      continue;
    }
    const spec = Object.hasOwn(op.params, name) ? op.params[name] : undefined;
    if (!spec) {
      const declared = Object.keys(op.params);
      const takesWhat =
        declared.length === 0 ? 'takes no parameters' : `takes ${declared.map((n) => `\`${n}\``).join(', ')}`;
      return {
        ok: false,
        error: `\`${shown(name)}\` is not a parameter of \`${op.name}\`, which ${takesWhat} (a batch also takes ${BATCH_OPTIONS_USAGE}): ${usage}`,
      };
    }
    if (Object.hasOwn(params, name)) return { ok: false, error: `\`${shown(name)}\` is given twice: ${usage}` };
    if (!paramAccepts(spec, value)) {
      return { ok: false, error: `\`${shown(token)}\`: ${mrkdwn(paramUsage(name, spec))}. Type ${usage}` };
    }
    params[name] = value;
    rest = after;
  }
  const missing = Object.keys(op.params).filter((n) => !Object.hasOwn(params, n));
  if (missing.length > 0) {
    return { ok: false, error: `\`${op.name}\` needs ${missing.map((n) => `\`${n}=…\``).join(', ')}: ${usage}` };
  }
  return { ok: true, params, batch, rest };
}

/** What a verb that takes a fixed number of words says about the words beyond them. */
const TAKES: Partial<Record<OtherVerb, string>> = {
  agent: 'one host',
  history: 'one host',
  status: 'one task id',
  list: 'nothing',
  whoami: 'nothing',
};

function noMore(verb: OtherVerb, rest: string, cmd: string): ParseResult | undefined {
  if (rest === '') return undefined;
  const hint = verb === 'list' ? `; for one host's tasks type \`${cmd} history &lt;host&gt;\`` : '';
  return fail(
    `\`${verb}\` takes ${TAKES[verb] === 'nothing' ? 'no more words' : `${TAKES[verb]} and nothing more`}, not \`${shown(rest)}\`: type \`${cmd} ${USAGE[verb].example}\`${hint}`,
  );
}

/**
 * The token naming an operation's hosts (SPEC §10): a selector when it holds
 * `=` or is `all`, else a host or a comma list of hosts.
 */
function checkTarget(
  token: string,
  op: OperationDef,
  cmd: string,
): { ok: true; hosts: string[]; selector?: Selector } | { ok: false; error: string } {
  if (!isSelectorToken(token)) return checkHosts(token, op.name, usageOfOperation(op), true, cmd);
  const parsed = parseSelector(token);
  if (parsed.ok) return { ok: true, hosts: [], selector: parsed.selector };
  return {
    ok: false,
    error: `\`${shown(token)}\` is not a selector: it ${mrkdwn(parsed.error.replaceAll('`', "'"))}. Type labels that must all match, e.g. \`${cmd} ${op.name} ${SELECTOR_EXAMPLE} [reason…]\`, or \`${cmd} ${op.name} all\``,
  };
}

/** An operation's command: its hosts (or a selector), its parameters, then the reason. */
function parseOperation(op: OperationDef, arg: string, rest: string, cmd: string): ParseResult {
  const usage = usageOfOperation(op);
  const checked = checkTarget(arg, op, cmd);
  if (!checked.ok) return fail(checked.error);
  const read = readParams(op, rest, cmd);
  if (!read.ok) return fail(read.error);
  const reason = unescapeSlack(read.rest).trim();
  const length = [...reason].length;
  if (length > MAX_REASON_CHARS) {
    return fail(
      `The reason is ${length} characters long; keep it to ${MAX_REASON_CHARS}: \`${cmd} ${mrkdwn(usage.args)}\``,
    );
  }
  return ok({
    kind: 'run',
    operation: op.name,
    hosts: checked.hosts,
    ...(checked.selector === undefined ? {} : { selector: checked.selector }),
    params: read.params,
    ...(Object.keys(read.batch).length > 0 ? { batch: read.batch } : {}),
    ...(reason !== '' ? { reason } : {}),
  });
}

/** Parse the text after the slash command: an operation of the registry, or another verb. Empty text is help. */
export function parseCommandText(
  text: string,
  slashCommand = '/ocp-agent',
  operations: readonly OperationDef[] = BUILTIN_OPERATIONS,
): ParseResult {
  const cmd = slashCommand;
  const { verb: rawVerb, arg, rest } = splitCommandText(text);
  if (rawVerb === '') return ok({ kind: 'help' });
  const verb = rawVerb.toLowerCase();
  const op = findOperation(operations, verb);
  if (op) return parseOperation(op, arg, rest, cmd);
  switch (verb) {
    case 'help':
      return ok({ kind: 'help' });
    case 'agent':
    case 'history': {
      const checked = checkHosts(arg, verb, USAGE[verb], false, cmd);
      if (!checked.ok) return fail(checked.error);
      const more = noMore(verb, rest, cmd);
      if (more) return more;
      return ok({ kind: verb, host: checked.hosts[0] as string });
    }
    case 'status': {
      if (arg === '') return fail(`\`status\` needs a task id: \`${cmd} status 1234\``);
      const id = arg.startsWith('#') ? arg.slice(1) : arg;
      if (!TASK_ID_RE.test(id) || !Number.isSafeInteger(Number(id))) {
        return fail(
          `\`${shown(arg)}\` is not a task id: ids are whole numbers from 1 to ${Number.MAX_SAFE_INTEGER} without leading zeros, e.g. \`${cmd} status 1234\``,
        );
      }
      const more = noMore('status', rest, cmd);
      if (more) return more;
      return ok({ kind: 'status', taskId: Number(id) });
    }
    case 'list':
    case 'whoami': {
      const more = noMore(verb, [arg, rest].filter(Boolean).join(' '), cmd);
      if (more) return more;
      return ok({ kind: verb });
    }
    default: {
      const verbs = [...operations.map((o) => o.name), ...OTHER_VERBS];
      return fail(
        `Unknown command \`${shown(rawVerb)}\`. Commands: ${verbs.map((v) => `\`${v}\``).join(', ')}. Type \`${cmd} help\` for usage.`,
      );
    }
  }
}
