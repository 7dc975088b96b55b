/** Calling the service's HTTP API as a user would. */
import { basicAuth, type TEST_USERS } from './stack.js';

export interface Answer<T = unknown> {
  status: number;
  body: {
    successful: boolean;
    data: T;
    error: { code: number; message: string; target?: string };
    traceId: string;
    timestamp: string;
    duration: number;
    status: number;
    server: string;
  };
  headers: Headers;
}

export function apiClient(port: number) {
  return async function api<T = unknown>(
    method: 'GET' | 'POST',
    path: string,
    opts: {
      user?: keyof typeof TEST_USERS | null;
      body?: unknown;
      rawBody?: string;
      headers?: Record<string, string>;
    } = {},
  ): Promise<Answer<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.user !== null) headers.authorization = basicAuth(opts.user ?? 'operator');
    if (opts.body !== undefined || opts.rawBody !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers,
      ...(opts.rawBody !== undefined
        ? { body: opts.rawBody }
        : opts.body !== undefined
          ? { body: JSON.stringify(opts.body) }
          : {}),
    });
    return { status: res.status, body: (await res.json()) as Answer<T>['body'], headers: res.headers };
  };
}
