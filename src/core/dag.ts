/**
 * DAG rules over subtasks: validation, the ready set, and whether the graph has
 * come to rest. Pure functions over plain nodes.
 */
import type { SubtaskStatus } from '../contracts/ocp-task.js';

export interface DagNode {
  id: number;
  upstreams: readonly number[];
}

export interface StatusNode extends DagNode {
  status: SubtaskStatus;
}

/** Problems in a graph, each a sentence naming the node; empty when valid. */
export function validateDag(nodes: readonly DagNode[]): string[] {
  const problems: string[] = [];
  const ids = new Set<number>();
  for (const n of nodes) {
    if (ids.has(n.id)) problems.push(`node ${n.id} appears twice`);
    ids.add(n.id);
  }
  for (const n of nodes) {
    for (const up of n.upstreams) {
      if (up === n.id) problems.push(`node ${n.id} depends on itself`);
      else if (!ids.has(up)) problems.push(`node ${n.id} has unknown upstream ${up}`);
    }
  }
  if (problems.length > 0) return problems;

  // Kahn's algorithm: whatever is never released sits on or behind a cycle.
  const pending = new Map(nodes.map((n) => [n.id, n.upstreams.length]));
  const downstreams = downstreamMap(nodes);
  const queue = nodes.filter((n) => n.upstreams.length === 0).map((n) => n.id);
  if (nodes.length > 0 && queue.length === 0) problems.push('graph has no starting node');
  while (queue.length > 0) {
    const id = queue.shift() as number;
    pending.delete(id);
    for (const d of downstreams.get(id) ?? []) {
      const left = (pending.get(d) ?? 0) - 1;
      pending.set(d, left);
      if (left === 0) queue.push(d);
    }
  }
  const stuck = [...pending.keys()];
  if (stuck.length > 0) {
    const inCycle = stuck.filter((id) => reaches(id, id, downstreams));
    if (inCycle.length > 0) problems.push(`cycle through nodes ${inCycle.join(', ')}`);
    const behind = stuck.filter((id) => !inCycle.includes(id));
    if (behind.length > 0) problems.push(`nodes ${behind.join(', ')} are unreachable (behind a cycle)`);
  }
  return problems;
}

export function downstreamMap(nodes: readonly DagNode[]): Map<number, number[]> {
  const map = new Map<number, number[]>(nodes.map((n) => [n.id, []]));
  for (const n of nodes) for (const up of n.upstreams) map.get(up)?.push(n.id);
  return map;
}

function reaches(from: number, target: number, downstreams: Map<number, number[]>): boolean {
  const seen = new Set<number>();
  const stack = [...(downstreams.get(from) ?? [])];
  while (stack.length > 0) {
    const id = stack.pop() as number;
    if (id === target) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(downstreams.get(id) ?? []));
  }
  return false;
}

/** PENDING nodes whose upstreams are all SUCCESSFUL: they may start now. */
export function readySet(nodes: readonly StatusNode[]): number[] {
  const status = new Map(nodes.map((n) => [n.id, n.status]));
  return nodes
    .filter((n) => n.status === 'PENDING' && n.upstreams.every((u) => status.get(u) === 'SUCCESSFUL'))
    .map((n) => n.id);
}

/** Nothing runs or waits to run, and nothing pending can become ready. */
export function isAtRest(nodes: readonly StatusNode[]): boolean {
  const active = nodes.some((n) => n.status === 'READY' || n.status === 'RUNNING' || n.status === 'CANCELING');
  return !active && readySet(nodes).length === 0;
}
