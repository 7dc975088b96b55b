/**
 * Captures the real answers shown in docs/api.md: starts the test stack (a
 * real nats-server, sshd with simulated hosts 101 and 102, the service in this
 * process), makes one call per route, and the NATS micro service and
 * ocp.cmd.* calls, and prints each request with its answer.
 *
 *   npx tsx scripts/api-examples.ts > /tmp/api-examples.txt
 *
 * Needs nats-server and sshd, like the integration tests. The curl lines use
 * port 3000 and the password `s3cret` as docs/api.md does; the calls go to the
 * stack's random port with the test user's real password.
 */
import { renameSync } from 'node:fs';
import type { OcpTask } from '../src/contracts/ocp-task.js';
import { accepted, request, taskEvents } from '../test/helpers/requests.js';
import { agentctlPath, clearFaults, setFault } from '../test/helpers/sim-agent.js';
import { basicAuth, startStack, type TEST_USERS } from '../test/helpers/stack.js';

type User = keyof typeof TEST_USERS | 'none' | 'wrong';

interface Answer {
  status: number;
  traceId: string | null;
  body: Record<string, unknown>;
}

const DOC_BASE = 'http://127.0.0.1:3000';

function print(label: string, lines: string[], answer: unknown): void {
  console.log(`\n=== ${label}`);
  for (const l of lines) console.log(l);
  console.log(JSON.stringify(answer, null, 2));
}

async function main(): Promise<void> {
  // Labels, for the selector examples (SPEC §10): one cluster, a zone per host.
  const stack = await startStack({
    hosts: 2,
    editConfig: (file) => ({
      ...file,
      hosts: (file.hosts as object[]).map((h, i) => ({ ...h, labels: { cluster: 'obcluster1', zone: `z${i + 1}` } })),
    }),
  });
  const [h101, h102] = stack.sshd.hosts;
  if (!h101 || !h102) throw new Error('the stack has fewer than 2 hosts');
  try {
    const svc = await stack.startService();
    const base = `http://127.0.0.1:${svc.httpPort}`;

    async function http(
      label: string,
      method: 'GET' | 'POST',
      path: string,
      opts: { user?: User; body?: unknown; raw?: string; traceId?: string; quiet?: boolean } = {},
    ): Promise<Answer> {
      const user = opts.user ?? 'operator';
      const headers: Record<string, string> = {};
      if (user === 'wrong') headers.authorization = `Basic ${Buffer.from('operator:nope').toString('base64')}`;
      else if (user !== 'none') headers.authorization = basicAuth(user);
      const text = opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined);
      if (text !== undefined) headers['content-type'] = 'application/json';
      if (opts.traceId) headers['x-trace-id'] = opts.traceId;
      const res = await fetch(`${base}${path}`, {
        method,
        headers,
        ...(text !== undefined ? { body: text } : {}),
        signal: AbortSignal.timeout(20_000),
      });
      const answer: Answer = {
        status: res.status,
        traceId: res.headers.get('x-trace-id'),
        body: (await res.json()) as Record<string, unknown>,
      };
      if (!opts.quiet) {
        const auth = user === 'none' ? '' : user === 'wrong' ? ' -u operator:nope' : ` -u ${user}:s3cret`;
        const curl = [
          `curl -s${auth}`,
          method === 'POST' ? ' -X POST' : '',
          opts.traceId ? ` -H 'X-Trace-Id: ${opts.traceId}'` : '',
          text !== undefined ? ` -H 'Content-Type: application/json' -d '${text}'` : '',
          ` '${DOC_BASE}${path}'`,
        ].join('');
        print(label, [`$ ${curl}`, `HTTP ${answer.status}  X-Trace-Id: ${answer.traceId}`], answer.body);
      }
      return answer;
    }

    const taskOf = (a: Answer): OcpTask => {
      if (a.status !== 200) throw new Error(`expected a task, got ${JSON.stringify(a.body)}`);
      return a.body.data as OcpTask;
    };

    /** Poll GET task until `done`; returns the last answer. */
    async function waitTask(
      taskId: number,
      done: (t: OcpTask) => boolean = (t) => t.status !== 'RUNNING',
      timeoutMs = 60_000,
    ): Promise<Answer> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const a = await http('poll', 'GET', `/api/v2/tasks/instances/${taskId}`, { quiet: true });
        if (done(taskOf(a))) return a;
        if (Date.now() > deadline) throw new Error(`task ${taskId} not done: ${JSON.stringify(a.body)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const subtaskNamed = (t: OcpTask, name: string) => {
      const s = t.subtasks.find((x) => x.name === name);
      if (!s) throw new Error(`task ${t.id} has no subtask ${name}`);
      return s;
    };

    // --- agent status, both paths
    await http('agent status (bare path)', 'GET', '/compute/hosts/101/agent');
    await http('agent status (/api/v2 path)', 'GET', '/api/v2/compute/hosts/101/agent');

    // --- restart, with a kept X-Trace-Id; a second restart of the same host is refused
    const restart = taskOf(
      await http('restart', 'POST', '/compute/hosts/101/agent/restart', {
        body: { reason: 'monagent stuck' },
        traceId: '4bf92f3577b34da6',
      }),
    );
    await http('restart again while it runs (409)', 'POST', '/api/v2/compute/hosts/101/agent/restart');
    print('restart finished (GET task)', [], (await waitTask(restart.id)).body);
    await http('get task', 'GET', `/api/v2/tasks/instances/${restart.id}`);

    // --- stop, agent status while stopped, start
    const stop = taskOf(await http('stop', 'POST', '/api/v2/compute/hosts/101/agent/stop', { body: {} }));
    print('stop finished', [], (await waitTask(stop.id)).body);
    await http('agent status while stopped', 'GET', '/compute/hosts/101/agent');
    const start = taskOf(await http('start', 'POST', '/compute/hosts/101/agent/start'));
    print('start finished', [], (await waitTask(start.id)).body);

    // --- batch
    const batch = taskOf(
      await http('batch restart', 'POST', '/compute/hosts/batchRestartAgents', {
        body: { hostIds: [101, 102], reason: 'agent 4.2.1 rollout' },
      }),
    );
    print('batch finished', [], (await waitTask(batch.id)).body);

    // --- a failing step: log, subtask retry, task retry, skip
    setFault(h102.agentHome, 'restart', 'fail');
    const failing = taskOf(await http('restart of 102 (will fail)', 'POST', '/compute/hosts/102/agent/restart'));
    const failed = taskOf(await waitTask(failing.id));
    print('failed task', [], failed);
    const pos = subtaskNamed(failed, 'Restart pos proxy');
    await http('subtask log', 'GET', `/api/v2/tasks/instances/${failed.id}/subtasks/${pos.id}/log`);
    await http('subtask retry', 'POST', `/api/v2/tasks/instances/${failed.id}/subtasks/${pos.id}/retry`);
    await waitTask(failed.id);
    await http('task retry', 'POST', `/api/v2/tasks/instances/${failed.id}/retry`);
    await waitTask(failed.id);
    await http('subtask skip', 'POST', `/api/v2/tasks/instances/${failed.id}/subtasks/${pos.id}/skip`);
    print('after skip, finished', [], (await waitTask(failed.id)).body);

    // --- rollback of a failed restart
    const toRollBack = taskOf(await http('restart of 102 (will fail)', 'POST', '/compute/hosts/102/agent/restart'));
    await waitTask(toRollBack.id);
    await http('task rollback', 'POST', `/api/v2/tasks/instances/${toRollBack.id}/rollback`);
    print('after rollback, finished', [], (await waitTask(toRollBack.id)).body);
    clearFaults(h102.agentHome);

    // --- cancel a RUNNING subtask
    setFault(h101.agentHome, 'stop', 'slow', 5);
    const slow = taskOf(await http('restart of 101 (slow stop)', 'POST', '/compute/hosts/101/agent/restart'));
    const running = taskOf(
      await waitTask(slow.id, (t) => subtaskNamed(t, 'Stop all OCP agent processes').status === 'RUNNING'),
    );
    const stopStep = subtaskNamed(running, 'Stop all OCP agent processes');
    await http('subtask cancel', 'POST', `/api/v2/tasks/instances/${slow.id}/subtasks/${stopStep.id}/cancel`);
    const canceled = taskOf(await waitTask(slow.id));
    print('after cancel, finished', [], canceled);
    await http('log of the canceled subtask', 'GET', `/api/v2/tasks/instances/${slow.id}/subtasks/${stopStep.id}/log`);
    clearFaults(h101.agentHome);

    // --- list
    await http('list', 'GET', '/api/v2/tasks/instances?hostId=102&size=2');
    await http('list page 2', 'GET', '/api/v2/tasks/instances?hostId=102&size=2&page=2');
    await http('list filtered', 'GET', '/api/v2/tasks/instances?status=FAILED&name=Restart%20OCP%20agent');

    // --- `creator` in an HTTP body: the task's creator is the Basic user
    const withCreator = taskOf(
      await http('creator in an HTTP body', 'POST', '/compute/hosts/102/agent/restart', {
        body: { creator: 'mallory' },
      }),
    );
    await waitTask(withCreator.id);

    // --- errors, in check order
    await http('no credentials (401)', 'POST', '/compute/hosts/101/agent/restart', { user: 'none' });
    await http('wrong password (401)', 'GET', '/api/v2/tasks/instances', { user: 'wrong' });
    await http('bad id (400)', 'POST', '/compute/hosts/0100/agent/restart');
    await http('bad body (400)', 'POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: [101, 101] } });
    await http('malformed JSON (400)', 'POST', '/compute/hosts/101/agent/restart', { raw: '{' });
    await http('bad query (400)', 'GET', '/api/v2/tasks/instances?size=5000');
    await http('unknown query field (400)', 'GET', '/api/v2/tasks/instances?sort=id');
    await http('bad input before permission (400 for viewer)', 'POST', '/compute/hosts/0/agent/restart', {
      user: 'viewer',
    });
    await http('lacks the permission (403)', 'POST', '/compute/hosts/101/agent/restart', { user: 'viewer' });
    await http('host not in inventory (404)', 'POST', '/compute/hosts/999/agent/restart');
    await http('host not in inventory, status (404)', 'GET', '/compute/hosts/999/agent');
    await http('batch with unknown host (404)', 'POST', '/compute/hosts/batchRestartAgents', {
      body: { hostIds: [101, 999] },
    });
    await http('unknown route (404)', 'GET', '/api/v2/hosts');
    await http('task not found (404)', 'GET', '/api/v2/tasks/instances/9007199254740991');
    await http('id beyond 2^53 (404)', 'GET', '/api/v2/tasks/instances/9223372036854775807');
    await http('id beyond Long (400)', 'GET', '/api/v2/tasks/instances/9223372036854775808');
    await http('subtask not found (404)', 'POST', `/api/v2/tasks/instances/${restart.id}/subtasks/1/skip`);
    await http('retry a SUCCESSFUL task (409)', 'POST', `/api/v2/tasks/instances/${restart.id}/retry`);
    await http('rollback a SUCCESSFUL task (409)', 'POST', `/api/v2/tasks/instances/${restart.id}/rollback`);
    await http(
      'skip a SUCCESSFUL subtask (409)',
      'POST',
      `/api/v2/tasks/instances/${restart.id}/subtasks/${restart.subtasks[0]?.id}/skip`,
    );
    await http(
      'cancel a SUCCESSFUL subtask (409)',
      'POST',
      `/api/v2/tasks/instances/${restart.id}/subtasks/${restart.subtasks[0]?.id}/cancel`,
    );
    await http(
      'log of a SUCCESSFUL step',
      'GET',
      `/api/v2/tasks/instances/${restart.id}/subtasks/${restart.subtasks[0]?.id}/log`,
    );
    await http(
      'admin may do everything',
      'GET',
      `/api/v2/tasks/instances/${restart.id}/subtasks/${restart.subtasks[0]?.id}/log`,
      {
        user: 'admin',
      },
    );

    // --- NATS micro service
    const nc = stack.nc;
    async function natsCall(subject: string, payload: unknown, raw = false): Promise<Record<string, unknown>> {
      const data = raw ? String(payload) : JSON.stringify(payload);
      const m = await nc.request(subject, data, { timeout: 20_000 });
      const answer = m.json<Record<string, unknown>>();
      print(`NATS ${subject}`, [`$ nats req ${subject} '${data}'`], answer);
      return answer;
    }
    await natsCall('ocp.api.task.get', { taskId: restart.id });
    await natsCall('ocp.api.agent.status', { hostId: 102 });
    const natsRestart = (await natsCall('ocp.api.agent.restart', {
      hostId: 102,
      creator: 'deploy-bot',
      reason: 'nightly',
    })) as { data: OcpTask };
    await waitTask(natsRestart.data.id);
    await natsCall('ocp.api.agent.restart', { hostId: 102 });
    await natsCall('ocp.api.agent.restart', { hostId: '102', creator: 'deploy-bot', extra: 1 });
    await natsCall('ocp.api.task.list', { hostId: 102, size: 1 });
    await natsCall('ocp.api.task.get', { taskId: 'abc' });
    await natsCall('ocp.api.task.get', '{', true);

    // --- ocp.cmd.* and ocp.events.*
    const ev = await request(nc, stack.js, 'restart', {
      hostId: 101,
      creator: 'alice',
      requestId: 'r-1',
      reason: 'monagent stuck',
    });
    print('ocp.events.request.r-1 (accepted)', [], ev);
    const cmdTask = accepted(ev).task;
    await waitTask(cmdTask.id);
    const events = await taskEvents(nc, cmdTask.id);
    print(
      `ocp.events.task.${cmdTask.id} (types in order)`,
      [],
      events.map((e) => [e.seq, e.type, e.subtaskId ?? null, e.status]),
    );
    print(`ocp.events.task.${cmdTask.id} (first and last)`, [], [events[0], events.at(-1)]);
    const rejected = await request(nc, stack.js, 'restart', { hostId: 999, creator: 'alice', requestId: 'r-2' });
    print('ocp.events.request.r-2 (rejected)', [], rejected);
    const invalid = await request(nc, stack.js, 'stop', { hostId: 101 }, { requestId: 'invalid' });
    print('ocp.events.request.invalid (no usable id)', [], invalid);

    // --- selectors (SPEC §10): the preview, a batch by selector, its refusals, and over NATS
    await http('hosts matching a selector', 'GET', '/api/v2/ocp-chatops/hosts?selector=cluster=obcluster1,zone=z1', {
      user: 'viewer',
    });
    await http('every host', 'GET', '/api/v2/ocp-chatops/hosts', { user: 'viewer' });
    const bySelector = taskOf(
      await http('batch restart by selector', 'POST', '/compute/hosts/batchRestartAgents', {
        body: { selector: { cluster: 'obcluster1' }, reason: 'cluster-wide agent upgrade' },
      }),
    );
    await waitTask(bySelector.id);
    await http('selector with hostIds (400)', 'POST', '/api/v2/ocp-chatops/operations/restart', {
      body: { selector: 'all', hostIds: [101] },
    });
    await http('selector matching no host (404)', 'POST', '/api/v2/ocp-chatops/operations/restart', {
      body: { selector: { cluster: 'obcluster9' } },
    });
    await http('malformed selector (400)', 'GET', '/api/v2/ocp-chatops/hosts?selector=cluster=obcluster1,cluster=ob2', {
      user: 'viewer',
    });
    await natsCall('ocp.api.host.list', { selector: { zone: 'z2' } });
    const evSel = await request(nc, stack.js, 'op.stop', {
      selector: { zone: 'z2' },
      creator: 'alice',
      requestId: 'r-3',
    });
    print('ocp.events.request.r-3 (a selector, accepted)', [], evSel);
    await waitTask(accepted(evSel).task.id);

    // --- the agent's status when agentctl is missing
    renameSync(agentctlPath(h101.agentHome), `${agentctlPath(h101.agentHome)}.away`);
    await http('agent status, agentctl missing', 'GET', '/compute/hosts/101/agent');
    renameSync(`${agentctlPath(h101.agentHome)}.away`, agentctlPath(h101.agentHome));

    // --- NATS unreachable (last: it stops the nats-server)
    await stack.nats.stop();
    try {
      await http('NATS unreachable (503)', 'GET', `/api/v2/tasks/instances/${restart.id}`);
    } catch (err) {
      console.log(`\n=== NATS unreachable: no answer: ${(err as Error).message}`);
    }
  } finally {
    await stack.stop().catch((err: unknown) => console.error('stop:', err));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
