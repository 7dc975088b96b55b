/**
 * The shell that runs a step on the host (SPEC §2, "How a step runs on the host").
 *
 * The step is launched at most once per run key: `set -C` makes the claim file
 * atomic, so a takeover (or a retry after a cut connection) attaches instead of
 * starting a second copy. It runs detached, in its own session (setsid), under
 * coreutils `timeout` (which kills its whole process group at the deadline,
 * then KILLs after 5 s), with its pid, output and exit code in files. So the
 * timeout holds even if the executor dies, and cancel can end the session.
 * The waiting happens on the host: one command that returns when the step ends.
 */
import { shellQuote } from '../core/runbooks/runbook.js';
import { MAX_LOG_BYTES } from '../executor/ports.js';

/** Exit codes the wrapper itself uses. */
export const WRAPPER_EXIT = {
  /** The state folder could not be made. */
  noStateDir: 96,
  /** The step's process disappeared without an exit code (host reboot, kill -9 of the session). */
  vanished: 97,
  /** Canceled on request. */
  canceled: 98,
} as const;

/** Seconds `timeout` waits after TERM before KILL. */
export const KILL_AFTER_SECONDS = 5;

export function runKeyIsSafe(runKey: string): boolean {
  return /^[0-9a-f]+-[0-9]+-[0-9]+-[0-9]+$/.test(runKey);
}

/** stdout: the output tail; stderr: `size=<bytes>`; exit code: the step's. */
export function launchAndWaitScript(stateDir: string, runKey: string, script: string, timeoutSeconds: number): string {
  if (!runKeyIsSafe(runKey)) throw new Error(`unsafe run key ${runKey}`);
  const d = shellQuote(`${stateDir}/runs`);
  const k = runKey;
  const inner = [
    'echo $$ > "$1.pid"',
    `timeout -k ${KILL_AFTER_SECONDS} "$2" sh "$1.sh" > "$1.out" 2>&1 < /dev/null`,
    'echo $? > "$1.rc.tmp"',
    // a cancel may have written rc first; keep its word
    '[ -f "$1.rc" ] || mv "$1.rc.tmp" "$1.rc"',
  ].join('; ');
  return [
    `mkdir -p ${d} && cd ${d} || exit ${WRAPPER_EXIT.noStateDir}`,
    `if ( set -C; : > ${k}.claim ) 2>/dev/null; then`,
    // housekeeping: files of runs older than a week
    '  find . -maxdepth 1 -type f -mtime +7 -delete 2>/dev/null',
    `  printf '%s\\n' ${shellQuote(script)} > ${k}.sh`,
    `  setsid sh -c ${shellQuote(inner)} step ${k} ${Math.floor(timeoutSeconds)} > /dev/null 2>&1 < /dev/null &`,
    'fi',
    // alive = exists and is not a zombie (an unreaped zombie still answers kill -0)
    'alive() { st=$(sed "s/.*) //" /proc/"$1"/stat 2>/dev/null); [ -n "$st" ] && [ "${st%% *}" != Z ]; }',
    'n=0',
    `while [ ! -f ${k}.rc ]; do`,
    `  if [ -f ${k}.pid ]; then`,
    `    if ! alive "$(cat ${k}.pid)" && [ ! -f ${k}.rc ]; then`,
    `      echo "step process vanished without an exit code" >> ${k}.out; echo ${WRAPPER_EXIT.vanished} > ${k}.rc`,
    '    fi',
    '  else',
    '    n=$((n + 1))',
    // claimed but never started (the launcher's connection died first): 10 s at 0.02 s a turn
    `    if [ "$n" -gt 500 ]; then echo "step never started" >> ${k}.out; echo ${WRAPPER_EXIT.vanished} > ${k}.rc; fi`,
    '  fi',
    '  sleep 0.02',
    'done',
    `[ -f ${k}.out ] || : > ${k}.out`,
    `echo "size=$(wc -c < ${k}.out)" >&2`,
    `tail -c ${MAX_LOG_BYTES} ${k}.out`,
    `exit "$(cat ${k}.rc)"`,
  ].join('\n');
}

/** Mark the run canceled, then kill every process of its session. */
export function cancelScript(stateDir: string, runKey: string): string {
  if (!runKeyIsSafe(runKey)) throw new Error(`unsafe run key ${runKey}`);
  const d = shellQuote(`${stateDir}/runs`);
  const k = runKey;
  return [
    `cd ${d} 2>/dev/null || exit 0`,
    `[ -f ${k}.rc ] && exit 0`,
    `echo "canceled" >> ${k}.out; echo ${WRAPPER_EXIT.canceled} > ${k}.rc`,
    `[ -f ${k}.pid ] && pkill -KILL -s "$(cat ${k}.pid)"`,
    'exit 0',
  ].join('\n');
}
