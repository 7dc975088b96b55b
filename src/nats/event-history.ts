/**
 * Whether a task's first event is behind a consumer for good: handled (acked)
 * already, from before the consumer existed (it starts with new events), or
 * gone from the stream by its retention. A notifier that meets a task in the
 * middle asks this to tell "its first event is still on its way" (wait) from
 * "it will never come" (start the thread from the stored task).
 */
import type { JetStreamManager, MsgRequest } from 'nats';
import type { FirstEventPassed } from '../notify/ports.js';
import { JS_ERR, jetStreamErrCode } from './jetstream-errors.js';
import { STREAMS, SUBJECTS } from './streams.js';

export function createFirstEventCheck(jsm: JetStreamManager, consumer: string): FirstEventPassed {
  return async (taskId) => {
    let first: number;
    try {
      // The server's STREAM.MSG.GET takes next_by_subj (the first message on a
      // subject from seq on); nats.js 2.x types list only seq and last_by_subj.
      const request = { next_by_subj: SUBJECTS.taskEvent(taskId), seq: 1 } as unknown as MsgRequest;
      first = (await jsm.streams.getMessage(STREAMS.events, request)).seq;
    } catch (err) {
      if (jetStreamErrCode(err) === JS_ERR.noMessageFound) return true;
      throw err;
    }
    const info = await jsm.consumers.info(STREAMS.events, consumer);
    return first <= info.ack_floor.stream_seq;
  };
}
