/**
 * One answer for one failure, whichever door it came through: the HTTP API
 * and the NATS API (SPEC §3, §5) both turn what an operation threw into an
 * error code and an HTTP status here, so the same failure gets the same
 * `error.code`, message and `status` at both. Like bolt's `asCodedError`,
 * anything unforeseen is wrapped once — and its details go to the server log,
 * not to the caller.
 */
import { CodedError, ErrorCode, TooManySignInsError, UnavailableError } from '../errors.js';
import { StepError } from '../executor/step-failure.js';

export interface CodedFailure {
  coded: CodedError;
  /** The HTTP status; the envelope's `status` at every door. */
  status: number;
  /** Not foreseen: the door logs it with the traceId the answer carries. */
  unexpected: boolean;
}

/**
 * An adapter's reading of its own errors (NATS's: nats/unavailable.ts), e.g.
 * a timeout as an UnavailableError; undefined for one it does not know.
 */
export type AdapterFailures = (err: unknown) => CodedError | undefined;

export const INTERNAL_ERROR_MESSAGE = 'internal error; see the server log for this traceId';

/** The HTTP status of a coded error (SPEC §3's table). */
export function httpStatusOf(err: CodedError): number {
  if (err instanceof TooManySignInsError) return 429;
  if (err instanceof UnavailableError) return 503;
  switch (err.code) {
    case ErrorCode.badRequest:
      return 400;
    case ErrorCode.unauthorized:
      return 401;
    case ErrorCode.forbidden:
      return 403;
    case ErrorCode.notFound:
    case ErrorCode.taskNotFound:
      return 404;
    case ErrorCode.hostBusy:
    case ErrorCode.illegalState:
      return 409;
    case ErrorCode.internal:
      return 500;
  }
}

export function toCodedFailure(err: unknown, adapterFailures: AdapterFailures): CodedFailure {
  const answer = (coded: CodedError) => ({ coded, status: httpStatusOf(coded), unexpected: false });
  if (err instanceof CodedError) return answer(err);
  // A host out of reach, a host key refused (the agent's status, a cancel): the
  // caller needs its words — which host, which key — to act.
  if (err instanceof StepError) return answer(new CodedError(ErrorCode.internal, err.message));
  const known = adapterFailures(err);
  if (known) return answer(known);
  return { coded: new CodedError(ErrorCode.internal, INTERNAL_ERROR_MESSAGE), status: 500, unexpected: true };
}
