/**
 * A delivered "run this subtask" item as the executor answers it: the part of
 * a JetStream message the handler uses, so the executor names no NATS type.
 */
export interface WorkMessage {
  readonly subject: string;
  /** Delivered before: its previous holder may have died mid-run. */
  readonly redelivered: boolean;
  json<T = unknown>(): T;
  /** Done with it. */
  ack(): void;
  /** Deliver it again after `delayMs` (or at once). */
  nak(delayMs?: number): void;
  /** Never deliver it again. */
  term(): void;
  /** Still at it: keep the lease (the ack wait starts again). */
  working(): void;
}
