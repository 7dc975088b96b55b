/**
 * A step failure's kind is data: how the host's answer is read into how the
 * run ended, how that ending becomes a failure of a kind (with the words the
 * subtask's log ends with), and which kinds are attached to again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StepResult } from '../../src/executor/ports.js';
import {
  asStepError,
  type FailureContext,
  failureOfResult,
  finalMessage,
  STEP_FAILURE_KINDS,
  StepError,
  type StepFailureKind,
  stepFailure,
} from '../../src/executor/step-failure.js';
import { readRunAnswer, WRAPPER_EXIT } from '../../src/ssh/remote-step.js';

const CTX: FailureContext = {
  timeoutSeconds: 60,
  launchWindowSeconds: 34,
  notLaunchedReason: 'configuration changed: the step "Stop all" changed; Retry takes the new configuration',
};

const result = (r: Partial<StepResult>): StepResult => ({
  end: 'exited',
  exitCode: 0,
  output: '',
  truncated: false,
  ...r,
});

describe('step failure kinds', () => {
  test('only a host out of reach is attached to again; every other kind is final', () => {
    const retryable = STEP_FAILURE_KINDS.filter((k) => new StepError(k, 'x').retryable);
    assert.deepEqual(retryable, ['unreachable']);
    assert.deepEqual([...STEP_FAILURE_KINDS].sort(), [
      'become',
      'canceled',
      'configChanged',
      'credentials',
      'exitCode',
      'hostKey',
      'login',
      'noStateDir',
      'timeout',
      'unreachable',
      'vanished',
    ]);
  });

  test('a StepError keeps its kind; anything else a runner lets escape is "unreachable", its words kept', () => {
    const refused = new StepError('hostKey', 'Host [10.0.0.5]:22 is not in known_hosts');
    assert.equal(asStepError(refused), refused);
    const wrapped = asStepError(new TypeError('Cannot read properties of undefined'));
    assert.deepEqual(
      [wrapped.kind, wrapped.retryable, wrapped.message],
      ['unreachable', true, 'Cannot read properties of undefined'],
    );
    assert.equal(asStepError('a string').message, 'a string');
  });

  test('the kind decides, not the words: a message naming known_hosts on an "unreachable" is still attached to again', () => {
    assert.equal(new StepError('unreachable', 'cannot create known_hosts: host key …').retryable, true);
    assert.equal(new StepError('hostKey', 'connection reset').retryable, false);
  });
});

describe('failureOfResult', () => {
  const cases: Array<{ name: string; result: StepResult; kind?: StepFailureKind; message?: string }> = [
    { name: 'exit 0: success', result: result({}) },
    { name: 'a failing exit code', result: result({ exitCode: 3 }), kind: 'exitCode', message: 'exit code 3' },
    {
      name: 'the step’s own 124 is its exit code, not a timeout',
      result: result({ exitCode: 124 }),
      kind: 'exitCode',
      message: 'exit code 124',
    },
    {
      name: 'killed at its timeout',
      result: result({ end: 'timedOut', exitCode: 124 }),
      kind: 'timeout',
      message: 'timed out after 60 s',
    },
    {
      name: 'canceled',
      result: result({ end: 'canceled', exitCode: WRAPPER_EXIT.canceled }),
      kind: 'canceled',
      message: 'canceled',
    },
    {
      name: 'its process vanished without an exit code',
      result: result({ end: 'vanished', exitCode: WRAPPER_EXIT.vanished }),
      kind: 'vanished',
      message: 'exit code 97',
    },
    {
      name: 'not launched within its launch window',
      result: result({ end: 'late', exitCode: WRAPPER_EXIT.late }),
      kind: 'vanished',
      message: "not started: the host could not be reached within 34 s of the subtask's start (Retry runs it)",
    },
    {
      name: 'taken over after a configuration change, and nothing had been launched',
      result: result({ end: 'notLaunched', exitCode: WRAPPER_EXIT.notLaunched }),
      kind: 'configChanged',
      message: CTX.notLaunchedReason,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const f = failureOfResult(c.result, CTX);
      if (c.kind === undefined) return assert.equal(f, undefined);
      assert.deepEqual(f, { kind: c.kind, retryable: false, message: c.message });
    });
  }
});

describe('finalMessage', () => {
  test('a host out of reach for good says so; other failures keep their words', () => {
    assert.equal(
      finalMessage(new StepError('unreachable', 'cannot connect to ops@10.0.0.5:22: connect ECONNREFUSED')),
      'host unreachable: cannot connect to ops@10.0.0.5:22: connect ECONNREFUSED',
    );
    assert.equal(finalMessage(stepFailure('timeout', 'timed out after 60 s')), 'timed out after 60 s');
    assert.equal(
      finalMessage(new StepError('noStateDir', 'cannot create /srv/x/runs on host 7')),
      'cannot create /srv/x/runs on host 7',
    );
  });
});

describe('readRunAnswer: the wrapper’s verdict on stderr', () => {
  const target = { stateDir: '/home/ops/.ocp-chatops', hostId: 7 };
  const cases: Array<{ stderr: string; code: number; stdout?: string; end: StepResult['end']; truncated?: boolean }> = [
    { stderr: 'size=5 why=', code: 0, stdout: 'done\n', end: 'exited' },
    { stderr: 'size=5 why=', code: 124, stdout: 'done\n', end: 'exited' },
    { stderr: 'size=0 why=timeout', code: 124, end: 'timedOut' },
    { stderr: 'size=9 why=canceled', code: 98, stdout: 'canceled\n', end: 'canceled' },
    { stderr: 'size=0 why=vanished', code: 97, end: 'vanished' },
    { stderr: 'size=0 why=late', code: 95, end: 'late' },
    { stderr: 'size=0 why=notlaunched', code: 99, end: 'notLaunched' },
    { stderr: 'size=70000 why=', code: 0, stdout: 'tail\n', end: 'exited', truncated: true },
    // a verdict the wrapper never writes (someone else wrote the file): the step's own exit
    { stderr: 'size=0 why=constructor', code: 1, end: 'exited' },
    { stderr: '', code: 2, end: 'exited' },
  ];
  for (const c of cases) {
    test(`"${c.stderr}" exit ${c.code} → ${c.end}`, () => {
      const r = readRunAnswer({ code: c.code, stdout: c.stdout ?? '', stderr: c.stderr }, target);
      assert.deepEqual(r, { end: c.end, exitCode: c.code, output: c.stdout ?? '', truncated: c.truncated ?? false });
    });
  }

  test('a state folder that cannot be made is a final noStateDir failure, naming the folder and host', () => {
    assert.throws(
      () => readRunAnswer({ code: WRAPPER_EXIT.noStateDir, stdout: '', stderr: 'why=nostatedir\n' }, target),
      (err: unknown) =>
        err instanceof StepError &&
        err.kind === 'noStateDir' &&
        !err.retryable &&
        err.message === 'cannot create /home/ops/.ocp-chatops/runs on host 7',
    );
  });
});
