/**
 * Requests made in Slack, published on ocp.door.slack.op.<operation>: a subject
 * NATS publishers are not given, so only the Slack door may say a request
 * comes from a Slack user (docs/SECURITY.md).
 */
import type { JetStreamClient } from 'nats';
import type { PublishDoorCommand } from '../slack/ports.js';
import { encodeJson } from './kv-json.js';
import { SUBJECTS } from './streams.js';

export function createDoorPublisher(js: JetStreamClient): PublishDoorCommand {
  return async (op, command) => {
    // Stream dedup by requestId: one trigger_id makes one request.
    await js.publish(SUBJECTS.slackDoor(op), encodeJson(command), { msgID: command.requestId });
  };
}
