/**
 * A task's events for the web page's live view (web/ports.ts): read from the
 * audit stream OCP_EVENTS on ocp.events.task.<id> by an ordered consumer of
 * its own, from any stored sequence on, so a browser that lost its connection
 * resumes after the last event it saw (Last-Event-ID) and misses none. An
 * ordered consumer is ephemeral and unacknowledged: following costs the
 * stream nothing once the browser has gone.
 */
import type { JetStreamClient, JetStreamManager } from 'nats';
import type { FollowedEvents, TaskEventFeed } from '../web/ports.js';
import { JS_ERR, jetStreamErrCode } from './jetstream-errors.js';
import { STREAMS, SUBJECTS } from './streams.js';

export function createTaskEventFeed(js: JetStreamClient, jsm: JetStreamManager): TaskEventFeed {
  return {
    async lastSeq(taskId) {
      try {
        return (await jsm.streams.getMessage(STREAMS.events, { last_by_subj: SUBJECTS.taskEvent(taskId) })).seq;
      } catch (err) {
        if (jetStreamErrCode(err) === JS_ERR.noMessageFound) return 0;
        throw err;
      }
    },
    async follow(taskId, afterSeq, onEvent): Promise<FollowedEvents> {
      const consumer = await js.consumers.get(STREAMS.events, {
        // One subject as a string (filter_subject): a list is filter_subjects, which nats-server 2.9 lacks.
        filterSubjects: SUBJECTS.taskEvent(taskId),
        opt_start_seq: afterSeq + 1,
      });
      const messages = await consumer.consume();
      const done = (async () => {
        for await (const m of messages) await onEvent({ seq: m.seq, json: m.string() });
      })();
      return { stop: () => void messages.stop(), done };
    },
  };
}
