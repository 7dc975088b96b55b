/**
 * What the executor needs from the outside world, as ports; the SSH runner is
 * one adapter, a benchmark's instant runner another.
 */
import type { HostConfig } from '../config.js';

export interface StepTarget {
  hostId: number;
  address: string;
  port: number;
  username: string;
  /** Folder on the host for each step's pid, output and exit code files. */
  stateDir: string;
}

/** Where and as whom a configured host is reached. */
export function targetOf(host: HostConfig): StepTarget {
  return { hostId: host.id, address: host.address, port: host.port, username: host.username, stateDir: host.stateDir };
}

export interface StepSpec {
  target: StepTarget;
  /** Unique per subtask run (`<epoch>-<taskId>-<subtaskId>-<runTime>`): launching it twice runs it once. */
  runKey: string;
  /** Rendered from the configured runbook when the step starts; never read from NATS storage. */
  script: string;
  timeoutSeconds: number;
  /** Epoch seconds after which the step is no longer launched on the host (only attached to); none: any time. */
  launchBy?: number;
  /**
   * Only wait for a run already launched under this key; never launch one
   * (the result says `notLaunched`). For a step taken over after its
   * configuration changed: what a dead executor launched is waited for, and
   * nothing of the new configuration starts.
   */
  attachOnly?: boolean;
}

export interface StepResult {
  exitCode: number;
  /** The tail of stdout and stderr together, at most 64 KiB. */
  output: string;
  truncated: boolean;
  timedOut: boolean;
  canceled: boolean;
  /** Never launched: the host was reached only after `launchBy`. */
  notStarted?: boolean;
  /** `attachOnly` found no run under its key, and launched none. */
  notLaunched?: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface StepRunner {
  /**
   * Run the step on the host, or attach to it if it already runs there (a
   * takeover), and wait for its end. Rejects only when the host cannot be
   * reached or refuses us; a step that fails resolves with its exit code.
   */
  run(spec: StepSpec): Promise<StepResult>;
  /** Run a short read-only command on the host (the agent's status), under `timeout`. */
  exec(target: StepTarget, command: string, timeoutSeconds: number): Promise<ExecResult>;
  /** End the step's process group on the host; its waiter sees it canceled. */
  cancel(target: StepTarget, runKey: string): Promise<void>;
  close(): Promise<void>;
}

/** Seconds a step gets between TERM at its timeout and KILL. */
export const KILL_AFTER_SECONDS = 5;

/** Most output kept per subtask (SPEC §3: 64 KiB, the tail kept). */
export const MAX_LOG_BYTES = 64 * 1024;
