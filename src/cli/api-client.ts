/**
 * The CLI's only way to the service: its HTTP API (SPEC §3) with HTTP Basic.
 * An answer is the envelope's `data`; an error envelope becomes an ApiError
 * carrying the API's own message and code.
 */
import type { Credentials } from './credentials.js';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type Api = <T>(method: 'GET' | 'POST', path: string, body?: unknown) => Promise<T>;

export function createApi(c: Credentials, fetchImpl: typeof fetch = fetch): Api {
  const auth = `Basic ${Buffer.from(`${c.user}:${c.password}`).toString('base64')}`;
  return async <T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetchImpl(`${c.url}${path}`, {
        method,
        headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      throw new ApiError(`cannot reach ${c.url}: ${cause} (OCP_CHATOPS_URL)`, 0);
    }
    const text = await res.text();
    let envelope: { successful?: boolean; data?: unknown; error?: { code?: number; message?: string } } | undefined;
    try {
      envelope = JSON.parse(text);
    } catch {
      envelope = undefined;
    }
    if (res.ok && envelope?.successful) return envelope.data as T;
    const message = envelope?.error?.message ?? `HTTP ${res.status}: ${text.slice(0, 200)}`;
    throw new ApiError(message, res.status, envelope?.error?.code);
  };
}
