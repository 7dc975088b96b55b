/**
 * What the web page's server side needs besides the API's operations,
 * declared here beside it; the NATS adapter (nats/task-event-feed.ts)
 * implements it and service.ts passes it in.
 */

/** One stored event of a task: its place in the event stream and its JSON as published. */
export interface FedEvent {
  /** The event stream's sequence: what a browser sends back as Last-Event-ID. */
  seq: number;
  json: string;
}

export interface FollowedEvents {
  /** Stop following (the browser went away). */
  stop(): void;
  /** Settles when following stopped, by `stop` or by a failure (rejects then). */
  done: Promise<void>;
}

/** A task's events as JetStream keeps them (ocp.events.task.<id>, SPEC §5). */
export interface TaskEventFeed {
  /** The sequence of the task's last stored event; 0 when it has none yet. */
  lastSeq(taskId: number): Promise<number>;
  /**
   * The task's events stored after `afterSeq`, then each new one, in order,
   * until stopped; `onEvent` is awaited before the next (a slow browser slows
   * its own feed only).
   */
  follow(taskId: number, afterSeq: number, onEvent: (e: FedEvent) => Promise<void>): Promise<FollowedEvents>;
}
