/**
 * JetStream's refusals told apart by the server's own error codes (`err_code`
 * in the API's answer, which nats.js keeps as `api_error`), never by their
 * text: a server may word them otherwise, and the text is for people.
 */
import { NatsError } from 'nats';

/** nats-server's JetStream error codes (its errors.json) that the service acts on. */
export const JS_ERR = {
  consumerNotFound: 10014,
  noMessageFound: 10037,
  streamNotFound: 10059,
  /** A compare-and-set lost: the subject's last sequence was not the one expected. */
  wrongLastSequence: 10071,
} as const;

/** The JetStream error code of `err`; undefined for anything that is not a JetStream API refusal. */
export function jetStreamErrCode(err: unknown): number | undefined {
  return err instanceof NatsError ? err.api_error?.err_code : undefined;
}
