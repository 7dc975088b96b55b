/**
 * A front door as the composition root knows it, as bolt-js's App knows only
 * its Receiver: each door (HTTP, the NATS micro service, Slack over HTTP or
 * Socket Mode) turns its own input into calls of the API's operations
 * (api/operations.ts), checks the caller's role against the operation's, and
 * answers with api/envelope.ts and api/answer-error.ts. service.ts starts
 * each and stops each; nothing else is asked of a door.
 */
export interface FrontDoor {
  /** For logs: `http`, `nats-api`, `slack`. */
  readonly name: string;
  /** Take no new request; answer what is in hand. */
  stop(): Promise<void>;
}
