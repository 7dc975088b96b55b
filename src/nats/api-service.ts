/**
 * The API's operations as a NATS micro service (SPEC §5): `ocp.api.<name>`,
 * request/reply, answering with the HTTP API's envelopes. Discoverable and
 * with stats through the standard $SRV subjects (`nats micro ls`). Who may
 * call it is decided by NATS permissions; the caller is recorded as
 * `nats:<creator>`.
 */
import type { NatsConnection, Service, ServiceMsg } from 'nats';
import type { Logger } from 'pino';
import { toCodedFailure } from '../api/answer-error.js';
import { type EnvelopeMeta, failure, success } from '../api/envelope.js';
import { apiOperations, type Operation, parseInput } from '../api/operations.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { OperationDeps } from '../tasks/deps.js';
import { traceIdFrom } from '../trace-id.js';
import { encodeJson } from './kv-json.js';
import { unavailableOf } from './unavailable.js';

export async function startApiService(
  nc: NatsConnection,
  deps: OperationDeps,
  logger: Logger,
  server: string,
): Promise<Service> {
  const srv = await nc.services.add({
    name: 'ocp-api',
    version: '1.0.0',
    description: 'ocp-chatops: OCP agent operations and tasks (same envelopes as the HTTP API)',
    queue: 'ocp-api',
  });

  async function answer(op: Operation, msg: ServiceMsg): Promise<void> {
    const startedAt = performance.now();
    const traceId = traceIdFrom(msg.headers?.get('X-Trace-Id'));
    const meta: EnvelopeMeta = { startedAt, traceId, server };
    try {
      let raw: unknown;
      try {
        raw = msg.data.length === 0 ? {} : msg.json();
      } catch {
        throw new CodedError(ErrorCode.badRequest, 'payload: malformed JSON', 'payload');
      }
      const input = parseInput(op, raw) as { creator?: string };
      if (op.creates && !input.creator) {
        throw new CodedError(
          ErrorCode.badRequest,
          'creator: required (who asks, recorded as nats:<creator>)',
          'creator',
        );
      }
      const data = await op.run(deps, input, { name: `nats:${input.creator ?? 'anonymous'}`, traceId });
      msg.respond(encodeJson(success(data, 200, meta)));
    } catch (err) {
      // Answered as the HTTP API answers the same failure.
      const { coded, status, unexpected } = toCodedFailure(err, unavailableOf);
      if (unexpected) logger.error({ err, traceId, operation: op.name }, 'NATS API request failed');
      msg.respond(encodeJson(failure(coded, status, meta)));
    }
  }

  // Derived from the registry: every operation of the configuration is an endpoint (SPEC §8).
  for (const op of apiOperations(deps.config)) {
    srv.addEndpoint(op.name.replace('.', '_'), {
      subject: `ocp.api.${op.name}`,
      metadata: { permission: op.permission ?? 'any' },
      handler: (err, msg) => {
        if (err) {
          logger.error({ err, operation: op.name }, 'NATS API endpoint stopped');
          return;
        }
        void answer(op, msg);
      },
    });
  }
  return srv;
}
