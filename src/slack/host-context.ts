/** What the Block Kit renderers need to name hosts: names by id, and each subtask's host. */
import type { Config } from '../config.js';

export interface HostContext {
  hostNames: Record<number, string>;
  hostOfSubtask: Record<number, number>;
}

export function hostContext(config: Config, steps: Record<string, { hostId: number }> = {}): HostContext {
  return {
    hostNames: Object.fromEntries(config.hosts.map((h) => [h.id, h.name])),
    hostOfSubtask: Object.fromEntries(Object.entries(steps).map(([id, s]) => [Number(id), s.hostId])),
  };
}
