/**
 * N loops pulling one message at a time from a durable consumer (nats.js v2
 * consumers API: `js.consumers.get` then `next`). Pulling only when a loop is
 * free means no message waits in this process's memory while its ack timer runs.
 */
import type { Consumer, JetStreamClient, JsMsg } from 'nats';
import type { Logger } from 'pino';

export interface PullWorkers {
  /** Stop pulling, let the messages in hand finish, then resolve. */
  stop(): Promise<void>;
}

export interface PullWorkerOptions {
  js: JetStreamClient;
  stream: string;
  durable: string;
  concurrency: number;
  logger: Logger;
  /** Must ack, nak or term the message; a throw naks it for a retry in 1 s. */
  handle(msg: JsMsg): Promise<void>;
}

/** How long one pull waits for a message before asking again (ms). */
const PULL_EXPIRES_MS = 5000;

export function startPullWorkers(opts: PullWorkerOptions): PullWorkers {
  let running = true;
  const { logger } = opts;

  async function loop(): Promise<void> {
    // Looked up once (a round trip), again only after a failed pull.
    let consumer: Consumer | undefined;
    while (running) {
      let msg: JsMsg | null = null;
      try {
        consumer ??= await opts.js.consumers.get(opts.stream, opts.durable);
        msg = await consumer.next({ expires: PULL_EXPIRES_MS });
      } catch (err) {
        consumer = undefined;
        if (!running) return;
        logger.debug({ err: (err as Error).message, durable: opts.durable }, 'pull failed; trying again');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (!msg) continue;
      try {
        await opts.handle(msg);
      } catch (err) {
        logger.error(
          { err, subject: msg.subject, durable: opts.durable },
          'handler failed; message will be redelivered',
        );
        try {
          msg.nak(1000);
        } catch {
          // disconnected: the ack wait brings it back
        }
      }
    }
  }

  const loops = Array.from({ length: opts.concurrency }, () => loop());
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
