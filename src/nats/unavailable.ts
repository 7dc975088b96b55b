/**
 * NATS's failures as the service's typed UnavailableError (HTTP 503, code
 * 10000), told apart by nats.js's error codes, never by a message: the one
 * place that knows which of them mean "NATS could not do it".
 */
import { ErrorCode, NatsError } from 'nats';
import { UnavailableError } from '../errors.js';
import { StoreOutcomeUnknown } from '../tasks/ports.js';

/** nats.js codes of a NATS that is away, or did not answer in time. */
const AWAY: ReadonlySet<string> = new Set([
  ErrorCode.Timeout,
  ErrorCode.ConnectionClosed,
  ErrorCode.ConnectionDraining,
  ErrorCode.ConnectionRefused,
  ErrorCode.ConnectionTimeout,
  ErrorCode.Disconnect,
  ErrorCode.NoResponders, // "503": no JetStream (or no leader) to answer
  ErrorCode.JetStream408RequestTimeout,
]);

/**
 * `err` as an UnavailableError when it says NATS could not do what was asked:
 * away, silent, refusing a write (a JetStream API error: a stream full, a
 * limit reached), or silent on whether a write landed (StoreOutcomeUnknown);
 * undefined for anything else.
 */
export function unavailableOf(err: unknown): UnavailableError | undefined {
  if (err instanceof UnavailableError) return err;
  // Its message already says "NATS unreachable", and what is not known.
  if (err instanceof StoreOutcomeUnknown) return new UnavailableError(err.message, err);
  if (err instanceof NatsError && (AWAY.has(err.code) || err.isJetStreamError())) {
    return new UnavailableError(`NATS unreachable: ${err.message}`, err);
  }
  return undefined;
}
