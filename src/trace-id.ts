/** Trace ids (SPEC §3): 16 lowercase hex digits; a valid incoming one is kept. */
import { randomBytes } from 'node:crypto';

export function newTraceId(): string {
  return randomBytes(8).toString('hex');
}

/** `X-Trace-Id` kept when it is 16 lowercase hex digits. */
export function traceIdFrom(value: string | undefined): string {
  return value && /^[0-9a-f]{16}$/.test(value) ? value : newTraceId();
}
