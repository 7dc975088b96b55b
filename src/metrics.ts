/**
 * Prometheus metrics (prom-client), one registry per service so that tests
 * running several services in one process do not share counters.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'route' | 'method' | 'status'>;
  tasksFinished: Counter<'runbook' | 'status'>;
  subtaskSeconds: Histogram<'name' | 'status'>;
  subtasksInFlight: Gauge;
  natsReconnects: Counter;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: 'ocp_http_requests_total',
      help: 'HTTP requests by route pattern, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    tasksFinished: new Counter({
      name: 'ocp_tasks_finished_total',
      help: 'Tasks that ended, by runbook (task name) and final status',
      labelNames: ['runbook', 'status'],
      registers: [registry],
    }),
    subtaskSeconds: new Histogram({
      name: 'ocp_subtask_duration_seconds',
      help: 'Time a subtask ran on its host, by subtask name and outcome',
      labelNames: ['name', 'status'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    subtasksInFlight: new Gauge({
      name: 'ocp_subtasks_in_flight',
      help: 'Subtasks this process is running now',
      registers: [registry],
    }),
    natsReconnects: new Counter({
      name: 'ocp_nats_reconnects_total',
      help: 'Times the NATS connection was re-established',
      registers: [registry],
    }),
  };
}
