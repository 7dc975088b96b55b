/**
 * The shell that runs a step on the host (SPEC §2, "How a step runs on the host").
 *
 * The step is launched at most once per run key: `set -C` makes the claim file
 * atomic, so a takeover (or a retry after a cut connection) attaches instead of
 * starting a second copy. It runs detached, in its own session (setsid), under
 * coreutils `timeout` (which kills its whole process group at the deadline,
 * then KILLs after 5 s), with its pid, output and exit code in files. So the
 * timeout holds even if the executor dies, and cancel can end the session.
 * The waiting happens on the host: one command that blocks (flock) until the
 * step's wrapper ends — no polling.
 *
 * Nothing here changes directory: the step starts where the login shell did
 * (the user's home), with PWD as a plain `ssh host 'command'` has it (SPEC §9);
 * the run's files are named by absolute paths.
 */
import { shellQuote } from '../core/runbooks/runbook.js';
import { KILL_AFTER_SECONDS, MAX_LOG_BYTES, type StepEnd, type StepResult } from '../executor/ports.js';
import { StepError } from '../executor/step-failure.js';

/** Exit codes the wrapper itself uses. */
export const WRAPPER_EXIT = {
  /** The state folder could not be made. */
  noStateDir: 96,
  /** The step's process disappeared without an exit code (host reboot, kill -9 of the session). */
  vanished: 97,
  /** Canceled on request. */
  canceled: 98,
  /** Not launched: its launch deadline had passed. */
  late: 95,
  /** Attach only: no run had been launched under the key, and none was. */
  notLaunched: 99,
} as const;

export function runKeyIsSafe(runKey: string): boolean {
  return /^[0-9a-f]+-[0-9]+-[0-9]+-[0-9]+$/.test(runKey);
}

/** alive = exists and is not a zombie (an unreaped zombie still answers kill -0). */
const ALIVE = 'alive() { st=$(sed "s/.*) //" /proc/"$1"/stat 2>/dev/null); [ -n "$st" ] && [ "${st%% *}" != Z ]; }';

/** Write `$2` into file `$1` whole: a reader never sees it half-written. */
const PUT = 'put() { printf "%s\\n" "$2" > "$1.tmp" && mv "$1.tmp" "$1"; }';

/**
 * stdout: the output tail; stderr: `size=<bytes> why=<timeout|canceled|vanished|notlaunched|>`
 * (the wrapper's own verdict, so a step's own exit code is never mistaken for
 * one); exit code: the step's. With `script` undefined it only attaches: a
 * run not launched yet is claimed and recorded as never launched.
 */
export function launchAndWaitScript(
  stateDir: string,
  runKey: string,
  script: string | undefined,
  timeoutSeconds: number,
  /** Epoch seconds (the host's clock) after which the step is no longer launched, only attached to. */
  launchBy?: number,
): string {
  if (!runKeyIsSafe(runKey)) throw new Error(`unsafe run key ${runKey}`);
  const d = shellQuote(`${stateDir}/runs`);
  // Every file of the run is "$R".<suffix>, an absolute path: no `cd` changes the step's directory.
  const k = '"$R"';
  const inner = [
    PUT,
    // one short write: a reader waits for it to be non-empty (-s)
    'printf "%s\\n" $$ > "$1.pid"',
    // a cancel that came before the step started: do not start it
    `if [ -f "$1.cancel" ]; then echo "canceled before it started" >> "$1.out"; put "$1.why" canceled; put "$1.rc" ${WRAPPER_EXIT.canceled}; exit 0; fi`,
    't0=$(date +%s)',
    // the step does not inherit the run's lock (fd 9): daemons it starts must not hold it
    `timeout -k ${KILL_AFTER_SECONDS} "$2" sh "$1.sh" > "$1.out" 2>&1 < /dev/null 9>&-`,
    'rc=$?',
    // 124 (TERM) or 137 (KILL) is a timeout only if the time was up: the step's own 124 is not
    'case $rc in 124|137) [ $(( $(date +%s) - t0 )) -ge "$2" ] && put "$1.why" timeout;; esac',
    // a cancel may have written rc first; keep its word
    '[ -f "$1.rc" ] || put "$1.rc" "$rc"',
  ].join('\n');
  return [
    PUT,
    `R=${d}/${runKey}`,
    `[ -d ${d} ] || mkdir -p ${d} || { echo "why=nostatedir" >&2; exit ${WRAPPER_EXIT.noStateDir}; }`,
    // The run's lock is held, from before the claim, by whoever launches it and
    // then by the step's wrapper alone (it inherits the lock; the step does
    // not): it is free again exactly when nothing of the run is left to wait for.
    `exec 9>> ${k}.lock && flock -x 9 || { echo "why=nostatedir" >&2; exit ${WRAPPER_EXIT.noStateDir}; }`,
    // the claim: noclobber makes creating it atomic (`command` keeps a failed
    // redirection from ending the shell)
    `set -C; if command : 2>/dev/null > ${k}.claim; then set +C`,
    ...(script === undefined
      ? [
          `  echo "not launched: the configuration changed since the task was planned" > ${k}.out`,
          `  put ${k}.why notlaunched; put ${k}.rc ${WRAPPER_EXIT.notLaunched}`,
        ]
      : [
          // Too late to start (the host was out of reach since the subtask began):
          // the claim keeps every later attempt from starting it either, so its
          // executor knows by when nothing of it can run.
          ...(launchBy === undefined
            ? []
            : [
                `  if [ "$(date +%s)" -gt ${Math.floor(launchBy)} ]; then`,
                `    echo "not started: the host could not be reached in time" >> ${k}.out; put ${k}.why late; put ${k}.rc ${WRAPPER_EXIT.late}`,
                '  else',
              ]),
          `  printf '%s\\n' ${shellQuote(script)} > ${k}.sh`,
          `  setsid sh -c ${shellQuote(inner)} step ${k} ${Math.floor(timeoutSeconds)} > /dev/null 2>&1 < /dev/null &`,
          ...(launchBy === undefined ? [] : ['  fi']),
        ]),
    'fi',
    'set +C',
    'exec 9>&-',
    // One blocking wait, no polling: the lock comes free when the wrapper ends.
    `exec 9< ${k}.lock && flock -s 9; exec 9<&-`,
    `if [ ! -f ${k}.rc ]; then`,
    // the wrapper is gone without an exit code: killed by a cancel (which records
    // it once all is gone), or lost (kill -9, reboot), or never launched
    `  if [ -f ${k}.cancel ]; then echo "canceled" >> ${k}.out; put ${k}.why canceled; put ${k}.rc ${WRAPPER_EXIT.canceled}`,
    `  else echo "step process vanished without an exit code" >> ${k}.out; put ${k}.why vanished; put ${k}.rc ${WRAPPER_EXIT.vanished}; fi`,
    'fi',
    `[ -f ${k}.out ] || : > ${k}.out`,
    `why=; read -r why 2>/dev/null < ${k}.why; read -r rc < ${k}.rc`,
    `echo "size=$(wc -c < ${k}.out) why=$why" >&2`,
    `tail -c ${MAX_LOG_BYTES} ${k}.out`,
    'exit "$rc"',
  ].join('\n');
}

/** The wrapper's verdict (`why=` on stderr) → how the run ended; no verdict: the step's own exit. */
const ENDS: ReadonlyMap<string, StepEnd> = new Map([
  ['', 'exited'],
  ['timeout', 'timedOut'],
  ['canceled', 'canceled'],
  ['vanished', 'vanished'],
  ['late', 'late'],
  ['notlaunched', 'notLaunched'],
]);

/** The wrapper's verdict in a script's stderr (`why=<word>`), '' when it gave none. */
export function verdictOf(stderr: string): string {
  return /why=(\w*)/.exec(stderr)?.[1] ?? '';
}

/**
 * What launchAndWaitScript answered, as the run's end. A state folder that
 * cannot be made rejects as a `noStateDir` StepError: nothing was launched.
 */
export function readRunAnswer(
  answer: { code: number; stdout: string; stderr: string },
  target: { stateDir: string; hostId: number },
): StepResult {
  const why = verdictOf(answer.stderr);
  if (why === 'nostatedir') {
    throw new StepError('noStateDir', `cannot create ${target.stateDir}/runs on host ${target.hostId}`);
  }
  const size = Number(/size=(\d+)/.exec(answer.stderr)?.[1] ?? 0);
  return {
    end: ENDS.get(why) ?? 'exited',
    exitCode: answer.code,
    output: answer.stdout,
    truncated: size > Buffer.byteLength(answer.stdout),
  };
}

/** Housekeeping, once per shell: files of runs older than a week go. */
export function housekeepingScript(stateDir: string): string {
  return `find ${shellQuote(`${stateDir}/runs`)} -maxdepth 1 -type f -mtime +7 -delete 2>/dev/null; exit 0`;
}

/**
 * Cancel a run: if it was never launched, claim it first so it never will be;
 * otherwise leave a mark the launcher checks before starting the step, kill
 * every process of its session until none is left, then record it canceled
 * (unless it ended first). Exits 0 once nothing of the step runs, 1 when some
 * of it outlives 5 s of kills.
 *
 * One `pkill` is not enough: it lists the session's processes, then kills
 * them one by one, and a process not killed yet may start a child meanwhile,
 * which no list had (a step that was starting up, a loop of commands). So it
 * kills again each round. The waits are bounded by the clock, not by a count
 * of rounds, which a loaded host makes last far longer.
 */
export function cancelScript(stateDir: string, runKey: string): string {
  if (!runKeyIsSafe(runKey)) throw new Error(`unsafe run key ${runKey}`);
  const d = shellQuote(`${stateDir}/runs`);
  const k = runKey;
  return [
    PUT,
    ALIVE,
    // live (not zombie) processes of a session
    'left() { for p in $(pgrep -s "$1" 2>/dev/null); do alive "$p" && printf " %s" "$p"; done; }',
    `mkdir -p ${d} && cd ${d} || { echo "why=nostatedir" >&2; exit ${WRAPPER_EXIT.noStateDir}; }`,
    `if ( set -C; : > ${k}.claim ) 2>/dev/null; then`,
    `  echo "canceled before it started" >> ${k}.out; put ${k}.why canceled; put ${k}.rc ${WRAPPER_EXIT.canceled}; exit 0`,
    'fi',
    `: > ${k}.cancel`,
    `[ -f ${k}.rc ] && exit 0`,
    // the launcher writes the pid right after setsid: wait for it up to 10 s
    'end=$(( $(date +%s) + 10 ))',
    `while [ ! -s ${k}.pid ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.02; done`,
    `if [ -s ${k}.pid ]; then`,
    `  sid=$(cat ${k}.pid)`,
    '  end=$(( $(date +%s) + 5 ))',
    '  while pkill -KILL -s "$sid" 2>/dev/null; sleep 0.02; [ -n "$(left "$sid")" ]; do',
    '    [ "$(date +%s)" -lt "$end" ] || { echo "processes of session $sid survive kill -9:$(left "$sid")" >&2; exit 1; }',
    '  done',
    'fi',
    `[ -f ${k}.rc ] || { echo "canceled" >> ${k}.out; put ${k}.why canceled; put ${k}.rc ${WRAPPER_EXIT.canceled}; }`,
    'exit 0',
  ].join('\n');
}
