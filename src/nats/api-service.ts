/**
 * The API's operations as a NATS micro service (SPEC §5): `ocp.api.<name>`,
 * request/reply, answering with the HTTP API's envelopes. Discoverable and
 * with stats through the standard $SRV subjects (`nats micro ls`). Who may
 * call it is decided by NATS permissions; the caller is recorded as
 * `nats:<creator>`.
 */
import type { NatsConnection, Service, ServiceMsg } from 'nats';
import type { Logger } from 'pino';
import { z } from 'zod';
import { toCodedFailure } from '../api/answer-error.js';
import { type EnvelopeMeta, failure, success } from '../api/envelope.js';
import { apiOperations, findApiOperation, type Operation, parseInput } from '../api/operations.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { OperationDeps } from '../tasks/deps.js';
import { traceIdFrom } from '../trace-id.js';
import { encodeJson } from './kv-json.js';
import { unavailableOf } from './unavailable.js';

/** The micro service; `addNewEndpoints` after the configuration's operations changed. */
export interface ApiService {
  addNewEndpoints(): void;
  stop(): Promise<void>;
}

export async function startApiService(
  nc: NatsConnection,
  deps: OperationDeps,
  logger: Logger,
  server: string,
): Promise<ApiService> {
  const srv: Service = await nc.services.add({
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
  // The operation is looked up when a request comes: the inventory is re-read while the
  // service runs, and an endpoint whose operation was removed since answers as HTTP does.
  const served = new Set<string>();
  function addNewEndpoints(): void {
    for (const { name } of apiOperations(deps.config)) {
      if (served.has(name)) continue;
      served.add(name);
      const op = findApiOperation(deps.config, name);
      srv.addEndpoint(name.replace('.', '_'), {
        subject: `ocp.api.${name}`,
        metadata: { permission: op?.permission ?? 'any' },
        handler: (err, msg) => {
          if (err) {
            logger.error({ err, operation: name }, 'NATS API endpoint stopped');
            return;
          }
          const now = findApiOperation(deps.config, name);
          if (now) void answer(now, msg);
          else void answer(gone(name), msg);
        },
      });
    }
  }
  addNewEndpoints();
  return {
    addNewEndpoints,
    async stop() {
      await srv.stop();
    },
  };
}

/** An operation removed from the configuration since its endpoint was added: 404, as over HTTP. */
function gone(name: string): Operation {
  return {
    name,
    permission: undefined,
    input: z.unknown(),
    run: async () => {
      throw new CodedError(ErrorCode.notFound, `unknown operation ${name.replace(/^op\./, '')}`, 'name');
    },
  };
}
