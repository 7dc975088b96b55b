/**
 * The configuration as it is now (SPEC §9): the inventory — hosts, groups,
 * operations and their runbooks, approvals, freeze, batch defaults — follows
 * the file; the rest is what the process started with, as its connections,
 * streams and loops were built from it. Whoever needs the inventory reads
 * `current()` when it acts (deps.config is a getter onto it), never a copy.
 */
import { createHash } from 'node:crypto';
import type { Config } from './config.js';

/** The keys of a Config re-read on SIGHUP or a change of the file; any other is fixed at start. */
export const LIVE_KEYS: ReadonlySet<string> = new Set([
  'hosts',
  'groups',
  'operations',
  'runbooks',
  'approvals',
  'freeze',
  'batch',
]);

export interface InventoryVersion {
  /** 1 at start, one more per configuration taken (per process: compare `digest` across processes). */
  version: number;
  loadedAt: string;
  /** The file it was read from. */
  source: string;
  hosts: number;
  /** sha256 of the live keys' content: the same file gives the same digest in every process. */
  digest: string;
}

export interface ConfigSource {
  current(): Config;
  inventory(): InventoryVersion;
  /**
   * Take a newly read configuration: its live keys replace the running ones,
   * the others stay as they were. Returns the fixed keys it changed (they need
   * a restart) and whether the inventory changed at all.
   */
  replace(next: Config): { restartToApply: string[]; changed: boolean };
  /** Called after each change of the inventory; returns the unsubscribe. */
  subscribe(listener: (config: Config) => void): () => void;
}

function digestOf(config: Config): string {
  const live = Object.fromEntries(
    Object.entries(config)
      .filter(([k]) => LIVE_KEYS.has(k))
      .sort(([a], [b]) => a.localeCompare(b)),
  );
  return createHash('sha256').update(JSON.stringify(live)).digest('hex');
}

export function createConfigSource(initial: Config, now: () => Date = () => new Date()): ConfigSource {
  let config = initial;
  let digest = digestOf(initial);
  let version = 1;
  let loadedAt = now().toISOString();
  const listeners = new Set<(config: Config) => void>();
  return {
    current: () => config,
    inventory: () => ({ version, loadedAt, source: config.source, hosts: config.hosts.length, digest }),
    replace(next) {
      const restartToApply = Object.keys({ ...config, ...next })
        .filter((k) => !LIVE_KEYS.has(k) && k !== 'source')
        .filter((k) => JSON.stringify(config[k as keyof Config]) !== JSON.stringify(next[k as keyof Config]))
        .sort();
      const merged = Object.freeze(
        Object.fromEntries(
          Object.keys({ ...config, ...next }).map((k) => {
            const key = k as keyof Config;
            return [k, LIVE_KEYS.has(k) ? next[key] : config[key]];
          }),
        ),
      ) as unknown as Config;
      const nextDigest = digestOf(merged);
      if (nextDigest === digest) return { restartToApply, changed: false };
      config = merged;
      digest = nextDigest;
      version += 1;
      loadedAt = now().toISOString();
      for (const listener of listeners) listener(config);
      return { restartToApply, changed: true };
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
