/**
 * Error codes as OCP numbers them (SPEC §3), and one small coded error class.
 * Anything unknown is wrapped once with `asCodedError`, so every front door
 * (HTTP, NATS, Slack) can answer with a code and a message.
 */
export const ErrorCode = {
  internal: 10000, // also "NATS unreachable" (HTTP 503: UnavailableError)
  badRequest: 10001,
  notFound: 10002, // host not in the inventory, unknown route
  taskNotFound: 20000,
  illegalState: 20003,
  unauthorized: 30000,
  forbidden: 30014,
  hostBusy: 40000,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class CodedError extends Error {
  readonly code: ErrorCode;
  readonly target: string | undefined;
  constructor(code: ErrorCode, message: string, target?: string) {
    super(message);
    this.name = 'CodedError';
    this.code = code;
    this.target = target;
  }
}

/**
 * Too many failed sign-ins from a user or an address (SPEC §3): HTTP 429 with `Retry-After`.
 * Its code is OCP's for credentials, 30000, as for a 401.
 */
export class TooManySignInsError extends CodedError {
  /** Whole seconds until a sign-in may be tried again. */
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(ErrorCode.unauthorized, message);
    this.name = 'TooManySignInsError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * The request could not be done for want of NATS: it did not answer, it
 * refused the write (a store full), or whether a write landed is not known
 * (SPEC §3: HTTP 503, code 10000). The NATS adapter tells which of its errors
 * are this (nats/unavailable.ts).
 */
export class UnavailableError extends CodedError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCode.internal, message);
    this.name = 'UnavailableError';
    if (cause !== undefined) this.cause = cause;
  }
}

export function asCodedError(err: unknown): CodedError {
  if (err instanceof CodedError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CodedError(ErrorCode.internal, message);
}

/**
 * A zod error as one sentence naming each field (for an unknown key, the key),
 * and the first field for `target`.
 */
export function describeZodError(
  error: { issues: ReadonlyArray<{ code: string; path: PropertyKey[]; message: string; keys?: string[] }> },
  whole = 'input',
): { message: string; field: string | undefined } {
  // An unknown key is named with where it is: `sort`, `params.force`.
  const fieldOf = (i: (typeof error.issues)[number]) =>
    (i.code === 'unrecognized_keys'
      ? (i.keys ?? []).map((k) => [...i.path, k].join('.')).join(', ')
      : i.path.join('.')) || whole;
  const message = error.issues
    .map((i) => (i.code === 'unrecognized_keys' ? `${fieldOf(i)}: unknown field` : `${fieldOf(i)}: ${i.message}`))
    .join('; ');
  const first = error.issues[0];
  return { message, field: first ? fieldOf(first) : undefined };
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  target?: string;
}

export function errorBody(err: CodedError): ErrorBody {
  return err.target === undefined
    ? { code: err.code, message: err.message }
    : { code: err.code, message: err.message, target: err.target };
}
