/**
 * The built-in runbooks, with the steps and timeouts of SPEC §2. Every script is
 * idempotent: running it again after a crash does no harm.
 */
import type { Runbook } from './runbook.js';

const prepare = (name: string) => ({
  name,
  timeout: 60,
  // The binary must exist; `status` output is kept whatever its exit code.
  command: [
    'if [ ! -x {agentctl} ]; then echo "ocp_agentctl not found or not executable: "{agentctl} >&2; exit 1; fi',
    '{agentctl} status',
    'exit 0',
  ].join('\n'),
});

const restartPosProxy = {
  name: 'Restart pos proxy',
  timeout: 60,
  command: '{agentctl} restart pos_proxy',
};

const stopAll = {
  name: 'Stop all OCP agent processes',
  timeout: 600,
  // Wait on the host until no agent pid in run/*.pid is alive; after the grace
  // period kill -9 the leftovers, and fail if any survives. A pid counts only
  // when it is alive, not a zombie (an unreaped zombie still answers kill -0),
  // and its command line names agentHome: a stale pid file whose pid now
  // belongs to another process (an observer, say) must never be killed.
  command: [
    '{agentctl} stop || echo "ocp_agentctl stop exited $?"',
    'agent_pids() {',
    '  for f in {agentHome}/run/*.pid; do',
    '    [ -f "$f" ] || continue',
    '    p=$(cat "$f" 2>/dev/null)',
    '    case "$p" in ""|*[!0-9]*) continue;; esac',
    '    st=$(sed "s/.*) //" /proc/"$p"/stat 2>/dev/null)',
    '    [ -n "$st" ] && [ "${st%% *}" != Z ] || continue',
    '    tr "\\0" " " < /proc/"$p"/cmdline 2>/dev/null | grep -qF -- {agentHome} && printf " %s" "$p"',
    '  done',
    '}',
    'grace={killGraceSeconds}',
    'deadline=$(( $(date +%s) + grace ))',
    'while :; do',
    '  alive=$(agent_pids)',
    '  [ -z "$alive" ] && break',
    '  if [ "$(date +%s)" -ge "$deadline" ]; then',
    '    echo "kill -9 leftovers:$alive"; kill -9 $alive',
    '    sleep 0.5; left=$(agent_pids)',
    '    if [ -n "$left" ]; then echo "still alive after kill -9:$left" >&2; exit 1; fi',
    '    break',
    '  fi',
    '  sleep 0.1',
    'done',
    'echo "all OCP agent processes stopped"',
  ].join('\n'),
};

const startAll = {
  name: 'Start all OCP agent processes',
  timeout: 600,
  // A start that fails says so at once rather than waiting out the timeout.
  command: [
    '{agentctl} start || { rc=$?; echo "ocp_agentctl start exited $rc" >&2; exit "$rc"; }',
    'until {agentctl} status >/dev/null; do sleep 0.2; done',
    '{agentctl} status',
  ].join('\n'),
};

const finish = {
  name: 'Finish OCP agent operation',
  timeout: 60,
  command: '{agentctl} status',
};

/** After a stop, `status` exits non-zero by design: finishing means nothing runs any more. */
const finishStopped = {
  name: 'Finish OCP agent operation',
  timeout: 60,
  command: [
    'out=$({agentctl} status)',
    'printf "%s\\n" "$out"',
    'if printf "%s\\n" "$out" | grep -q " running$"; then echo "agent processes still run after the stop" >&2; exit 1; fi',
  ].join('\n'),
};

export const RESTART = 'Restart OCP agent';
export const STOP = 'Stop OCP agent';
export const START = 'Start OCP agent';
/** The name of a batch's task (SPEC §2): the Restart runbook once per host. */
export const BATCH_RESTART = 'Batch restart OCP agent';

export const builtinRunbooks: readonly Runbook[] = [
  { name: RESTART, steps: [prepare('Prepare restart OCP agent'), restartPosProxy, stopAll, startAll, finish] },
  { name: STOP, steps: [prepare('Prepare stop OCP agent'), stopAll, finishStopped] },
  { name: START, steps: [prepare('Prepare start OCP agent'), startAll, finish] },
];
