import { WitnessError } from '../../core/index.js';
import { verifyLedger, type CheckpointRow } from '../../store/index.js';
import type { RouteContext } from '../context.js';

export function checkpointDoc(cp: CheckpointRow) {
  return { id: cp.id, size: cp.size, root: cp.root.toString('hex'), ts: cp.ts, note: cp.note, prev_size: cp.prevSize, consistency: cp.consistency };
}

export async function listCheckpoints(ctx: RouteContext): Promise<Response> {
  const cps = await ctx.ledger.checkpoints();
  await ctx.recordAccess({ count: cps.length });
  return ctx.c.json({ checkpoints: cps.map(checkpointDoc) });
}

/** Proofs are asked for tree sizes that a signed checkpoint covers; anything beyond the newest is refused in one sentence. */
async function sealedSize(ctx: RouteContext): Promise<{ size: number; checkpoints: CheckpointRow[] }> {
  const checkpoints = await ctx.ledger.checkpoints();
  return { size: checkpoints.at(-1)?.size ?? 0, checkpoints };
}

export async function inclusion(ctx: RouteContext<unknown, { pos: number; size: number }>): Promise<Response> {
  const { pos, size } = ctx.query;
  const sealed = await sealedSize(ctx);
  if (size < 1 || size > sealed.size) {
    throw new WitnessError('invalid_argument', `size ${size} is not a sealed tree size (the newest checkpoint covers ${sealed.size}); ask for a size from 1 to ${sealed.size}.`, {
      details: { path: 'size' },
    });
  }
  if (pos >= size) throw new WitnessError('invalid_argument', `pos ${pos} is not in a tree of ${size} events; positions run from 0 to ${size - 1}.`, { details: { path: 'pos' } });
  const proof = await ctx.ledger.inclusionProof(pos, size);
  const cp = sealed.checkpoints.find((c) => c.size === size);
  await ctx.recordAccess({ count: proof.length });
  return ctx.c.json({ proof: proof.map((b) => b.toString('hex')), ...(cp === undefined ? {} : { checkpoint: checkpointDoc(cp) }) });
}

export async function consistency(ctx: RouteContext<unknown, { from: number; to: number }>): Promise<Response> {
  const { from, to } = ctx.query;
  const sealed = await sealedSize(ctx);
  if (to < 1 || to > sealed.size) {
    throw new WitnessError('invalid_argument', `to ${to} is not a sealed tree size (the newest checkpoint covers ${sealed.size}); ask for a size from 1 to ${sealed.size}.`, {
      details: { path: 'to' },
    });
  }
  if (from < 1 || from > to) throw new WitnessError('invalid_argument', `from ${from} must be from 1 to ${to} (the newer size).`, { details: { path: 'from' } });
  const proof = await ctx.ledger.consistencyProof(from, to);
  const cp = sealed.checkpoints.find((c) => c.size === to);
  await ctx.recordAccess({ count: proof.length });
  return ctx.c.json({ proof: proof.map((b) => b.toString('hex')), ...(cp === undefined ? {} : { checkpoint: checkpointDoc(cp) }) });
}

/** POST /v1/verify: one verification at a time per server; a second request waits for the one running and gets its result. */
export class VerifyRunner {
  private running: Promise<Record<string, unknown>> | undefined;

  async run(ctx: RouteContext): Promise<Response> {
    this.running ??= this.verify(ctx).finally(() => {
      this.running = undefined;
    });
    const result = await this.running;
    await ctx.recordAccess({ count: typeof result['events'] === 'number' ? result['events'] : 0 });
    return ctx.c.json(result);
  }

  private async verify(ctx: RouteContext): Promise<Record<string, unknown>> {
    const report = await verifyLedger(ctx.ledger);
    const at = new Date().toISOString();
    ctx.metrics.lastVerify = { ok: report.ok, at, events: report.events, failures: report.failures.length };
    return { ...report, checked_at: at };
  }
}
