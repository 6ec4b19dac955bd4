import { approverKeysDir, removeApproverKey } from '../approver-keys.js';
import type { RouteContext } from '../context.js';
import { createKey, revokeKey, type CreateKeyInput } from '../keys.js';

function actor(ctx: RouteContext) {
  const c = ctx.caller!;
  return { who: c.name ?? `key:${c.keyId}`, recorder: 'server' as const, credential: c.keyId };
}

export async function whoami(ctx: RouteContext): Promise<Response> {
  return ctx.c.json(ctx.caller);
}

export async function listKeysRoute(ctx: RouteContext): Promise<Response> {
  await ctx.keys.refresh();
  return ctx.c.json({ keys: ctx.keys.list() });
}

export async function createKeyRoute(ctx: RouteContext<unknown, unknown, CreateKeyInput>): Promise<Response> {
  const created = await createKey(ctx.ledger, ctx.body, actor(ctx));
  ctx.metrics.appended += 1;
  return ctx.c.json(created, 201);
}

export async function revokeKeyRoute(ctx: RouteContext<{ id: string }>): Promise<Response> {
  const record = await revokeKey(ctx.ledger, ctx.params.id, actor(ctx));
  ctx.metrics.appended += 1;
  await ctx.keys.refresh();
  if (record.role !== 'approver') return ctx.c.json({ record });
  // As `witness keys revoke`: the server signs with it no longer, and deleting it means nobody else can either.
  const removed = removeApproverKey(approverKeysDir(ctx.ledger.info), record.id);
  return ctx.c.json({ record, approver_key_removed: removed });
}
