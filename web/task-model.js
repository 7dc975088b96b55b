// What the task page computes from a task, without the DOM: the state of a
// batch's host chain, where each DAG node goes, and the timeline's bars.

/** Every state a step or a host may show, in the legend's order. */
export const STATES = ['RUNNING', 'CANCELING', 'READY', 'PENDING', 'FAILED', 'SUCCESSFUL'];

/**
 * A host chain's one state: FAILED if a step failed, RUNNING while one runs
 * (CANCELING while one is being cancelled), SUCCESSFUL when all did, READY
 * when its next step waits for an executor, else PENDING (not started).
 */
export function chainState(subtasks) {
  const has = (s) => subtasks.some((x) => x.status === s);
  if (has('FAILED')) return 'FAILED';
  if (has('CANCELING')) return 'CANCELING';
  if (has('RUNNING')) return 'RUNNING';
  if (subtasks.length > 0 && subtasks.every((x) => x.status === 'SUCCESSFUL')) return 'SUCCESSFUL';
  if (has('READY')) return 'READY';
  if (has('SUCCESSFUL')) return 'RUNNING'; // between two steps
  return 'PENDING';
}

/**
 * Nodes in rows by depth (a node one row below its deepest upstream), side by
 * side within a row; an edge from each upstream to its downstream. A chain
 * comes out as one column, which fits a phone.
 */
export function layoutDag(subtasks) {
  const W = 300;
  const H = 68;
  const GAP_X = 24;
  const GAP_Y = 40;
  const byId = new Map(subtasks.map((s) => [s.id, s]));
  const depth = new Map();
  const depthOf = (s, seen = new Set()) => {
    if (depth.has(s.id)) return depth.get(s.id);
    if (seen.has(s.id)) return 0; // a cycle would be a bug elsewhere: do not hang the page
    seen.add(s.id);
    const ups = (s.upstreams ?? []).map((u) => byId.get(u)).filter(Boolean);
    const d = ups.length === 0 ? 0 : 1 + Math.max(...ups.map((u) => depthOf(u, seen)));
    depth.set(s.id, d);
    return d;
  };
  const rows = [];
  for (const s of [...subtasks].sort((a, b) => a.seriesId - b.seriesId || a.id - b.id)) {
    const d = depthOf(s);
    rows[d] ??= [];
    rows[d].push(s);
  }
  const widest = Math.max(1, ...rows.map((r) => r?.length ?? 0));
  const width = widest * W + (widest - 1) * GAP_X + 4;
  const nodes = [];
  const at = new Map();
  rows.forEach((row, d) => {
    const rowWidth = row.length * W + (row.length - 1) * GAP_X;
    const x0 = (width - rowWidth) / 2;
    row.forEach((s, i) => {
      const n = { subtask: s, x: x0 + i * (W + GAP_X), y: 2 + d * (H + GAP_Y) };
      nodes.push(n);
      at.set(s.id, n);
    });
  });
  const edges = [];
  for (const n of nodes) {
    for (const u of n.subtask.upstreams ?? []) {
      const from = at.get(u);
      if (from) edges.push({ from, to: n });
    }
  }
  return { nodes, edges, width, height: rows.length * (H + GAP_Y) - GAP_Y + 4, W, H };
}

/**
 * One bar per step that started, in start order: `left` and `width` as
 * fractions of the span from the first start to the last end (or now, while
 * one runs); `ms` how long it took or has taken.
 */
export function timelineOf(subtasks, nowMs) {
  const running = (s) => s.status === 'RUNNING' || s.status === 'CANCELING';
  const started = subtasks
    .filter((s) => s.startTime)
    .map((s) => {
      const from = Date.parse(s.startTime);
      const to = running(s) || !s.finishTime ? nowMs : Date.parse(s.finishTime);
      return { subtask: s, from, to: Math.max(from, to) };
    })
    .sort((a, b) => a.from - b.from);
  if (started.length === 0) return [];
  const t0 = started[0].from;
  const t1 = Math.max(...started.map((r) => r.to), t0 + 1);
  const span = t1 - t0;
  return started.map((r) => ({
    subtask: r.subtask,
    left: (r.from - t0) / span,
    width: (r.to - r.from) / span,
    ms: r.to - r.from,
  }));
}
