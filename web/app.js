// The web page (SPEC §12): one shell for every page under /ui/; this script
// reads the path, asks the service for the data (the HTTP API under /ui/api/v2,
// signed in by the session cookie) and draws it. No library, no build step:
// plain DOM, text set as text (never as HTML), SVG for the DAG.
import { chainState, layoutDag, STATES, timelineOf } from './task-model.js';

const main = document.getElementById('main');
const who = document.getElementById('who');

/** The signed-in user: {username, roles, csrfToken}; null when signed out. */
let session = null;

// ------------------------------------------------------------------ DOM helpers

/** An element with attributes (on* as listeners) and children (strings become text). */
function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'g', 'rect', 'text', 'path', 'defs', 'marker', 'title', 'tspan'].includes(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  }
  return el;
}

function show(...nodes) {
  main.replaceChildren(...nodes.filter(Boolean));
}

const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
const fmtClock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');
function fmtDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
const elapsed = (from, to) => (from ? fmtDuration(Date.parse(to ?? new Date().toISOString()) - Date.parse(from)) : '');

function badge(state) {
  return h('span', { class: `badge state-${state}`, 'data-state': state }, state);
}

const can = (permission) => Boolean(session && (session.roles.includes('ADMIN') || session.roles.includes(permission)));

// ------------------------------------------------------------------ the service

class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code;
  }
}

/** One call of the API (its path as in docs/api.md), as the signed-in user. */
async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET') headers['x-csrf-token'] = session?.csrfToken ?? '';
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/ui${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = await res.json().catch(() => ({}));
  if (res.status === 401) {
    session = null;
    signIn();
    throw new ApiError(401, answer.error);
  }
  if (!answer.successful) throw new ApiError(res.status, answer.error);
  return answer.data;
}

function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, err instanceof Error ? err.message : String(err));
}

// ------------------------------------------------------------------ session

function drawWho() {
  if (!session) {
    who.replaceChildren();
    return;
  }
  who.replaceChildren(
    h('span', { class: 'user', title: session.roles.join(', ') }, session.username),
    h('button', { type: 'button', class: 'link', id: 'sign-out', onclick: signOut }, 'Sign out'),
  );
}

async function signOut() {
  await fetch('/ui/api/session/logout', {
    method: 'POST',
    headers: { 'x-csrf-token': session?.csrfToken ?? '' },
    credentials: 'same-origin',
  });
  session = null;
  stopLive();
  signIn();
}

function signIn() {
  stopLive();
  drawWho();
  const message = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h(
    'form',
    { class: 'card sign-in', id: 'sign-in' },
    h('h1', {}, 'Sign in'),
    h('label', {}, 'User', h('input', { name: 'username', autocomplete: 'username', required: true })),
    h(
      'label',
      {},
      'Password',
      h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    ),
    h('button', { type: 'submit' }, 'Sign in'),
    message,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const res = await fetch('/ui/api/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ username: data.get('username'), password: data.get('password') }),
    });
    const answer = await res.json().catch(() => ({}));
    if (!answer.successful) {
      message.hidden = false;
      message.textContent = answer.error?.message ?? `sign-in failed (HTTP ${res.status})`;
      return;
    }
    session = answer.data;
    route();
  });
  show(form);
  form.querySelector('input')?.focus();
}

// ------------------------------------------------------------------ pages

async function route() {
  drawWho();
  const path = location.pathname;
  try {
    const task = /^\/ui\/tasks\/([^/]+)$/.exec(path);
    if (task) return await taskPage(task[1]);
    const host = /^\/ui\/hosts\/([^/]+)$/.exec(path);
    if (host) return await hostPage(host[1]);
    if (path === '/ui/' || path === '/ui') return await listPage();
    show(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/ui/' }, 'All tasks')));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    show(errorBox(err));
  }
}

/** Tasks, newest first, with filters and pages: GET /api/v2/tasks/instances. */
async function listPage() {
  document.title = 'Tasks · ocp-chatops';
  const q = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const k of ['status', 'hostId', 'creator', 'name']) if (q.get(k)) query.set(k, q.get(k));
  const pageNo = Math.max(1, Number(q.get('page')) || 1);
  query.set('page', String(pageNo));
  query.set('size', '20');
  const [page, operations] = await Promise.all([
    api('GET', `/api/v2/tasks/instances?${query}`),
    api('GET', '/api/v2/ocp-chatops/operations').catch(() => []),
  ]);
  const names = operations.flatMap((o) => [o.title, o.batchTitle]);
  const select = (name, label, options) =>
    h(
      'label',
      {},
      label,
      h(
        'select',
        { name },
        h('option', { value: '' }, 'any'),
        options.map((o) => h('option', { value: o, selected: q.get(name) === o }, o)),
      ),
    );
  const filters = h(
    'form',
    { class: 'filters', method: 'GET', action: '/ui/' },
    select('status', 'Status', ['RUNNING', 'FAILED', 'SUCCESSFUL']),
    h(
      'label',
      {},
      'Host id',
      h('input', { name: 'hostId', inputmode: 'numeric', value: q.get('hostId') ?? '', size: 8 }),
    ),
    h(
      'label',
      {},
      'Creator',
      h('input', { name: 'creator', value: q.get('creator') ?? '', size: 10, placeholder: 'alice, slack:U…' }),
    ),
    select('name', 'Operation', names),
    h('button', { type: 'submit' }, 'Filter'),
  );
  const rows = page.contents.map((t) =>
    h(
      'tr',
      { 'data-task-id': t.id },
      h('td', {}, h('a', { href: `/ui/tasks/${t.id}` }, String(t.id))),
      h('td', {}, t.name),
      h('td', {}, badge(t.status)),
      h('td', {}, hostsOf(t)),
      h('td', {}, t.creator),
      h('td', {}, fmtTime(t.startTime)),
      h('td', {}, elapsed(t.startTime, t.status === 'RUNNING' ? undefined : t.finishTime)),
    ),
  );
  const link = (n, text) => {
    const p = new URLSearchParams(q);
    p.set('page', String(n));
    return h('a', { href: `/ui/?${p}` }, text);
  };
  const { number, totalPages, totalElements } = page.page;
  show(
    h('h1', {}, 'Tasks'),
    filters,
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { class: 'tasks' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Task', 'Name', 'Status', 'Hosts', 'Creator', 'Started', 'Took'].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        h('tbody', {}, rows),
      ),
    ),
    rows.length === 0 ? h('p', { class: 'muted' }, 'No task matches.') : null,
    h(
      'nav',
      { class: 'pager', 'aria-label': 'pages' },
      number > 1 ? link(number - 1, '← Newer') : null,
      h('span', {}, `page ${number} of ${Math.max(1, totalPages)} · ${totalElements} tasks`),
      number < totalPages ? link(number + 1, 'Older →') : null,
    ),
  );
}

function hostsOf(t) {
  const ids = t.context?.listMap?.host_ids ?? [String(t.hostId)];
  if (ids.length <= 1) return h('a', { href: `/ui/hosts/${t.hostId}` }, String(t.hostId));
  return `${ids.length} hosts`;
}

/** A host: its labels, its agent (read over SSH) and its tasks. */
async function hostPage(idText) {
  document.title = `Host ${idText} · ocp-chatops`;
  const [hosts, history] = await Promise.all([
    api('GET', '/api/v2/ocp-chatops/hosts')
      .then((l) => l.contents)
      .catch(() => []),
    api('GET', `/api/v2/tasks/instances?hostId=${encodeURIComponent(idText)}&size=20`),
  ]);
  const host = hosts.find((x) => String(x.id) === idText);
  const agent = h(
    'section',
    { class: 'card', id: 'agent' },
    h('h2', {}, 'Agent'),
    h('p', { class: 'muted' }, 'Reading…'),
  );
  show(
    h('h1', {}, `Host ${idText}${host?.name ? ` · ${host.name}` : ''}`),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Labels'),
      host && Object.keys(host.labels ?? {}).length > 0
        ? h(
            'ul',
            { class: 'labels' },
            Object.entries(host.labels).map(([k, v]) => h('li', {}, `${k}=${v}`)),
          )
        : h('p', { class: 'muted' }, 'none'),
    ),
    agent,
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'History'),
      h(
        'ul',
        { class: 'history' },
        history.contents.map((t) =>
          h(
            'li',
            {},
            h('a', { href: `/ui/tasks/${t.id}` }, `${t.id} ${t.name}`),
            ' ',
            badge(t.status),
            ` ${fmtTime(t.startTime)} by ${t.creator}`,
          ),
        ),
      ),
    ),
  );
  try {
    const s = await api('GET', `/api/v2/compute/hosts/${encodeURIComponent(idText)}/agent`);
    agent.replaceChildren(
      h('h2', {}, 'Agent ', badge(s.status)),
      h('p', { class: 'muted' }, `installed in ${s.installHome}`),
      h(
        'ul',
        {},
        s.processes.map((p) => h('li', {}, `${p.name} `, badge(p.status), p.pid ? ` pid ${p.pid}` : '')),
      ),
    );
  } catch (err) {
    agent.replaceChildren(h('h2', {}, 'Agent'), errorBox(err));
  }
}

// ------------------------------------------------------------------ the task page

/** What the task page holds while it is open. */
let live = null;

function stopLive() {
  live?.source?.close();
  if (live?.logTimer) clearInterval(live.logTimer);
  live = null;
}

async function taskPage(idText) {
  stopLive();
  document.title = `Task ${idText} · ocp-chatops`;
  const view = {
    id: idText,
    task: null,
    byId: new Map(),
    selectedChain: null,
    selectedSubtask: null,
    hostNames: new Map(),
    queue: [],
    frame: 0,
  };
  live = view;
  show(h('p', { class: 'muted' }, 'Loading…'));
  // Host names, where the user may see hosts (not needed: ids are shown otherwise).
  api('GET', '/api/v2/ocp-chatops/hosts')
    .then((hosts) => {
      for (const x of hosts.contents) view.hostNames.set(String(x.id), x.name);
    })
    .catch(() => undefined);
  // The events open with the task as stored (snapshot), then each change; a
  // dropped connection resumes after the last event seen (Last-Event-ID).
  const source = new EventSource(`/ui/api/tasks/${encodeURIComponent(idText)}/events`);
  view.source = source;
  source.addEventListener('snapshot', (e) => {
    if (live !== view) return;
    setTask(view, JSON.parse(e.data));
    drawTask(view);
  });
  source.addEventListener('task', (e) => {
    if (live !== view) return;
    view.queue.push(JSON.parse(e.data));
    if (!view.frame) view.frame = requestAnimationFrame(() => flush(view));
  });
  source.addEventListener('open', () => main.classList.remove('offline'));
  source.addEventListener('error', async () => {
    if (live !== view) return;
    main.classList.add('offline');
    if (!view.task) {
      // Not even the first answer: say why (signed out, no such task, no permission).
      source.close();
      try {
        await api('GET', `/api/v2/tasks/instances/${encodeURIComponent(idText)}?subtasks=false`);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) show(errorBox(err));
      }
    }
  });
}

function setTask(view, task) {
  view.task = task;
  view.byId = new Map(task.subtasks.map((s) => [s.id, s]));
}

/** Apply the events that came since the last frame, then draw once. */
function flush(view) {
  view.frame = 0;
  if (!view.task) return;
  const changed = new Set();
  for (const ev of view.queue.splice(0)) {
    const t = ev.task;
    for (const k of ['status', 'operation', 'finishTime', 'executor']) if (k in t) view.task[k] = t[k];
    if (t.context?.stringMap) view.task.context.stringMap = t.context.stringMap;
    for (const s of t.subtasks ?? []) {
      const known = view.byId.get(s.id);
      if (known) Object.assign(known, s);
      else {
        view.task.subtasks.push(s);
        view.byId.set(s.id, s);
      }
      changed.add(s.id);
    }
  }
  drawTask(view, changed);
}

function drawTask(view, changed) {
  const t = view.task;
  document.title = `Task ${t.id} ${t.status} · ocp-chatops`;
  const batch = Boolean(t.context?.parallel);
  if (!view.root) {
    view.root = {
      head: h('section', { class: 'card head', id: 'head' }),
      actions: h('div', { class: 'actions', id: 'task-actions' }),
      grid: batch ? h('section', { class: 'card', id: 'batch' }) : null,
      dag: h('section', { class: 'card', id: 'dag' }),
      timeline: h('section', { class: 'card', id: 'timeline' }),
      detail: h('section', { class: 'card', id: 'detail', hidden: true }),
    };
    const r = view.root;
    show(r.head, r.actions, r.grid, r.dag, r.detail, r.timeline);
    if (batch) buildGrid(view);
  }
  drawHead(view);
  if (batch) updateGrid(view, changed);
  const chain = batch ? chainOf(view, view.selectedChain) : t.subtasks;
  drawDag(view, chain);
  drawTimeline(view, chain);
  drawDetail(view);
}

function drawHead(view) {
  const t = view.task;
  const reason = t.context?.stringMap?.reason;
  const paused = t.context?.stringMap?.paused === 'true';
  const facts = [
    ['Status', h('span', {}, badge(t.status), paused ? ' (paused)' : '')],
    ['Operation', t.operation],
    ['Creator', t.creator],
    [
      'Hosts',
      t.context?.parallel
        ? `${(t.context.listMap.host_ids ?? []).length} hosts`
        : h('a', { href: `/ui/hosts/${t.hostId}` }, String(t.hostId)),
    ],
    ['Started', fmtTime(t.startTime)],
    ['Finished', t.finishTime && t.status !== 'RUNNING' ? fmtTime(t.finishTime) : '—'],
    ['Took', elapsed(t.startTime, t.status === 'RUNNING' ? undefined : t.finishTime)],
    ...(reason ? [['Reason', reason]] : []),
  ];
  view.root.head.replaceChildren(
    h('h1', {}, `${t.name} `, h('span', { class: 'muted' }, `#${t.id}`)),
    h(
      'dl',
      { class: 'facts' },
      facts.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', { 'data-fact': k }, v))),
    ),
  );
  const buttons = [];
  if (can('TASK_MANAGER') && t.status === 'FAILED') {
    buttons.push(action('Retry', `/api/v2/tasks/instances/${t.id}/retry`, null, view));
    const prohibited = t.context?.stringMap?.prohibit_rollback === 'true';
    if (!prohibited)
      buttons.push(action('Rollback', `/api/v2/tasks/instances/${t.id}/rollback`, 'Roll back this task?', view));
  }
  view.root.actions.replaceChildren(...buttons);
}

/** A button running one of the API's operations on the task; the answer (the task) is drawn. */
function action(label, path, confirmText, view) {
  return h(
    'button',
    {
      type: 'button',
      'data-action': label.toLowerCase(),
      onclick: async (e) => {
        if (confirmText && !window.confirm(confirmText)) return;
        const button = e.currentTarget;
        button.disabled = true;
        try {
          const task = await api('POST', path);
          if (live === view) {
            setTask(view, task);
            drawTask(view);
          }
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 401)) view.root.actions.append(errorBox(err));
        } finally {
          button.disabled = false;
        }
      },
    },
    label,
  );
}

// ---- a batch: one cell per host

function chainOf(view, idx) {
  if (idx === null || idx === undefined) return [];
  return view.task.subtasks.filter((s) => s.parallelIdx === idx).sort((a, b) => a.seriesId - b.seriesId);
}

function buildGrid(view) {
  const t = view.task;
  const hostIds = t.context.listMap.host_ids ?? [];
  view.chains = new Map();
  for (const s of t.subtasks) {
    const list = view.chains.get(s.parallelIdx) ?? [];
    list.push(s);
    view.chains.set(s.parallelIdx, list);
  }
  view.cells = [];
  const grid = h('div', { class: 'grid', role: 'list', 'aria-label': 'hosts of the batch' });
  const frag = document.createDocumentFragment();
  for (let i = 0; i < hostIds.length; i++) {
    const cell = h('button', {
      type: 'button',
      class: 'cell',
      role: 'listitem',
      'data-chain': i,
      'data-host-id': hostIds[i],
    });
    view.cells.push(cell);
    frag.append(cell);
  }
  grid.append(frag);
  grid.addEventListener('click', (e) => {
    const cell = e.target.closest?.('.cell');
    if (!cell) return;
    view.selectedChain = Number(cell.dataset.chain);
    view.selectedSubtask = null;
    for (const c of grid.querySelectorAll('.selected')) c.classList.remove('selected');
    cell.classList.add('selected');
    drawTask(view);
    view.root.dag.scrollIntoView?.({ block: 'nearest' });
  });
  view.legend = h('ul', { class: 'legend', 'aria-label': 'states' });
  view.root.grid.replaceChildren(
    h('h2', {}, 'Hosts'),
    view.legend,
    grid,
    h('p', { class: 'muted' }, 'Choose a host to see its chain.'),
  );
  view.grid = grid;
}

function updateGrid(view, changed) {
  const hostIds = view.task.context.listMap.host_ids ?? [];
  const touched = new Set();
  if (changed) {
    for (const id of changed) {
      const s = view.byId.get(id);
      if (!s) continue;
      const list = view.chains.get(s.parallelIdx) ?? [];
      if (!list.includes(s)) list.push(s);
      view.chains.set(s.parallelIdx, list);
      touched.add(s.parallelIdx);
    }
  } else {
    view.chains = new Map();
    for (const s of view.task.subtasks) {
      const list = view.chains.get(s.parallelIdx) ?? [];
      list.push(s);
      view.chains.set(s.parallelIdx, list);
    }
    for (let i = 0; i < hostIds.length; i++) touched.add(i);
  }
  view.chainStates ??= [];
  for (const i of touched) {
    const cell = view.cells[i];
    if (!cell) continue;
    const state = chainState(view.chains.get(i) ?? []);
    view.chainStates[i] = state;
    const name = view.hostNames.get(String(hostIds[i]));
    const label = `host ${hostIds[i]}${name ? ` (${name})` : ''}: ${state}`;
    cell.className = `cell state-${state}${view.selectedChain === i ? ' selected' : ''}`;
    cell.dataset.state = state;
    cell.title = label;
    cell.setAttribute('aria-label', label);
  }
  const counts = new Map();
  for (const s of view.chainStates) if (s) counts.set(s, (counts.get(s) ?? 0) + 1);
  view.legend.replaceChildren(
    ...STATES.filter((s) => counts.has(s)).map((s) =>
      h(
        'li',
        { 'data-state': s },
        h('span', { class: `swatch state-${s}`, 'aria-hidden': 'true' }),
        `${s} ${counts.get(s)}`,
      ),
    ),
  );
}

// ---- the DAG, as SVG

function drawDag(view, subtasks) {
  const t = view.task;
  const batch = Boolean(t.context?.parallel);
  const box = view.root.dag;
  if (subtasks.length === 0) {
    box.replaceChildren(h('h2', {}, 'Steps'), h('p', { class: 'muted' }, batch ? 'Choose a host above.' : 'No steps.'));
    return;
  }
  const layout = layoutDag(subtasks);
  const { W, H } = layout;
  const svg = h('svg', {
    class: 'dag',
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    role: 'group',
    'aria-label': 'steps and their order',
  });
  svg.append(
    h(
      'defs',
      {},
      h(
        'marker',
        {
          id: 'arrow',
          viewBox: '0 0 10 10',
          refX: 9,
          refY: 5,
          markerWidth: 7,
          markerHeight: 7,
          orient: 'auto-start-reverse',
        },
        h('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }),
      ),
    ),
  );
  for (const e of layout.edges) {
    const midY = (e.from.y + H + e.to.y) / 2;
    svg.append(
      h('path', {
        class: 'edge',
        d: `M ${e.from.x + W / 2} ${e.from.y + H} C ${e.from.x + W / 2} ${midY}, ${e.to.x + W / 2} ${midY}, ${e.to.x + W / 2} ${e.to.y - 2}`,
        'marker-end': 'url(#arrow)',
      }),
    );
  }
  for (const n of layout.nodes) {
    const s = n.subtask;
    const times = s.startTime
      ? `${fmtClock(s.startTime)}${s.finishTime && !['RUNNING', 'CANCELING'].includes(s.status) ? ` → ${fmtClock(s.finishTime)}` : ''} · ${elapsed(s.startTime, ['RUNNING', 'CANCELING'].includes(s.status) ? undefined : s.finishTime)}`
      : 'not started';
    const g = h(
      'g',
      {
        class: `node state-${s.status}${view.selectedSubtask === s.id ? ' selected' : ''}`,
        transform: `translate(${n.x} ${n.y})`,
        tabindex: 0,
        role: 'button',
        'data-subtask-id': s.id,
        'data-name': s.name,
        'data-state': s.status,
        'aria-label': `${s.name}: ${s.status}`,
      },
      h('title', {}, `${s.name}: ${s.status}, ${s.operation}`),
      h('rect', { width: W, height: H, rx: 8 }),
      h('text', { x: 12, y: 22, class: 'name' }, clipText(s.name, 34)),
      h(
        'text',
        { x: 12, y: 42, class: 'state' },
        `${s.status} · ${s.operation}${s.runTime > 1 ? ` · run ${s.runTime}` : ''}`,
      ),
      h('text', { x: 12, y: 60, class: 'times' }, times),
    );
    const open = () => {
      view.selectedSubtask = s.id;
      drawTask(view);
    };
    g.addEventListener('click', open);
    g.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        open();
      }
    });
    svg.append(g);
  }
  const hostId = batch ? t.context.listMap.host_ids?.[view.selectedChain] : t.hostId;
  const name = view.hostNames.get(String(hostId));
  box.replaceChildren(
    h('h2', {}, batch ? `Host ${hostId}${name ? ` (${name})` : ''}: its chain` : 'Steps'),
    h('div', { class: 'dag-box' }, svg),
  );
}

function clipText(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// ---- the timeline

/** A step's bar, placed by CSSOM (the page's Content Security Policy refuses style attributes). */
function bar(r) {
  const span = h('span', { class: `span state-${r.subtask.status}` });
  span.style.left = `${(r.left * 100).toFixed(2)}%`;
  span.style.width = `${Math.max(0.5, r.width * 100).toFixed(2)}%`;
  return span;
}

function drawTimeline(view, subtasks) {
  const box = view.root.timeline;
  const rows = timelineOf(subtasks, Date.now());
  if (rows.length === 0) {
    box.replaceChildren(h('h2', {}, 'Timeline'), h('p', { class: 'muted' }, 'Nothing has started yet.'));
    return;
  }
  box.replaceChildren(
    h('h2', {}, 'Timeline'),
    h(
      'ol',
      { class: 'timeline' },
      rows.map((r) =>
        h(
          'li',
          { 'data-subtask-id': r.subtask.id },
          h(
            'span',
            { class: 'label' },
            `${r.subtask.name} — ${r.subtask.status}, ${fmtClock(r.subtask.startTime)}, ${fmtDuration(r.ms)}`,
          ),
          h('span', { class: 'track', 'aria-hidden': 'true' }, bar(r)),
        ),
      ),
    ),
  );
}

// ---- a subtask: its facts, its buttons, its output

function drawDetail(view) {
  const box = view.root.detail;
  const s = view.selectedSubtask === null ? undefined : view.byId.get(view.selectedSubtask);
  if (!s) {
    box.hidden = true;
    if (view.logTimer) clearInterval(view.logTimer);
    view.logTimer = undefined;
    return;
  }
  box.hidden = false;
  const t = view.task;
  const buttons = [];
  if (can('TASK_MANAGER')) {
    const base = `/api/v2/tasks/instances/${t.id}/subtasks/${s.id}`;
    if (s.status === 'FAILED') {
      buttons.push(action('Retry step', `${base}/retry`, null, view));
      buttons.push(action('Skip', `${base}/skip`, `Skip "${s.name}" and let the steps after it run?`, view));
    }
    if (s.status === 'RUNNING') buttons.push(action('Cancel', `${base}/cancel`, `Cancel "${s.name}"?`, view));
  }
  const running = s.status === 'RUNNING' || s.status === 'CANCELING';
  const known = box.querySelector('pre.output');
  const output =
    known && box.dataset.subtaskId === String(s.id) ? known : h('pre', { class: 'output', id: 'output' }, '…');
  box.dataset.subtaskId = String(s.id);
  box.replaceChildren(
    h('h2', {}, `${s.name} `, badge(s.status)),
    h(
      'p',
      { class: 'muted' },
      `${s.operation} · run ${s.runTime} · timeout ${s.timeout} s · started ${fmtTime(s.startTime)}${s.finishTime && !running ? ` · finished ${fmtTime(s.finishTime)}` : ''}`,
    ),
    h('div', { class: 'actions' }, buttons),
    h('h3', {}, running ? 'Output (following while it runs)' : 'Output'),
    output,
  );
  const load = async () => {
    try {
      const log = await api('GET', `/api/v2/tasks/instances/${t.id}/subtasks/${s.id}/log`);
      if (box.dataset.subtaskId !== String(s.id)) return;
      output.textContent =
        log.log === '' ? '(no output)' : `${log.truncated ? '… (earlier output cut)\n' : ''}${log.log}`;
      output.dataset.loaded = s.status;
    } catch (err) {
      output.textContent = err.message;
    }
  };
  // Read again on every change of the step, and every 2 s while it runs.
  if (output.dataset.loaded !== s.status) load();
  if (view.logTimer) clearInterval(view.logTimer);
  view.logTimer = running ? setInterval(load, 2000) : undefined;
}

// ------------------------------------------------------------------ start

async function start() {
  try {
    const res = await fetch('/ui/api/session', { credentials: 'same-origin' });
    const answer = await res.json().catch(() => ({}));
    session = answer.successful ? answer.data : null;
  } catch {
    session = null;
  }
  if (!session) signIn();
  else route();
}

start();
