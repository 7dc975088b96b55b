/**
 * Records in KV changed only by compare-and-set, one key at a time, with what
 * every writer of the task store needs: group commit (changes to one key made
 * while its previous write is under way go in together), the process's last
 * write remembered as the start of its next one, and a write whose answer was
 * lost resolved by a token the record keeps (it landed, or it is sent again).
 */
import { randomBytes } from 'node:crypto';
import type { KV, KvEntry } from 'nats';
import { StoreOutcomeUnknown } from '../tasks/ports.js';
import { encodeJsonCompact, getLive, isCasConflict } from './kv-json.js';

/** How long a write whose answer was lost is looked for (and sent again) before its outcome is called unknown (ms). */
export const WRITE_RESOLVE_MS = 10_000;
/** Tokens of the latest writes a record keeps. */
const WRITES_KEPT = 8;

/**
 * Whether a failed write may have landed: no answer came (a timeout, a
 * connection lost). An answer that refused it (a JetStream API error: the
 * stream full, a limit) says it did not.
 */
export function answerLost(err: unknown): boolean {
  return !isCasConflict(err) && !(err as { api_error?: unknown }).api_error;
}

/** Pause before asking NATS again about a write whose answer was lost (ms): 200, 400, … up to 2 s. */
export const retryPause = (attempt: number) => new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));

export interface Versioned<R> {
  value: R;
  revision: number;
}

/** Return the next value, or undefined to leave it; throwing refuses the change (its caller only). */
export type Change<R> = (current: R) => R | undefined;

interface Waiter<R> {
  change: Change<R>;
  resolve(v: Versioned<R> | undefined): void;
  reject(err: unknown): void;
}

type Outcome<R> = { value: R } | { error: unknown };

export interface CasKeys<R> {
  get(key: string): Promise<Versioned<R> | undefined>;
  /** As this process last wrote it (if remembered), else as stored. */
  peek(key: string): Promise<Versioned<R> | undefined>;
  /**
   * Apply `change` by compare-and-set (judged again on the stored value after
   * a conflict, or when it declined or refused on a remembered copy). Resolves
   * with the value as this change left it and the revision written (or read,
   * when nothing changed); undefined when the key holds nothing.
   */
  update(key: string, change: Change<R>): Promise<Versioned<R> | undefined>;
  /** Create the key; on a conflict, `onTaken` says what stands (the stored value) or throws. */
  create(key: string, value: R, onTaken: (stored: Versioned<R> | undefined, err: unknown) => R): Promise<Versioned<R>>;
  forget(key: string): void;
  remember(key: string, v: Versioned<R>): void;
}

export function createCasKeys<R extends { writes?: string[] }>(opts: {
  kv: KV;
  decode(entry: KvEntry): R;
  /** Whether a value is worth remembering (running). */
  keep(value: R): boolean;
  /** After a write landed (publish its events); a throw rejects the writers with what it threw. */
  after(key: string, value: R): Promise<void>;
  /** What an unknown outcome names (the task id). */
  idOf(key: string): number;
  /** Values remembered at most. */
  remembered: number;
}): CasKeys<R> {
  const { kv } = opts;
  const queued = new Map<string, Waiter<R>[]>();
  const draining = new Set<string>();
  const lastWritten = new Map<string, Versioned<R>>();

  function remember(key: string, v: Versioned<R>): void {
    lastWritten.delete(key);
    if (!opts.keep(v.value)) return;
    lastWritten.set(key, v);
    if (lastWritten.size > opts.remembered) lastWritten.delete(lastWritten.keys().next().value as string);
  }

  async function get(key: string): Promise<Versioned<R> | undefined> {
    const entry = await getLive(kv, key);
    return entry ? { value: opts.decode(entry), revision: entry.revision } : undefined;
  }

  async function drain(key: string): Promise<void> {
    draining.add(key);
    try {
      for (let batch = queued.get(key); batch; batch = queued.get(key)) {
        queued.delete(key);
        await commit(key, batch);
      }
    } finally {
      draining.delete(key);
    }
  }

  function applyAll(start: R, batch: Waiter<R>[]): { value: R; outcomes: Outcome<R>[]; sure: boolean } {
    let value = start;
    let sure = true;
    const outcomes = batch.map((w): Outcome<R> => {
      try {
        const next = w.change(value);
        if (!next) {
          sure = false;
          return { value };
        }
        value = next;
        return { value };
      } catch (error) {
        sure = false;
        return { error };
      }
    });
    return { value, outcomes, sure };
  }

  async function resolveLostWrite(
    key: string,
    bytes: Uint8Array,
    expected: number,
    token: string,
    cause: unknown,
  ): Promise<number | undefined> {
    const deadline = Date.now() + WRITE_RESOLVE_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const stored = await get(key);
        if (!stored) return undefined;
        if (stored.value.writes?.includes(token)) return stored.revision;
        if (stored.revision !== expected) return undefined;
        return await kv.update(key, bytes, expected);
      } catch (err) {
        if (!isCasConflict(err)) cause = err;
      }
      if (Date.now() >= deadline) throw new StoreOutcomeUnknown(opts.idOf(key), cause as Error);
      await retryPause(attempt);
    }
  }

  async function commit(key: string, batch: Waiter<R>[]): Promise<void> {
    try {
      let stored = lastWritten.get(key);
      let fresh = false;
      if (!stored) {
        stored = await get(key);
        fresh = true;
      }
      for (;;) {
        if (!stored) {
          for (const w of batch) w.resolve(undefined);
          return;
        }
        const { value, outcomes, sure } = applyAll(stored.value, batch);
        if (!sure && !fresh) {
          stored = await get(key);
          fresh = true;
          continue;
        }
        let revision = stored.revision;
        let written = value;
        if (value !== stored.value) {
          const token = randomBytes(6).toString('base64url');
          written = { ...value, writes: [...(value.writes ?? []).slice(1 - WRITES_KEPT), token] };
          const bytes = encodeJsonCompact(written);
          let landed: number | undefined;
          try {
            landed = await kv.update(key, bytes, stored.revision);
          } catch (err) {
            if (answerLost(err)) landed = await resolveLostWrite(key, bytes, stored.revision, token, err);
            else if (!isCasConflict(err)) throw err;
          }
          if (landed === undefined) {
            lastWritten.delete(key);
            stored = await get(key);
            fresh = true;
            continue;
          }
          revision = landed;
          remember(key, { value: written, revision });
          await opts.after(key, written);
        }
        batch.forEach((w, i) => {
          const o = outcomes[i] as Outcome<R>;
          if ('error' in o) w.reject(o.error);
          else w.resolve({ value: o.value, revision });
        });
        return;
      }
    } catch (err) {
      lastWritten.delete(key);
      for (const w of batch) w.reject(err);
    }
  }

  return {
    get,
    async peek(key) {
      return lastWritten.get(key) ?? get(key);
    },
    update(key, change) {
      return new Promise((resolve, reject) => {
        const waiter = { change, resolve, reject };
        const q = queued.get(key);
        if (q) q.push(waiter);
        else queued.set(key, [waiter]);
        if (!draining.has(key)) void drain(key);
      });
    },
    async create(key, value, onTaken) {
      const bytes = encodeJsonCompact(value);
      const deadline = Date.now() + WRITE_RESOLVE_MS;
      for (let attempt = 1; ; attempt++) {
        try {
          const revision = await kv.create(key, bytes);
          remember(key, { value, revision });
          return { value, revision };
        } catch (err) {
          if (!answerLost(err) && !isCasConflict(err)) throw err;
          if (isCasConflict(err)) {
            const stored = await get(key);
            const standing = onTaken(stored, err);
            return { value: standing, revision: stored?.revision ?? 0 };
          }
          if (Date.now() >= deadline) throw new StoreOutcomeUnknown(opts.idOf(key), err as Error);
          await retryPause(attempt);
        }
      }
    },
    forget(key) {
      lastWritten.delete(key);
    },
    remember,
  };
}
