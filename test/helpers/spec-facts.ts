/**
 * SPEC §3 facts the tests check answers against, written from the SPEC rather
 * than taken from src/, so a test still catches the code drifting from it.
 */

/** error.code → HTTP status, SPEC §3's table (10000/503, "NATS unreachable", is never expected in fuzzing). */
export const CODE_STATUS: Readonly<Record<number, number>> = {
  10001: 400,
  10002: 404,
  20000: 404,
  20003: 409,
  30000: 401,
  30014: 403,
  40000: 409,
};

/**
 * SPEC §3: missing or wrong credentials are 401, or 429 (with `Retry-After`) once that user or
 * address has failed too often; both with code 30000.
 */
export const SIGN_IN_REFUSED: ReadonlyArray<{ status: number; code: number }> = [
  { status: 401, code: 30000 },
  { status: 429, code: 30000 },
];

/** A trace id as the service makes them. */
export const HEX16 = /^[0-9a-f]{16}$/;
