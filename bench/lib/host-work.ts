/**
 * What every tool runs on a host in the fleet benchmark: the five scripts of
 * the "Restart OCP agent" runbook, rendered exactly as the product renders
 * them. So ours, Ansible and parallel-ssh do identical work on the hosts; only
 * the way the scripts get there differs. And the check that a tool really did
 * that work on a host, read from the simulated agent's calls.log.
 */
import type { Config } from '../../src/config.js';
import { findRunbook } from '../../src/config.js';
import { RESTART } from '../../src/core/runbooks/builtin.js';
import { shellQuote } from '../../src/core/runbooks/runbook.js';
import { planStep } from '../../src/core/task.js';
import { type AgentCall, agentProcessPids, readCalls, type StepDurations } from '../../test/helpers/sim-agent.js';

/** The step times: status 0.05 s, restart pos_proxy 0.2 s, stop 0.5 s, start 0.5 s. */
export const STEP_DURATIONS: StepDurations = { status: 50, restart: 200, stop: 500, start: 500 };

/**
 * The agentctl call that begins each of the five steps (Prepare, Restart pos
 * proxy, Stop all, Start all, Finish). Start all also calls `status` twice
 * after `start` (wait until it exits 0, then print it): 7 calls per host.
 */
export const FIRST_CALL_OF_STEP = ['status', 'restart pos_proxy', 'stop', 'start', 'status'] as const;

/** Seconds of fixed agentctl time per host, sequentially: the floor of any tool. */
export function hostFloorSeconds(): number {
  const ms = (STEP_DURATIONS.status ?? 0) * 4 + (STEP_DURATIONS.restart ?? 0) + (STEP_DURATIONS.stop ?? 0);
  return (ms + (STEP_DURATIONS.start ?? 0)) / 1000;
}

export interface StepScript {
  name: string;
  script: string;
}

/** The five step scripts for one host, as the product renders them. */
export function restartScripts(config: Config, agentHome: string): StepScript[] {
  return findRunbook(config, RESTART).steps.map((step) => ({
    name: step.name,
    script: planStep(step, { id: 0, agentHome }, config.ssh.killGraceSeconds).script,
  }));
}

/**
 * The same five scripts with the agent's home read on the host from `$A`
 * instead of written in: parallel-ssh sends one command to every host, and
 * each simulated host has its agent in its own folder.
 */
export function restartScriptsWithHomeVariable(config: Config): StepScript[] {
  const values: Record<string, string> = {
    agentHome: '"$A"',
    agentctl: '"$A/bin/ocp_agentctl"',
    killGraceSeconds: shellQuote(String(config.ssh.killGraceSeconds)),
  };
  return findRunbook(config, RESTART).steps.map((step) => ({
    name: step.name,
    script: step.command.replace(/(?<!\$)\{([A-Za-z]+)\}/g, (whole, name: string) => values[name] ?? whole),
  }));
}

export interface HostCalls {
  /** begin time (epoch ms) of each step's first agentctl call, by step index; NaN when missing */
  begins: number[];
  /** end time of each step's last agentctl call */
  ends: number[];
}

function lastIndex<T>(xs: readonly T[], pred: (x: T) => boolean): number {
  for (let i = xs.length - 1; i >= 0; i--) if (pred(xs[i] as T)) return i;
  return -1;
}

/** Pair the host's calls.log with the five steps. */
export function callsByStep(calls: readonly AgentCall[]): HostCalls {
  const begins: AgentCall[] = calls.filter((c) => c.phase === 'begin');
  const idx: number[] = [];
  let from = 0;
  FIRST_CALL_OF_STEP.forEach((args, j) => {
    // Finish is the last `status`; the others are the first of theirs after the step before.
    const i =
      j === FIRST_CALL_OF_STEP.length - 1
        ? lastIndex(begins, (c) => c.args === args)
        : begins.findIndex((c, k) => k >= from && c.args === args);
    idx.push(i);
    if (i >= 0) from = i + 1;
  });
  const endOf = (b: AgentCall | undefined) =>
    b ? (calls.find((c) => c.phase === 'end' && c.pid === b.pid && c.at >= b.at)?.at ?? Number.NaN) : Number.NaN;
  return {
    begins: idx.map((i) => begins[i]?.at ?? Number.NaN),
    ends: idx.map((i, j) => {
      // the step's last call: everything before the next step's first call
      const next = idx[j + 1] ?? begins.length;
      if (i < 0) return Number.NaN;
      const last = begins.slice(i, j === idx.length - 1 ? i + 1 : next).at(-1);
      return endOf(last);
    }),
  };
}

/** Undefined when the host did the five steps (and its agent runs); else what is wrong. */
export function checkHost(agentHome: string): string | undefined {
  const calls = readCalls(agentHome);
  const begins = calls.filter((c) => c.phase === 'begin');
  const { begins: stepBegins } = callsByStep(calls);
  const missing = FIRST_CALL_OF_STEP.filter((_, j) => !Number.isFinite(stepBegins[j]));
  if (missing.length > 0) return `no ${missing.join(', ')} in calls.log (${begins.map((c) => c.args).join(', ')})`;
  // Every call ends; restart, stop and start succeed, and so does the last status (Finish). Other
  // `status` calls may say "not all running" (Start all waits with them until they do).
  const last = begins.at(-1);
  for (const b of begins) {
    const end = calls.find((c) => c.phase === 'end' && c.pid === b.pid && c.at >= b.at);
    if (!end) return `\`${b.args}\` never ended`;
    if (end.exit !== 0 && (b.args !== 'status' || b === last)) return `\`${b.args}\` exited ${end.exit}`;
  }
  const pids = agentProcessPids(agentHome).length;
  if (pids !== 4) return `${pids} of 4 agent processes run afterwards`;
  return undefined;
}
