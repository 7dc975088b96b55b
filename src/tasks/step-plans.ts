/**
 * Only configured scripts reach a host (SPEC §7, §9). A task records which
 * runbook step each subtask runs and digests of what that rendered when the
 * task was planned; the executor renders the step again from the live
 * configuration when it starts, and runs that — never a script read from NATS.
 * When the digest differs, the configuration changed since: the step fails
 * "configuration changed", and Retry plans it again with the configuration of
 * that moment.
 *
 * Planner and executor render through the same function (`renderStep`, on
 * core's `planStep`), so a digest taken at plan time matches the one taken at
 * run time exactly when nothing that matters changed.
 */
import { createHash } from 'node:crypto';
import { type Config, findHost, type HostConfig } from '../config.js';
import type { OcpSubtask } from '../contracts/ocp-task.js';
import { paramsSchema } from '../contracts/params.js';
import { BATCH_RESTART, RESTART } from '../core/runbooks/builtin.js';
import { planStep, type StepRef } from '../core/task.js';
import {
  addSteps,
  type Draft,
  hostsStillToRun,
  type PlannedRef,
  type RecordSteps,
  type TaskRecord,
} from '../core/task-record.js';
import { CodedError, ErrorCode } from '../errors.js';
import { operationOfTask } from '../operations/registry.js';
import { hostOrThrow } from './find-or-throw.js';

/** What a step plan is: which step of which runbook. */
export interface StepSource {
  runbook: string;
  step: number;
}

/** A step as the live configuration renders it for one host. */
export interface RenderedStep {
  name: string;
  /** Seconds. */
  timeout: number;
  script: string;
  digest: string;
}

/** 64 bits of SHA-256 over a value's JSON: enough to notice a change, short enough for a fleet's record. */
function digestOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/**
 * The host settings a step depends on: where and as whom it runs, where its
 * run files live, what its script quotes in, which key logs in, the bastion it is
 * reached through, the user it becomes and the group that gave them (SPEC §9).
 * An unset field adds nothing, so adding a setting kept older digests.
 */
export function hostDigest(host: HostConfig): string {
  const { address, port, username, agentHome, stateDir, privateKeyPath, group, become, jump } = host;
  return digestOf({ address, port, username, agentHome, stateDir, privateKeyPath, group, become: become?.user, jump });
}

/** A task's parameters: none, or its operation's, as the task holds them. */
export type TaskParams = Readonly<Record<string, string>>;

/**
 * The parameters of a task's operation, read from the task and checked again
 * against the operation's declaration as configured now: a value the
 * configuration does not allow (the task's stored copy changed, or the
 * declaration did) never reaches a host.
 */
export function paramsOfTask(
  config: Config,
  task: { name: string; context: { stringMap: Readonly<Record<string, string>> } },
): TaskParams | { missing: string } {
  const named = task.context.stringMap.operation;
  const op = operationOfTask(config.operations, task);
  if (!op) return named === undefined ? {} : { missing: `operation "${named}" is no longer configured` };
  const names = Object.keys(op.params);
  if (names.length === 0) return {};
  const given = Object.fromEntries(names.map((n) => [n, task.context.stringMap[n]]));
  const checked = paramsSchema(op.params).safeParse(given);
  if (!checked.success) {
    const bad = checked.error.issues.map((i) => i.path.join('.')).join(', ');
    return { missing: `parameter ${bad} of operation "${op.name}" is not what its configuration allows` };
  }
  return checked.data;
}

/** Step `source.step` of runbook `source.runbook` for `host`, as the configuration renders it now. */
export function renderStep(
  config: Config,
  source: StepSource,
  host: HostConfig,
  params: TaskParams = {},
): RenderedStep | { missing: string } {
  const runbook = config.runbooks.find((r) => r.name === source.runbook);
  if (!runbook) return { missing: `runbook "${source.runbook}" is no longer configured` };
  const step = runbook.steps[source.step];
  if (!step) return { missing: `runbook "${source.runbook}" has no step ${source.step + 1} any more` };
  const { script } = planStep(step, { id: host.id, agentHome: host.agentHome }, config.ssh.killGraceSeconds, params);
  const digest = digestOf({ runbook: runbook.name, step: source.step, name: step.name, timeout: step.timeout, script });
  return { name: step.name, timeout: step.timeout, script, digest };
}

/** Plans for the given subtasks, rendered from the configuration now, with their hosts' digests. */
export function planSteps(
  config: Config,
  sources: Record<string, StepSource & { hostId: number }>,
  params: TaskParams = {},
): { planned: Record<string, PlannedRef & { rendered: RenderedStep }>; hostDigests: Record<string, string> } {
  const planned: Record<string, PlannedRef & { rendered: RenderedStep }> = {};
  const hostDigests: Record<string, string> = {};
  // A fleet's hosts mostly share an agentHome: render (and digest) each step once per agentHome.
  const seen = new Map<string, RenderedStep | { missing: string }>();
  const hosts = new Map<number, HostConfig>();
  for (const [id, { hostId, runbook, step }] of Object.entries(sources)) {
    const host = hosts.get(hostId) ?? hostOrThrow({ config }, hostId);
    hosts.set(hostId, host);
    const key = `${runbook}\u0000${step}\u0000${host.agentHome}`;
    const rendered = seen.get(key) ?? renderStep(config, { runbook, step }, host, params);
    seen.set(key, rendered);
    if ('missing' in rendered) throw new CodedError(ErrorCode.illegalState, `${rendered.missing}: start a new task`);
    planned[id] = { hostId, plan: { runbook, step, digest: rendered.digest }, rendered };
    hostDigests[String(hostId)] ??= hostDigest(host);
  }
  return { planned, hostDigests };
}

/** A new task's steps: each subtask's step of `runbook` on its host. */
export function stepsOfPlan(
  config: Config,
  runbook: string,
  refs: Record<string, StepRef>,
  params: TaskParams = {},
): RecordSteps {
  const sources = Object.fromEntries(Object.entries(refs).map(([id, r]) => [id, { ...r, runbook }]));
  const { planned, hostDigests } = planSteps(config, sources, params);
  return addSteps({ steps: {} }, planned, hostDigests);
}

/**
 * Which runbook step a subtask of a record runs. Records of older versions
 * named none: their task's name (a batch restarts; a rollback step comes from
 * Restart, SPEC §2) and the subtask's name say which.
 */
export function sourceOf(record: Pick<TaskRecord, 'task' | 'steps' | 'plans'>, subtask: OcpSubtask, config: Config) {
  const stored = record.steps[String(subtask.id)];
  const plan = stored?.plan === undefined ? undefined : record.plans?.[stored.plan];
  if (plan) return { runbook: plan.runbook, step: plan.step };
  const name = subtask.operation === 'ROLLBACK' || record.task.name === BATCH_RESTART ? RESTART : record.task.name;
  const step = config.runbooks.find((r) => r.name === name)?.steps.findIndex((s) => s.name === subtask.name) ?? -1;
  return step < 0 ? undefined : { runbook: name, step };
}

/** What the executor runs for a subtask, rendered now; or why it may not run. */
export type StepToRun =
  | { ok: true; host: HostConfig; name: string; timeout: number; script: string }
  | { ok: false; host?: HostConfig; reason: string };

const RETRY_HINT = 'Retry takes the new configuration';

/**
 * The script a subtask runs now, from the live configuration: only when its
 * runbook step and its host's settings are what the task was planned with.
 * Undefined for a subtask the record has no step for.
 */
export function stepToRun(config: Config, record: TaskRecord, subtaskId: number): StepToRun | undefined {
  const stored = record.steps[String(subtaskId)];
  const subtask = record.task.subtasks.find((s) => s.id === subtaskId);
  if (!stored || !subtask) return undefined;
  const host = findHost(config, stored.hostId);
  if (!host) return { ok: false, reason: `configuration changed: host ${stored.hostId} is no longer in the inventory` };
  const changed = (what: string): StepToRun => ({
    ok: false,
    host,
    reason: `configuration changed: ${what}; ${RETRY_HINT}`,
  });

  const plan = stored.plan === undefined ? undefined : record.plans?.[stored.plan];
  const source = plan ?? sourceOf(record, subtask, config);
  if (!source) return changed(`no configured runbook has the step "${subtask.name}" any more`);
  const params = paramsOfTask(config, record.task);
  if ('missing' in params) return changed(params.missing);
  const rendered = renderStep(config, source, host, params);
  if ('missing' in rendered) return changed(rendered.missing);
  const ok: StepToRun = { ok: true, host, name: rendered.name, timeout: rendered.timeout, script: rendered.script };

  if (!plan) {
    // A record of an older version holds the script it was planned with: run
    // what the configuration renders, and only if that is the same script.
    const legacy = stored.script === undefined ? undefined : record.scripts?.[stored.script];
    return legacy === rendered.script
      ? ok
      : changed(
          `step "${subtask.name}" was planned by an older version with another script than the configuration renders now`,
        );
  }
  if (rendered.digest !== plan.digest) {
    return changed(
      `step "${rendered.name}" of runbook "${source.runbook}" (its command or timeout) is not what this task was planned with`,
    );
  }
  if (record.hostDigests?.[String(host.id)] !== hostDigest(host)) {
    return changed(
      `the settings of host ${host.id} (address, port, username, agentHome, stateDir) changed since this task was planned`,
    );
  }
  return ok;
}

/**
 * After an operation that sets hosts running again (retry, skip, rollback):
 * plan every step those hosts have still to run with the configuration of
 * this moment, so that the operator's action takes the new configuration, and
 * show each its timeout. A step whose runbook no longer has it cannot run
 * again: 409 / 20003.
 */
export function planReopened(config: Config, before: Pick<TaskRecord, 'task' | 'steps'>, after: Draft): Draft {
  const wasRunning = new Set(hostsStillToRun(before));
  const reopened = new Set(hostsStillToRun(after).filter((h) => !wasRunning.has(h)));
  const sources: Record<string, StepSource & { hostId: number }> = {};
  for (const s of after.task.subtasks) {
    const hostId = after.steps[String(s.id)]?.hostId;
    if (hostId === undefined || !reopened.has(hostId) || (s.status !== 'READY' && s.status !== 'PENDING')) continue;
    // A rolled-back task runs only its rollback steps; the rest stay PENDING for good.
    if (after.task.operation === 'ROLLBACK' && s.operation !== 'ROLLBACK') continue;
    const source = sourceOf(after, s, config);
    const runbook = source && config.runbooks.find((r) => r.name === source.runbook);
    // The step by its name: an edited runbook may have moved it.
    const step =
      runbook?.steps[source?.step ?? -1]?.name === s.name
        ? source?.step
        : runbook?.steps.findIndex((x) => x.name === s.name);
    if (!source || step === undefined || step < 0) {
      throw new CodedError(
        ErrorCode.illegalState,
        `subtask ${s.id} cannot run again: no configured runbook has the step "${s.name}" any more; start a new task`,
      );
    }
    sources[String(s.id)] = { hostId, runbook: source.runbook, step };
  }
  if (Object.keys(sources).length === 0) return after;
  const params = paramsOfTask(config, after.task);
  if ('missing' in params) throw new CodedError(ErrorCode.illegalState, `${params.missing}: start a new task`);
  const { planned, hostDigests } = planSteps(config, sources, params);
  const task = {
    ...after.task,
    subtasks: after.task.subtasks.map((s) => {
      const p = planned[String(s.id)];
      return p ? { ...s, timeout: p.rendered.timeout } : s;
    }),
  };
  return { ...after, task, ...addSteps(after, planned, hostDigests) };
}
