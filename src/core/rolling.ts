/**
 * Rolling and safe batches (SPEC §10): which of a batch's host chains may
 * start next, and when a batch that will start no more has ended. Pure: the
 * store applies these to a batch's progress record (task.<id>.p) by
 * compare-and-set, so every process judges alike.
 *
 * Chains open in request order (chain `j` is the j-th host asked for): the
 * progress's `opened` says chains [0, opened) may start. So the canary is the
 * prefix [0, canary), and "hosts never started" are the suffix [opened, n).
 */
import type { OcpTask } from '../contracts/ocp-task.js';
import { formatOcpTime } from './time.js';

/** Per-batch options, fixed when the batch is created (config `batch:` defaults, overridden per request). */
export interface BatchOptions {
  /** Chains that may run at once. Absent: all. */
  maxParallel?: number;
  /** The first this many hosts (in request order) run first and alone; the rest only once every one succeeded. 0 or absent: none. */
  canary?: number;
  /**
   * Failed hosts tolerated: a count, or a share of the batch's hosts as
   * `"<n>%"` (rounded down). Past it no new host starts and the batch ends
   * FAILED once what runs has finished. Absent: no limit.
   */
  maxFailures?: number | string;
}

/** A batch option as a request gives it, before it is checked against the batch. */
export interface BatchRequest {
  maxParallel?: number;
  canary?: number;
  maxFailures?: number | string;
}

/** What the rules read of a batch's progress. */
export interface RollingState {
  /** How many chains the batch has. */
  chains: number;
  /** Chains [0, opened) may start (or have). */
  opened: number;
  /** Chains at rest, and those of them that failed. */
  rested: number;
  failed: number;
  /** Whether a canary chain (index < canary) has failed. */
  canaryFailed: boolean;
  /** Whether every canary chain is at rest. */
  canaryRested: boolean;
  paused: boolean;
  canceled: boolean;
  /** The batch is being rolled back: only the chains that failed run again; none starts anew. */
  rollingBack: boolean;
}

/**
 * Why no new chain may start: the batch was canceled, a canary failed, too
 * many hosts failed, it is being rolled back (each of which ends it once
 * nothing runs), or it is paused (which waits). Undefined: chains may start.
 */
export type Hold = 'canceled' | 'canary' | 'maxFailures' | 'rollback' | 'paused';

/** How many hosts may fail before the batch stops (a percentage of `chains`, rounded down). */
export function failureLimit(maxFailures: number | string | undefined, chains: number): number {
  if (maxFailures === undefined) return Number.POSITIVE_INFINITY;
  if (typeof maxFailures === 'number') return maxFailures;
  const share = Number.parseFloat(maxFailures);
  return Math.floor((chains * share) / 100 + 1e-9);
}

/** Why no new chain may start now; undefined when they may. The stops come before a pause. */
export function holdOf(options: BatchOptions, s: RollingState): Hold | undefined {
  if (s.canceled) return 'canceled';
  if (s.canaryFailed) return 'canary';
  if (s.failed > failureLimit(options.maxFailures, s.chains)) return 'maxFailures';
  if (s.rollingBack && s.opened < s.chains) return 'rollback';
  if (s.paused) return 'paused';
  return undefined;
}

/** Whether a hold ends the batch once nothing runs (a pause does not: it waits for Resume). */
export function stops(hold: Hold | undefined): boolean {
  return hold !== undefined && hold !== 'paused';
}

/** Chains under way: opened and not at rest. */
export function activeChains(s: Pick<RollingState, 'opened' | 'rested'>): number {
  return Math.max(0, s.opened - s.rested);
}

/**
 * How far `opened` may go now: past the canary only when every canary chain
 * has succeeded, never more than maxParallel under way, nothing while held.
 */
export function openUpTo(options: BatchOptions, s: RollingState): number {
  if (holdOf(options, s) !== undefined) return s.opened;
  const canary = Math.min(options.canary ?? 0, s.chains);
  const limit = s.opened < canary || !s.canaryRested ? canary : s.chains;
  const slots = Math.max(0, (options.maxParallel ?? s.chains) - activeChains(s));
  return Math.max(s.opened, Math.min(limit, s.opened + slots));
}

/** Chains a new batch opens at once: the canary's (or the first maxParallel), nothing else. */
export function firstOpening(options: BatchOptions, chains: number): number {
  return openUpTo(options, {
    chains,
    opened: 0,
    rested: 0,
    failed: 0,
    canaryFailed: false,
    canaryRested: (options.canary ?? 0) === 0,
    paused: false,
    canceled: false,
    rollingBack: false,
  });
}

/**
 * Whether the batch has come to its end: every chain at rest, or — stopped
 * (canceled, a canary failed, too many failures, a rollback) — every chain
 * that opened at rest, those never started left PENDING.
 */
export function batchOver(options: BatchOptions, s: RollingState): boolean {
  if (s.rested >= s.chains) return true;
  return stops(holdOf(options, s)) && activeChains(s) === 0;
}

/**
 * A stopped batch ended (see batchOver): FAILED — a rollback's end is judged by
 * its rollback steps alone, as settle judges it — with the hosts never started
 * left PENDING.
 */
export function endStopped(task: OcpTask, now: Date): OcpTask {
  if (task.status !== 'RUNNING') return task;
  const rollback = task.subtasks.filter((s) => s.operation === 'ROLLBACK');
  const repaired = task.operation === 'ROLLBACK' && rollback.every((s) => s.status === 'SUCCESSFUL');
  return { ...task, status: repaired ? 'SUCCESSFUL' : 'FAILED', finishTime: formatOcpTime(now) };
}

/** A bad option, naming its field, for a 400 / 10001. */
export interface OptionProblem {
  field: 'maxParallel' | 'canary' | 'maxFailures';
  message: string;
}

const PERCENT = /^([0-9]{1,3}(?:\.[0-9]{1,3})?)%$/;

/**
 * The options of a batch of `hosts` hosts: the request's over the configured
 * defaults, each checked against the batch (a canary larger than the batch,
 * a share above 100%); undefined options keep no entry.
 */
export function resolveBatchOptions(
  defaults: BatchRequest,
  request: BatchRequest | undefined,
  hosts: number,
): { ok: true; options: BatchOptions } | { ok: false; problem: OptionProblem } {
  const merged = { ...defaults, ...request };
  const options: BatchOptions = {};
  if (merged.maxParallel !== undefined) options.maxParallel = merged.maxParallel;
  if (request?.canary !== undefined && request.canary > hosts) {
    return {
      ok: false,
      problem: {
        field: 'canary',
        message: `canary: ${request.canary} is more than the batch's ${hosts} host${hosts === 1 ? '' : 's'}`,
      },
    };
  }
  // A configured default larger than a small batch makes every host a canary.
  const canary = Math.min(merged.canary ?? 0, hosts);
  if (canary > 0) options.canary = canary;
  if (merged.maxFailures !== undefined) {
    const m = merged.maxFailures;
    if (typeof m === 'string') {
      const share = PERCENT.exec(m);
      if (!share || Number(share[1]) > 100) {
        return {
          ok: false,
          problem: {
            field: 'maxFailures',
            message: `maxFailures: "${m}" is not a count or a percentage from 0% to 100%`,
          },
        };
      }
    }
    options.maxFailures = m;
  }
  return { ok: true, options };
}

/** The options as the task shows them in `context.stringMap` (those set). */
export function optionsStringMap(options: BatchOptions): Record<string, string> {
  const out: Record<string, string> = {};
  if (options.maxParallel !== undefined) out.maxParallel = String(options.maxParallel);
  if (options.canary !== undefined) out.canary = String(options.canary);
  if (options.maxFailures !== undefined) out.maxFailures = String(options.maxFailures);
  return out;
}
