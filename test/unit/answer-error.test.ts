/**
 * One mapping from a failure to its error code and HTTP status, for the HTTP
 * and the NATS API alike (with the NATS adapter's reading of its own errors,
 * as both doors use it): decided by type and code, never by the message.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NatsError, ErrorCode as NatsErrorCode } from 'nats';
import { INTERNAL_ERROR_MESSAGE, toCodedFailure } from '../../src/api/answer-error.js';
import { CodedError, ErrorCode, TooManySignInsError, UnavailableError } from '../../src/errors.js';
import { StepError } from '../../src/executor/step-failure.js';
import { JS_ERR, jetStreamErrCode } from '../../src/nats/jetstream-errors.js';
import { isCasConflict } from '../../src/nats/kv-json.js';
import { unavailableOf } from '../../src/nats/unavailable.js';
import { StoreOutcomeUnknown } from '../../src/tasks/ports.js';

/** A JetStream API refusal as nats.js raises it. */
function jsRefusal(status: number, errCode: number, description: string): NatsError {
  return Object.assign(new NatsError(description, String(status)), {
    api_error: { code: status, err_code: errCode, description },
  });
}

const cases: Array<{
  name: string;
  err: unknown;
  status: number;
  code: ErrorCode;
  message: string | RegExp;
  unexpected?: boolean;
}> = [
  {
    name: 'a bad request',
    err: new CodedError(ErrorCode.badRequest, 'hostId: must be a positive integer', 'hostId'),
    status: 400,
    code: 10001,
    message: 'hostId: must be a positive integer',
  },
  {
    name: 'a busy host',
    err: new CodedError(ErrorCode.hostBusy, 'host 7 is busy with task 12'),
    status: 409,
    code: 40000,
    message: 'host 7 is busy with task 12',
  },
  {
    name: 'too many sign-ins',
    err: new TooManySignInsError('too many', 6),
    status: 429,
    code: 30000,
    message: 'too many',
  },
  {
    name: 'an internal error the service raised knowingly keeps its words',
    err: new CodedError(ErrorCode.internal, 'ocp_agentctl status on host 7 exited 2: no such file'),
    status: 500,
    code: 10000,
    message: 'ocp_agentctl status on host 7 exited 2: no such file',
  },
  {
    name: 'NATS timed out',
    err: NatsError.errorForCode(NatsErrorCode.Timeout),
    status: 503,
    code: 10000,
    message: /^NATS unreachable: /,
  },
  {
    name: 'the NATS connection closed',
    err: NatsError.errorForCode(NatsErrorCode.ConnectionClosed),
    status: 503,
    code: 10000,
    message: /^NATS unreachable: /,
  },
  {
    name: 'no JetStream to answer (503, no responders)',
    err: NatsError.errorForCode(NatsErrorCode.NoResponders),
    status: 503,
    code: 10000,
    message: /^NATS unreachable: /,
  },
  {
    name: 'the store is full (a JetStream refusal)',
    err: jsRefusal(503, 10077, 'maximum bytes exceeded'),
    status: 503,
    code: 10000,
    message: 'NATS unreachable: maximum bytes exceeded',
  },
  {
    name: 'a write whose outcome is unknown keeps its own words (they say NATS unreachable once)',
    err: new StoreOutcomeUnknown(42, NatsError.errorForCode(NatsErrorCode.Timeout)),
    status: 503,
    code: 10000,
    message: /^NATS unreachable: whether task 42 was stored is not known/,
  },
  {
    name: 'an UnavailableError as it is',
    err: new UnavailableError('NATS unreachable: streams not ready'),
    status: 503,
    code: 10000,
    message: 'NATS unreachable: streams not ready',
  },
  {
    name: "a host out of reach (the agent's status)",
    err: new StepError('unreachable', 'cannot connect to ops@10.0.0.5:22: connect ECONNREFUSED'),
    status: 500,
    code: 10000,
    message: 'cannot connect to ops@10.0.0.5:22: connect ECONNREFUSED',
  },
  {
    name: 'a host key refused',
    err: new StepError('hostKey', 'Host [10.0.0.5]:22 is not in known_hosts'),
    status: 500,
    code: 10000,
    message: 'Host [10.0.0.5]:22 is not in known_hosts',
  },
  {
    name: 'a NATS error that is no outage (a bad payload): unforeseen',
    err: NatsError.errorForCode(NatsErrorCode.BadPayload),
    status: 500,
    code: 10000,
    message: INTERNAL_ERROR_MESSAGE,
    unexpected: true,
  },
  {
    name: 'a plain error whose words look like an outage is still unforeseen: words decide nothing',
    err: new Error('TIMEOUT 503 NATS unreachable known_hosts'),
    status: 500,
    code: 10000,
    message: INTERNAL_ERROR_MESSAGE,
    unexpected: true,
  },
  { name: 'a thrown string', err: 'boom', status: 500, code: 10000, message: INTERNAL_ERROR_MESSAGE, unexpected: true },
];

describe('toCodedFailure (both doors)', () => {
  for (const c of cases) {
    test(`${c.name}: ${c.status} / ${c.code}`, () => {
      const f = toCodedFailure(c.err, unavailableOf);
      assert.deepEqual([f.status, f.coded.code, f.unexpected], [c.status, c.code, c.unexpected ?? false]);
      if (typeof c.message === 'string') assert.equal(f.coded.message, c.message);
      else assert.match(f.coded.message, c.message);
    });
  }

  test('the target of a coded error is kept', () => {
    const f = toCodedFailure(new CodedError(ErrorCode.taskNotFound, 'task 9 not found', 'taskId'), unavailableOf);
    assert.deepEqual([f.status, f.coded.target], [404, 'taskId']);
  });
});

describe('JetStream refusals by their code', () => {
  test('a lost compare-and-set is told by err_code 10071, not by its words', () => {
    assert.equal(isCasConflict(jsRefusal(400, JS_ERR.wrongLastSequence, 'wrong last sequence: 7')), true);
    assert.equal(isCasConflict(new Error('wrong last sequence: 7')), false);
    assert.equal(isCasConflict(jsRefusal(503, 10077, 'maximum bytes exceeded')), false);
  });

  test('only a NATS error with an API answer has a JetStream code', () => {
    assert.equal(jetStreamErrCode(jsRefusal(404, JS_ERR.noMessageFound, 'no message found')), JS_ERR.noMessageFound);
    assert.equal(jetStreamErrCode(NatsError.errorForCode(NatsErrorCode.Timeout)), undefined);
    assert.equal(jetStreamErrCode(new Error('no message found')), undefined);
  });
});
