/**
 * OCP's answer envelopes (SPEC §3), the same from both API doors (HTTP and
 * the NATS micro service): exactly the seed's fields on success, and
 * `error: {code, message, target?}` instead of `data` on failure.
 */
import { formatOcpTime } from '../core/time.js';
import type { CodedError } from '../errors.js';

export interface EnvelopeMeta {
  startedAt: number; // ms, performance.now()
  traceId: string;
  server: string;
}

export function success(data: unknown, status: number, meta: EnvelopeMeta) {
  return {
    data,
    duration: Math.round(performance.now() - meta.startedAt),
    server: meta.server,
    status,
    successful: true,
    timestamp: formatOcpTime(new Date()),
    traceId: meta.traceId,
  };
}

export function failure(err: CodedError, status: number, meta: EnvelopeMeta) {
  return {
    duration: Math.round(performance.now() - meta.startedAt),
    error:
      err.target === undefined
        ? { code: err.code, message: err.message }
        : { code: err.code, message: err.message, target: err.target },
    server: meta.server,
    status,
    successful: false,
    timestamp: formatOcpTime(new Date()),
    traceId: meta.traceId,
  };
}
