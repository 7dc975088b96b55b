/**
 * What the CLI prints of tasks: a task's steps, a listing, the lines that
 * follow a task live, a batch's progress bar. Pure: no I/O.
 */
import type { OcpSubtask, OcpTask } from '../contracts/ocp-task.js';

type TaskHead = Omit<OcpTask, 'subtasks'> & { subtasks?: OcpSubtask[] };

const ms = (s?: string) => (s === undefined ? undefined : Date.parse(s));

/** "0.4 s", "12 s", "3 min 05 s". */
export function seconds(durationMs: number): string {
  if (!(durationMs >= 0)) return '0.0 s';
  if (durationMs < 10_000) return `${(durationMs / 1000).toFixed(1)} s`;
  if (durationMs < 60_000) return `${Math.round(durationMs / 1000)} s`;
  const total = Math.round(durationMs / 1000);
  return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, '0')} s`;
}

function took(s: OcpSubtask): string {
  const start = ms(s.startTime);
  const end = ms(s.finishTime);
  return start !== undefined && end !== undefined ? ` (${seconds(end - start)})` : '';
}

/** The hosts of a task: a batch's listMap.host_ids, else its one host. */
export function hostsOf(task: TaskHead): string[] {
  return task.context.listMap.host_ids ?? [String(task.hostId)];
}

export const isBatch = (task: TaskHead) => task.context.parallel;

/** `Task 12 Restart OCP agent on host 101: RUNNING, by alice ("monagent stuck")`. */
export function taskTitle(task: TaskHead): string {
  const hosts = hostsOf(task);
  const on = hosts.length === 1 ? `host ${hosts[0]}` : `${hosts.length} hosts`;
  const reason = task.context.stringMap.reason;
  return `Task ${task.id} ${task.name} on ${on}: ${task.status}, by ${task.creator}${reason ? ` (${JSON.stringify(reason)})` : ''}`;
}

/** One line per subtask: id, host (a batch), name, status, operation when not EXECUTE, duration. */
export function stepLines(task: OcpTask): string[] {
  const hosts = hostsOf(task);
  const batch = isBatch(task);
  return task.subtasks.map((s) => {
    const host = batch ? `host ${hosts[s.parallelIdx] ?? '?'}  ` : '';
    const op = s.operation === 'EXECUTE' ? '' : ` [${s.operation}]`;
    return `  ${String(s.id).padStart(4)}  ${host}${s.name.padEnd(34)} ${s.status}${op}${took(s)}`;
  });
}

export function renderTask(task: OcpTask): string {
  return [taskTitle(task), ...stepLines(task)].join('\n');
}

/** A listing: one task a line, newest first as the API gives them. */
export function renderList(page: {
  contents: TaskHead[];
  page: { number: number; totalPages: number; totalElements: number };
}): string {
  if (page.contents.length === 0) return 'No tasks.';
  const lines = page.contents.map((t) => {
    const hosts = hostsOf(t);
    const on = hosts.length === 1 ? `host ${hosts[0]}` : `${hosts.length} hosts`;
    const reason = t.context.stringMap.reason;
    return `${String(t.id).padStart(6)}  ${t.status.padEnd(10)} ${t.name}  ${on}  ${t.startTime}  ${t.creator}${reason ? `  ${JSON.stringify(reason)}` : ''}`;
  });
  const { number, totalPages, totalElements } = page.page;
  return [...lines, `page ${number} of ${totalPages} (${totalElements} tasks)`].join('\n');
}

/** What changed between two sightings of a task, as lines: each subtask that began running or ended. */
export function changes(before: OcpTask | undefined, now: OcpTask): string[] {
  const was = new Map(before?.subtasks.map((s) => [s.id, s.status]));
  const hosts = hostsOf(now);
  const batch = isBatch(now);
  return (
    now.subtasks
      // PENDING and READY (queued for an executor) say nothing an operator waits for.
      .filter((s) => was.get(s.id) !== s.status && s.status !== 'PENDING' && s.status !== 'READY')
      .map((s) => `${batch ? `host ${hosts[s.parallelIdx] ?? '?'}: ` : ''}${s.name}: ${s.status}${took(s)}`)
  );
}

/** Per host of a batch: done (its chain all SUCCESSFUL), failed (a FAILED subtask), or still going. */
export function batchCounts(task: OcpTask): { total: number; done: number; failed: number; running: number } {
  const chains = new Map<number, OcpSubtask[]>();
  for (const s of task.subtasks) chains.set(s.parallelIdx, [...(chains.get(s.parallelIdx) ?? []), s]);
  let done = 0;
  let failed = 0;
  let running = 0;
  for (const chain of chains.values()) {
    if (chain.some((s) => s.status === 'FAILED')) failed++;
    else if (chain.every((s) => s.status === 'SUCCESSFUL')) done++;
    else if (chain.some((s) => s.status !== 'PENDING')) running++;
  }
  return { total: chains.size, done, failed, running };
}

/** `[########------------] 4/10 hosts done, 1 failed, 2 running`. */
export function batchBar(task: OcpTask, width = 20): string {
  const c = batchCounts(task);
  const filled = c.total === 0 ? 0 : Math.round(((c.done + c.failed) / c.total) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${c.done}/${c.total} hosts done${c.failed ? `, ${c.failed} failed` : ''}${c.running ? `, ${c.running} running` : ''}`;
}
