/**
 * The hosts of the inventory of the moment, or those a selector matches
 * (SPEC §10): the preview of what a request with that selector would run on.
 */
import { type Selector, selectorText } from '../contracts/selector.js';
import type { TaskDeps } from './deps.js';
import { hostsMatchingOrThrow } from './find-or-throw.js';

export interface HostView {
  id: number;
  name: string;
  address: string;
  /** The host's labels, its group's merged under its own (SPEC §9). */
  labels: Readonly<Record<string, string>>;
}

export interface HostList {
  /** The selector as text; `all` when none was given. */
  selector: string;
  total: number;
  /** In inventory order, the order a batch of the selector takes. */
  contents: HostView[];
}

/**
 * With a selector, the hosts it matches — none is 404 / 10002, as a request
 * with it would hear; without one, every host (an empty inventory lists none).
 */
export function listHosts(deps: Pick<TaskDeps, 'config'>, selector: Selector | undefined): HostList {
  const hosts = selector === undefined ? deps.config.hosts : hostsMatchingOrThrow(deps, selector);
  return {
    selector: selectorText(selector ?? 'all'),
    total: hosts.length,
    contents: hosts.map((h) => ({ id: h.id, name: h.name, address: h.address, labels: h.labels })),
  };
}
