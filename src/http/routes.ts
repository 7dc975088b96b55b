/**
 * SPEC §3's routes, each naming the operation it runs. Compute paths are
 * served bare (as in the seed) and under /api/v2.
 */
export interface Route {
  method: 'GET' | 'POST';
  /** Path with `:param` segments. */
  path: string;
  /** `op.{name}`: the operation named by the path's `:name` (the registry's, SPEC §8). */
  operation: string;
  /** Where the operation's input comes from besides path params. */
  from: 'none' | 'body' | 'query';
}

const compute: Route[] = [
  { method: 'POST', path: '/compute/hosts/batchRestartAgents', operation: 'agent.batchRestart', from: 'body' },
  { method: 'POST', path: '/compute/hosts/:hostId/agent/restart', operation: 'agent.restart', from: 'body' },
  { method: 'POST', path: '/compute/hosts/:hostId/agent/stop', operation: 'agent.stop', from: 'body' },
  { method: 'POST', path: '/compute/hosts/:hostId/agent/start', operation: 'agent.start', from: 'body' },
  { method: 'GET', path: '/compute/hosts/:hostId/agent', operation: 'agent.status', from: 'none' },
];

const tasks = '/api/v2/tasks/instances';
export const ROUTES: readonly Route[] = [
  ...compute,
  ...compute.map((r) => ({ ...r, path: `/api/v2${r.path}` })),
  { method: 'GET', path: tasks, operation: 'task.list', from: 'query' },
  { method: 'GET', path: `${tasks}/:taskId`, operation: 'task.get', from: 'query' },
  { method: 'POST', path: `${tasks}/:taskId/retry`, operation: 'task.retry', from: 'none' },
  { method: 'POST', path: `${tasks}/:taskId/rollback`, operation: 'task.rollback', from: 'none' },
  // A running batch held and let go (SPEC §10).
  { method: 'POST', path: `${tasks}/:taskId/pause`, operation: 'task.pause', from: 'none' },
  { method: 'POST', path: `${tasks}/:taskId/resume`, operation: 'task.resume', from: 'none' },
  { method: 'POST', path: `${tasks}/:taskId/cancel`, operation: 'task.cancel', from: 'none' },
  { method: 'POST', path: `${tasks}/:taskId/subtasks/:subtaskId/retry`, operation: 'subtask.retry', from: 'none' },
  { method: 'POST', path: `${tasks}/:taskId/subtasks/:subtaskId/skip`, operation: 'subtask.skip', from: 'none' },
  { method: 'POST', path: `${tasks}/:taskId/subtasks/:subtaskId/cancel`, operation: 'subtask.cancel', from: 'none' },
  { method: 'GET', path: `${tasks}/:taskId/subtasks/:subtaskId/log`, operation: 'subtask.log', from: 'none' },
  // Every operation of the registry, built in or configured (SPEC §8).
  { method: 'GET', path: '/api/v2/ocp-chatops/operations', operation: 'operation.list', from: 'none' },
  { method: 'POST', path: '/api/v2/ocp-chatops/operations/:name', operation: 'op.{name}', from: 'body' },
  // The inventory, or the hosts a selector matches (SPEC §10): the preview.
  { method: 'GET', path: '/api/v2/ocp-chatops/hosts', operation: 'host.list', from: 'query' },
];

/**
 * The API operation a matched route runs, and the path params left for its
 * input (`:name` names the operation and is not input).
 */
export function operationOfRoute(match: RouteMatch): { operation: string; params: Record<string, string> } {
  const { name, ...rest } = match.params;
  if (!match.route.operation.includes('{name}')) return { operation: match.route.operation, params: match.params };
  return { operation: match.route.operation.replace('{name}', name ?? ''), params: rest };
}

export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
}

/** The route for a method and path, with its decoded params; undefined when none. */
export function matchRoute(method: string, pathname: string): RouteMatch | undefined {
  const segments = pathname.split('/');
  for (const route of ROUTES) {
    if (route.method !== method) continue;
    const pattern = route.path.split('/');
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const matches = pattern.every((p, i) => {
      const seg = segments[i] as string;
      if (!p.startsWith(':')) return p === seg;
      try {
        params[p.slice(1)] = decodeURIComponent(seg);
      } catch {
        params[p.slice(1)] = seg; // malformed %-escape: let input validation refuse it
      }
      return true;
    });
    if (matches) return { route, params };
  }
  return undefined;
}
