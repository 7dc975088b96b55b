/**
 * An operation of the registry as `GET /api/v2/ocp-chatops/operations` (and
 * `ocp.api.operation.list`) shows it: what it does, who may run it, its
 * parameters with their JSON Schema, and how each door takes it (SPEC §8).
 */
import { z } from 'zod';
import { type ParamSpec, paramsSchema } from '../contracts/params.js';
import { batchTitle, type OperationDef, usageOf } from '../operations/registry.js';

export interface OperationDescription {
  name: string;
  title: string;
  batchTitle: string;
  role: OperationDef['role'];
  builtin: boolean;
  confirm: boolean;
  exclusive: boolean;
  rollback: boolean;
  params: Record<string, ParamSpec>;
  /** JSON Schema (draft 2020-12) of the `params` object. */
  paramsSchema: Record<string, unknown>;
  doors: { http: string; natsCommand: string; natsApi: string; slack: string };
}

export function describeOperation(def: OperationDef): OperationDescription {
  const { $schema: _, ...schema } = z.toJSONSchema(paramsSchema(def.params), { io: 'input' });
  return {
    name: def.name,
    title: def.title,
    batchTitle: batchTitle(def.title),
    role: def.role,
    builtin: def.builtin,
    confirm: def.confirm,
    exclusive: def.exclusive,
    rollback: def.rollback !== undefined,
    params: { ...def.params },
    paramsSchema: schema,
    doors: {
      http: `POST /api/v2/ocp-chatops/operations/${def.name}`,
      natsCommand: `ocp.cmd.op.${def.name}`,
      natsApi: `ocp.api.op.${def.name}`,
      slack: usageOf(def),
    },
  };
}
