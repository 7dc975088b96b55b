/**
 * The web page (SPEC §12) in a real browser (Debian's Chromium) against a
 * whole stack: real NATS, real sshd with simulated agents. Signing in, a
 * restart followed live node by node, a failed step's output, a viewer's
 * page without buttons and a change without the CSRF token refused, a
 * manager's Retry, and the page on a 390-px-wide phone.
 *
 * With UI_SCREENSHOTS=<dir> set, it saves the task page and the phone view
 * there (docs/ holds the ones the README shows).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { Service } from '../../src/service.js';
import { launchBrowser, newContext, signInAt } from '../helpers/browser.js';
import { apiClient } from '../helpers/http.js';
import { taskEvents } from '../helpers/requests.js';
import { clearFaults, setFault, setStepDurations } from '../helpers/sim-agent.js';
import { type Stack, startStack, waitForTask } from '../helpers/stack.js';

const SHOTS = process.env.UI_SCREENSHOTS;

interface Frame {
  id?: string;
  event?: string;
  data: string;
}

/** Server-sent events from `res` until `enough` says so (the stream is then closed). */
async function readFrames(res: Response, enough: (frames: Frame[]) => boolean): Promise<Frame[]> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const frames: Frame[] = [];
  let buffer = '';
  while (!enough(frames)) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const frame: Frame = { data: '' };
      for (const line of buffer.slice(0, end).split('\n')) {
        const [field, ...rest] = line.split(': ');
        const value = rest.join(': ');
        if (field === 'id') frame.id = value;
        else if (field === 'event') frame.event = value;
        else if (field === 'data') frame.data += value;
      }
      if (frame.event) frames.push(frame);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
    }
  }
  await reader.cancel();
  return frames;
}

/** The DAG's nodes as the page shows them: name and state in words. */
const nodesOf = (page: Page) =>
  page.$$eval('#dag g.node', (nodes) =>
    nodes.map((n) => ({ name: n.getAttribute('data-name'), state: n.getAttribute('data-state') })),
  );

describe('the web page', () => {
  let stack: Stack;
  let svc: Service;
  let api: ReturnType<typeof apiClient>;
  let browser: Browser;
  let base: string;

  before(async () => {
    stack = await startStack({ hosts: 2, stepTimeout: 20 });
    svc = await stack.startService();
    api = apiClient(svc.httpPort as number);
    base = `http://127.0.0.1:${svc.httpPort}`;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  async function failedTask(): Promise<OcpTask> {
    const host = stack.sshd.hosts[1];
    assert.ok(host);
    setFault(host.agentHome, 'restart', 'fail');
    const a = await api<OcpTask>('POST', `/compute/hosts/${host.id}/agent/restart`, { body: { reason: 'web test' } });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const t = await waitForTask(stack.nc, a.body.data.id);
    assert.equal(t.status, 'FAILED');
    return t;
  }

  it('serves every page’s shell signed out, then asks for a sign-in; a wrong password is told', async () => {
    for (const path of ['/ui/', '/ui/tasks/123', '/ui/hosts/1']) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
      const html = await res.text();
      assert.doesNotMatch(html, /secret|csrf/i, 'nothing secret in the shell');
    }
    const session = await fetch(`${base}/ui/api/session`);
    assert.equal(session.status, 401);
    assert.equal(session.headers.get('www-authenticate'), null, 'no Basic prompt for the page');

    const context = await newContext(browser);
    const page = await context.newPage();
    await page.goto(`${base}/ui/`);
    await page.locator('#sign-in input[name=username]').fill('operator');
    await page.locator('#sign-in input[name=password]').fill('not the password');
    await page.locator('#sign-in button[type=submit]').click();
    await page.getByRole('alert').filter({ hasText: 'missing or wrong credentials' }).waitFor();

    await signInAt(page, base, '/ui/', 'operator');
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    const cookies = await context.cookies();
    const cookie = cookies.find((c) => c.name === 'ocp_session');
    assert.ok(cookie, 'a session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/');
    assert.ok(cookie.expires > Date.now() / 1000, 'it expires');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the script cannot read it');

    await page.locator('#sign-out').click();
    await page.locator('#sign-in').waitFor();
    assert.equal((await page.request.get(`${base}/ui/api/session`)).status(), 401, 'signed out for the service too');
    await context.close();
  });

  it('shows a restart started over HTTP going from RUNNING to SUCCESSFUL live, node by node, without reloading', async () => {
    const host = stack.sshd.hosts[0];
    assert.ok(host);
    // Each agent command takes ≥ 400 ms, so every step is seen running.
    setStepDurations(host.agentHome, { status: 400, restart: 400, stop: 400, start: 400 });
    const context = await newContext(browser);
    const page = await context.newPage();
    await signInAt(page, base, '/ui/', 'operator');
    const a = await api<OcpTask>('POST', `/compute/hosts/${host.id}/agent/restart`, { body: { reason: 'live' } });
    assert.equal(a.status, 200);
    const task = a.body.data;
    await page.goto(`${base}/ui/tasks/${task.id}`);
    await page.locator('#dag g.node').first().waitFor();
    // Every drawing of the DAG, as its states in words, from now on.
    // (A string, not a function: the test's compiler would add helpers the page does not have.)
    await page.evaluate(`(() => {
      window.loadedOnce = true;
      window.seen = [];
      const record = () => {
        const now = [...document.querySelectorAll('#dag g.node')]
          .map((n) => n.getAttribute('data-name') + '=' + n.getAttribute('data-state'))
          .join('|');
        if (window.seen.at(-1) !== now) window.seen.push(now);
      };
      record();
      new MutationObserver(record).observe(document.getElementById('dag'), { childList: true, subtree: true });
    })()`);
    await page.locator('#head [data-fact=Status] [data-state=SUCCESSFUL]').waitFor({ timeout: 30_000 });
    const w = (await page.evaluate('({ seen: window.seen, loadedOnce: window.loadedOnce })')) as {
      seen: string[];
      loadedOnce: boolean;
    };
    assert.equal(w.loadedOnce, true, 'the page was not reloaded');
    const names = task.subtasks.map((s) => s.name);
    const states = w.seen.map((line) => new Map(line.split('|').map((p) => p.split('=') as [string, string])));
    // Each step was shown RUNNING, while those before it were SUCCESSFUL and those after it not started.
    names.forEach((name, i) => {
      const shown = states.some(
        (m) =>
          m.get(name) === 'RUNNING' &&
          names.slice(0, i).every((n) => m.get(n) === 'SUCCESSFUL') &&
          names.slice(i + 1).every((n) => m.get(n) === 'PENDING' || m.get(n) === 'READY'),
      );
      assert.ok(shown, `${name} shown running in its turn; seen:\n${w.seen.join('\n')}`);
    });
    assert.deepEqual(
      (await nodesOf(page)).map((n) => n.state),
      names.map(() => 'SUCCESSFUL'),
    );
    // The timeline has a bar per step, each named with its state.
    assert.equal(await page.locator('#timeline li').count(), names.length);
    const bars = await page.$$eval('#timeline .span', (els) => els.map((e) => e.getBoundingClientRect().width));
    assert.ok(bars.length === names.length && bars.every((w) => w > 0), `a visible bar per step: ${bars.join()}`);
    assert.doesNotMatch((await page.locator('main').textContent()) ?? '', /\bnull\b|undefined/);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'ui-task.png'), fullPage: true });
    setStepDurations(host.agentHome, undefined);
    await context.close();
  });

  it('streams a task’s events after Last-Event-ID, so a dropped connection misses none; only to a session', async () => {
    const done = (await api<{ contents: OcpTask[] }>('GET', '/api/v2/tasks/instances?status=SUCCESSFUL&size=1')).body
      .data.contents[0];
    assert.ok(done);
    const events = `${base}/ui/api/tasks/${done.id}/events`;
    assert.equal((await fetch(events)).status, 401, 'no session, no events');
    const signIn = await fetch(`${base}/ui/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'viewer', password: 'viewer-secret-3' }),
    });
    assert.equal(signIn.status, 200);
    const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0] as string;
    const stored = await taskEvents(stack.nc, done.id);
    assert.ok(stored.length >= 13);

    // Fresh: the task as stored, under the id of the last event before it.
    const fresh = await fetch(events, { headers: { cookie } });
    assert.equal(fresh.status, 200);
    assert.match(fresh.headers.get('content-type') ?? '', /text\/event-stream/);
    const [snapshot] = await readFrames(fresh, (f) => f.length >= 1);
    assert.equal(snapshot?.event, 'snapshot');
    assert.equal((JSON.parse(snapshot?.data ?? '{}') as OcpTask).status, 'SUCCESSFUL');
    const lastId = Number(snapshot?.id);
    assert.ok(lastId > 0);

    // Resumed after the task's 4th event: the 5th on, in order, each once, and no snapshot.
    const all = await fetch(events, { headers: { cookie, 'last-event-id': '0' } });
    const everything = await readFrames(all, (f) => f.length >= stored.length);
    const ids = everything.map((f) => Number(f.id));
    assert.equal(ids.at(-1), lastId);
    const resumed = await fetch(events, { headers: { cookie, 'last-event-id': String(ids[3]) } });
    const rest = await readFrames(resumed, (f) => f.length >= stored.length - 4);
    assert.deepEqual(
      rest.map((f) => [f.event, Number(f.id), (JSON.parse(f.data) as { type: string }).type]),
      stored.slice(4).map((e, i) => ['task', ids[4 + i], e.type]),
    );
  });

  it('shows a failed step’s output on its page', async () => {
    const t = await failedTask();
    const failed = t.subtasks.find((s) => s.status === 'FAILED');
    assert.ok(failed);
    const context = await newContext(browser);
    const page = await context.newPage();
    await signInAt(page, base, `/ui/tasks/${t.id}`, 'viewer');
    await page.locator(`#dag g.node[data-subtask-id="${failed.id}"][data-state=FAILED]`).click();
    await page.locator('#output').filter({ hasText: 'simulated failure of restart' }).waitFor();
    assert.match((await page.locator('#detail h2').textContent()) ?? '', /FAILED/);
    await context.close();
    clearFaults(stack.sshd.hosts[1]?.agentHome as string);
  });

  it('shows a viewer no buttons, and refuses a change without the CSRF token (403) or the role', async () => {
    const t = await failedTask();
    const failed = t.subtasks.find((s) => s.status === 'FAILED');
    assert.ok(failed);
    const context = await newContext(browser);
    const page = await context.newPage();
    await signInAt(page, base, `/ui/tasks/${t.id}`, 'viewer');
    await page.locator(`#dag g.node[data-subtask-id="${failed.id}"]`).click();
    await page.locator('#output').filter({ hasText: 'simulated failure' }).waitFor();
    assert.equal(await page.locator('button[data-action]').count(), 0, 'no Retry, Rollback, Skip or Cancel');

    // With the viewer's session and its token: the API's own role check.
    const asViewer = await page.evaluate(async (path) => {
      const s = await (await fetch('/ui/api/session')).json();
      const r = await fetch(path, { method: 'POST', headers: { 'x-csrf-token': s.data.csrfToken } });
      return { status: r.status, body: await r.json() };
    }, `/ui/api/v2/tasks/instances/${t.id}/retry`);
    assert.equal(asViewer.status, 403);
    assert.equal(asViewer.body.error.code, 30014);
    assert.match(asViewer.body.error.message, /TASK_MANAGER/);
    await context.close();

    // A manager's session, a forged POST without the token: refused, nothing run.
    const managers = await newContext(browser);
    const mpage = await managers.newPage();
    await signInAt(mpage, base, '/ui/', 'operator');
    for (const headers of [{}, { 'x-csrf-token': 'forged' }] as Array<Record<string, string>>) {
      const forged = await mpage.request.post(`${base}/ui/api/v2/tasks/instances/${t.id}/retry`, { headers });
      assert.equal(forged.status(), 403);
      const body = (await forged.json()) as { error: { code: number; message: string } };
      assert.equal(body.error.code, 30014);
      assert.match(body.error.message, /CSRF/);
    }
    const logout = await mpage.request.post(`${base}/ui/api/session/logout`);
    assert.equal(logout.status(), 403, 'signing out needs the token too');
    const still = await api<OcpTask>('GET', `/api/v2/tasks/instances/${t.id}`);
    assert.equal(still.body.data.status, 'FAILED', 'nothing was retried');
    await managers.close();
  });

  it('runs the task again on a manager’s Retry click, and shows it succeed', async () => {
    const t = await failedTask();
    clearFaults(stack.sshd.hosts[1]?.agentHome as string);
    const context = await newContext(browser);
    const page = await context.newPage();
    await signInAt(page, base, `/ui/tasks/${t.id}`, 'operator');
    await page.locator('#head [data-fact=Status] [data-state=FAILED]').waitFor();
    await page.locator('button[data-action=retry]').click();
    await page
      .locator('#head [data-fact=Status] [data-state=SUCCESSFUL]')
      .waitFor({ timeout: 30_000 })
      .catch(async (err) => {
        console.log((await page.locator('main').innerHTML()).slice(0, 6000));
        throw err;
      });
    const after = await api<OcpTask>('GET', `/api/v2/tasks/instances/${t.id}`);
    assert.equal(after.body.data.status, 'SUCCESSFUL');
    const retried = after.body.data.subtasks.find((s) => s.name === 'Restart pos proxy');
    assert.equal(retried?.operation, 'RETRY');
    assert.equal(retried?.runTime, 2);
    assert.match((await nodesOf(page)).map((n) => n.state).join(), /^(SUCCESSFUL,){4}SUCCESSFUL$/);
    await context.close();
  });

  it('lists tasks newest first, filtered by status, host, creator and operation', async () => {
    const host = stack.sshd.hosts[0];
    assert.ok(host);
    const mine = await api<OcpTask>('POST', `/compute/hosts/${host.id}/agent/restart`, { user: 'admin' });
    assert.equal(mine.status, 200);
    await waitForTask(stack.nc, mine.body.data.id);
    const context = await newContext(browser);
    const page = await context.newPage();
    await signInAt(page, base, '/ui/', 'viewer');
    const rows = () =>
      page.$$eval('table.tasks tbody tr', (trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
      );
    await page.locator('table.tasks tbody tr').first().waitFor();
    const all = await rows();
    const ids = all.map((r) => Number(r[0]));
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => b - a),
      'newest first',
    );
    await page.locator('.filters input[name=creator]').fill('admin');
    await page.locator('.filters button[type=submit]').click();
    await page.waitForURL(/creator=admin/);
    await page.locator('table.tasks tbody tr').first().waitFor();
    assert.deepEqual(
      (await rows()).map((r) => [r[0], r[4]]),
      [[String(mine.body.data.id), 'admin']],
    );
    await page.goto(
      `${base}/ui/?status=FAILED&creator=operator&name=Restart+OCP+agent&hostId=${stack.sshd.hosts[1]?.id}`,
    );
    await page.locator('table.tasks tbody tr').first().waitFor();
    const failed = await rows();
    assert.ok(failed.length >= 1);
    assert.ok(failed.every((r) => r[1] === 'Restart OCP agent' && r[2] === 'FAILED' && r[4] === 'operator'));
    await context.close();
  });

  it('fits a 390-px-wide phone: the list, the task page and the host page, without sideways scrolling', async () => {
    const done = await api<{ contents: OcpTask[] }>('GET', '/api/v2/tasks/instances?size=1');
    const id = done.body.data.contents[0]?.id;
    assert.ok(id);
    const context = await newContext(browser, 'phone');
    const page = await context.newPage();
    await signInAt(page, base, '/ui/', 'operator');
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    const widths = async () =>
      page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth] as [number, number]);
    let [scroll, inner] = await widths();
    assert.ok(scroll <= inner, `list: ${scroll} > ${inner}`);
    await page.goto(`${base}/ui/tasks/${id}`);
    await page.locator('#dag g.node').first().waitFor();
    [scroll, inner] = await widths();
    assert.ok(scroll <= inner, `task: ${scroll} > ${inner}`);
    // The states are there in words, not only in colour.
    assert.match((await page.locator('#head').textContent()) ?? '', /SUCCESSFUL|FAILED|RUNNING/);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'ui-phone.png'), fullPage: true });
    await page.goto(`${base}/ui/hosts/${stack.sshd.hosts[0]?.id}`);
    await page
      .locator('#agent [data-state]')
      .first()
      .waitFor()
      .catch(async (err) => {
        console.log(await page.locator('main').textContent());
        throw err;
      });
    [scroll, inner] = await widths();
    assert.ok(scroll <= inner, `host: ${scroll} > ${inner}`);
    await context.close();
  });
});
