/**
 * Why a step failed, as data (Temporal's `ApplicationFailure{type,
 * nonRetryable}`): whoever decides — attach again or give up — reads `kind`,
 * never the message; the message is for people (the subtask log, Slack).
 * A StepRunner rejects only with a StepError; anything else it lets escape is
 * wrapped once by `asStepError`.
 */
import type { StepResult } from './ports.js';

/** Every kind of step failure, and whether it is `retryable`: the step may still run, so attach to it again. */
const RETRYABLE = {
  /** The host could not be reached, or the connection was cut: the step may run on there, detached. */
  unreachable: true,
  /** The host's key is unknown or changed: never connected, nothing launched. */
  hostKey: false,
  /** No key to log in with: none readable, or encrypted without its passphrase, or no agent: never connected. */
  credentials: false,
  /** The host (or its bastion) refused the login with the key or agent given: nothing launched. */
  login: false,
  /** `sudo -n -u <become>` was refused (a password wanted, no such user): nothing launched. */
  become: false,
  /** The run's state folder cannot be made on the host: nothing launched. */
  noStateDir: false,
  /** The step's configuration changed since the task was planned: nothing of it launched. */
  configChanged: false,
  /** Killed at its timeout. */
  timeout: false,
  /** Ended, or kept from starting, by a cancel. */
  canceled: false,
  /** Gone without an exit code (a reboot, a kill -9), or never launched: not reached within its launch window. */
  vanished: false,
  /** Ran to its end with a failing exit code (a step's, or a cancel's). */
  exitCode: false,
} as const satisfies Record<string, boolean>;

export type StepFailureKind = keyof typeof RETRYABLE;

export const STEP_FAILURE_KINDS = Object.keys(RETRYABLE) as StepFailureKind[];

export interface StepFailure {
  kind: StepFailureKind;
  /** The step may still run on the host: attach to it again rather than give up. */
  retryable: boolean;
  /** What people read: the end of the subtask's log, Slack's reply. */
  message: string;
}

/**
 * Facts of a failure beyond its kind, as data, for whoever advises on it (the
 * doctor): which server refused, and for a host key, why.
 */
export interface StepErrorDetail {
  /** A host key refused: unknown to known_hosts, changed, or revoked. */
  hostKey?: 'unknown' | 'changed' | 'revoked';
  /** The server that refused or could not be reached: `user@address:port`. */
  server?: string;
  /** It was the bastion in front of the host. */
  bastion?: boolean;
}

export class StepError extends Error implements StepFailure {
  readonly kind: StepFailureKind;
  readonly retryable: boolean;
  readonly detail: StepErrorDetail;
  constructor(kind: StepFailureKind, message: string, detail: StepErrorDetail = {}) {
    super(message);
    this.name = 'StepError';
    this.kind = kind;
    this.retryable = RETRYABLE[kind];
    this.detail = detail;
  }
}

/**
 * A StepError as it is; anything else a runner let escape (a bug, a library's
 * own error) as `unreachable`: nothing says the step did not start, so it is
 * attached to again rather than the host freed under it.
 */
export function asStepError(err: unknown): StepError {
  if (err instanceof StepError) return err;
  return new StepError('unreachable', err instanceof Error ? err.message : String(err));
}

export function stepFailure(kind: StepFailureKind, message: string): StepFailure {
  return { kind, retryable: RETRYABLE[kind], message };
}

/** What a failure's message says that the result alone does not. */
export interface FailureContext {
  /** The step's timeout (s). */
  timeoutSeconds: number;
  /** How long after its subtask began a step may still be launched (s). */
  launchWindowSeconds: number;
  /** Why a taken-over step launched nothing (its configuration changed: the reason). */
  notLaunchedReason: string;
}

/** How a run that ended on the host failed; undefined when it succeeded. */
export function failureOfResult(result: StepResult, ctx: FailureContext): StepFailure | undefined {
  switch (result.end) {
    case 'exited':
      return result.exitCode === 0 ? undefined : stepFailure('exitCode', `exit code ${result.exitCode}`);
    case 'timedOut':
      return stepFailure('timeout', `timed out after ${ctx.timeoutSeconds} s`);
    case 'canceled':
      return stepFailure('canceled', 'canceled');
    case 'vanished':
      // The wrapper's own code (WRAPPER_EXIT.vanished); its words end the output.
      return stepFailure('vanished', `exit code ${result.exitCode}`);
    case 'late':
      return stepFailure(
        'vanished',
        `not started: the host could not be reached within ${ctx.launchWindowSeconds} s of the subtask's start (Retry runs it)`,
      );
    case 'notLaunched':
      return stepFailure('configChanged', ctx.notLaunchedReason);
  }
}

/** The words a failure ends the subtask's log with: a host out of reach for good says so. */
export function finalMessage(failure: StepFailure): string {
  return failure.kind === 'unreachable' ? `host unreachable: ${failure.message}` : failure.message;
}
