/**
 * What the executor needs from the outside world, as ports; the SSH runner is
 * one adapter, a benchmark's instant runner another.
 */
import type { HostConfig, JumpHost } from '../config.js';

export interface StepTarget {
  hostId: number;
  address: string;
  port: number;
  username: string;
  /** The key to log in with (absolute path); none: the ssh-agent. */
  privateKeyPath?: string;
  /** Folder on the host for each step's pid, output and exit code files. */
  stateDir: string;
  /** Every script on the host (steps, their state files, cancel, status) runs as this user, by `sudo -n -u`. */
  become?: string;
  /** The bastion whose connection carries this host's (as ProxyJump). */
  jump?: JumpHost;
}

/** Where and as whom a configured host is reached. */
export function targetOf(host: HostConfig): StepTarget {
  const { id: hostId, address, port, username, privateKeyPath, stateDir, become, jump } = host;
  return {
    hostId,
    address,
    port,
    username,
    ...(privateKeyPath === undefined ? {} : { privateKeyPath }),
    stateDir,
    ...(become === undefined ? {} : { become: become.user }),
    ...(jump === undefined ? {} : { jump }),
  };
}

/**
 * The key of one run of a subtask on its host, `<epoch>-<taskId>-<subtaskId>-<runTime>`:
 * launching it twice runs it once, and a cancel finds the run by it.
 */
export function runKeyOf(epoch: string, run: { taskId: number; subtaskId: number; runTime: number }): string {
  return `${epoch}-${run.taskId}-${run.subtaskId}-${run.runTime}`;
}

export interface StepSpec {
  target: StepTarget;
  /** Unique per subtask run (see runKeyOf): launching it twice runs it once. */
  runKey: string;
  /** Rendered from the configured runbook when the step starts; never read from NATS storage. */
  script: string;
  timeoutSeconds: number;
  /** Epoch seconds after which the step is no longer launched on the host (only attached to); none: any time. */
  launchBy?: number;
  /**
   * Only wait for a run already launched under this key; never launch one
   * (the result ends `notLaunched`). For a step taken over after its
   * configuration changed: what a dead executor launched is waited for, and
   * nothing of the new configuration starts.
   */
  attachOnly?: boolean;
}

/**
 * How a run ended on the host, by the wrapper's own word (a step's own exit
 * code is never taken for it):
 * - `exited`: the step ran to its end; `exitCode` is its own, 0 or not;
 * - `timedOut`: killed at its timeout;
 * - `canceled`: ended, or kept from starting, by a cancel;
 * - `vanished`: its process disappeared without an exit code (a reboot, a kill -9 of its session);
 * - `late`: never launched: the host was reached only after `launchBy`;
 * - `notLaunched`: `attachOnly` found no run under its key, and launched none.
 */
export type StepEnd = 'exited' | 'timedOut' | 'canceled' | 'vanished' | 'late' | 'notLaunched';

export interface StepResult {
  end: StepEnd;
  exitCode: number;
  /** The tail of stdout and stderr together, at most 64 KiB. */
  output: string;
  truncated: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface StepRunner {
  /**
   * Run the step on the host, or attach to it if it already runs there (a
   * takeover), and wait for its end. Rejects only with a StepError (see
   * step-failure.ts) — the host cannot be reached, refuses us, or has no room
   * for the run's files; a step that fails resolves with how it ended.
   */
  run(spec: StepSpec): Promise<StepResult>;
  /** Run a short read-only command on the host (the agent's status), under `timeout`; rejects with a StepError. */
  exec(target: StepTarget, command: string, timeoutSeconds: number): Promise<ExecResult>;
  /** End the step's process group on the host; its waiter sees it canceled. Rejects with a StepError. */
  cancel(target: StepTarget, runKey: string): Promise<void>;
  close(): Promise<void>;
}

/** Seconds a step gets between TERM at its timeout and KILL. */
export const KILL_AFTER_SECONDS = 5;

/** Most output kept per subtask (SPEC §3: 64 KiB, the tail kept). */
export const MAX_LOG_BYTES = 64 * 1024;
