/**
 * What a failed Slack Web API call means: rate limited (ask again after
 * Retry-After), refused for good (asking again will not change it; some shut
 * the channel to us), or anything else (try again).
 */
import type { DeliveryFailure } from '../notify/ports.js';

export const CANNOT_POST = new Set(['not_in_channel', 'channel_not_found', 'is_archived', 'restricted_action']);
/** Errors that asking again will not change. */
export const PERMANENT = new Set([
  ...CANNOT_POST,
  'invalid_blocks',
  'invalid_auth',
  'account_inactive',
  'token_revoked',
  'msg_too_long',
  'msg_blocks_too_long',
  'no_text',
  'invalid_arguments',
]);

export function slackError(err: unknown): { code?: string; retryAfter?: number } {
  const e = err as { code?: string; retryAfter?: number; data?: { error?: string } };
  if (e?.code === 'slack_webapi_rate_limited_error') return { code: 'ratelimited', retryAfter: e.retryAfter ?? 1 };
  return { code: e?.data?.error ?? e?.code };
}

/** What a failed Web API call means for the event it was for. */
export function classifySlackError(err: unknown): DeliveryFailure {
  const { code, retryAfter = 1 } = slackError(err);
  if (code === 'ratelimited') return { kind: 'retryLater', afterMs: retryAfter * 1000 };
  if (code && PERMANENT.has(code)) return { kind: 'refused', closed: CANNOT_POST.has(code), reason: code };
  return { kind: 'transient' };
}
