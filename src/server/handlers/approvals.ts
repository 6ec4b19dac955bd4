import type { z } from 'zod';
import { WitnessError, fingerprintOf, textField } from '../../core/index.js';
import { findApproval, listApprovals, type ApprovalView } from '../../approvals/index.js';
import { approveAs, type LedgerContext } from '../approve.js';
import type { RouteContext } from '../context.js';
import type { ApprovalDoc, ApprovalIdParam, ApprovalListQuery, DecideBody, DecidedDoc } from '../schemas.js';

const DEFAULT_LIMIT = 100;

/** A request as the queue shows it: the exact arguments, who asked, the rule, the time left, and what became of it. */
export function approvalDoc(v: ApprovalView, now: Date): z.infer<typeof ApprovalDoc> {
  const d = v.decision;
  const text = (x: unknown) => textField(x);
  return {
    id: v.requestId,
    status: v.status,
    agent: v.agent,
    ...(v.request.user === undefined ? {} : { user: v.request.user }),
    session: v.session,
    ...(v.callId === undefined ? {} : { call_id: v.callId }),
    ...(v.server === undefined ? {} : { server: v.server }),
    tool: v.tool,
    arguments: v.arguments,
    arguments_digest: v.argumentsDigest,
    ...(v.rule === undefined ? {} : { rule: v.rule }),
    ...(v.reason === undefined ? {} : { policy_reason: v.reason }),
    ...(v.policyVersion === undefined ? {} : { policy_version: v.policyVersion }),
    requested_at: v.request.ts,
    expires_at: v.expiresAt,
    seconds_left: Math.max(0, Math.floor((Date.parse(v.expiresAt) - now.getTime()) / 1000)),
    approvers: v.approvers.map((key) => ({ key, fingerprint: fingerprintOf(key) })),
    ...(d === undefined
      ? {}
      : {
          decision: {
            id: d.id,
            decision: text(d.data?.decision) ?? 'unknown',
            approver: text(d.data?.approver) ?? 'unknown',
            ...(text(d.data?.role) === undefined ? {} : { role: text(d.data?.role)! }),
            ...(text(d.data?.reason) === undefined ? {} : { reason: text(d.data?.reason)! }),
            ...(text(d.data?.meaning) === undefined ? {} : { meaning: text(d.data?.meaning)! }),
            at: d.ts,
          },
        }),
    decisions_recorded: v.decisions.length,
    ...(v.consumedBy === undefined ? {} : { consumed_by: v.consumedBy.id }),
  };
}

/** GET /v1/approvals: the queue (pending by default), oldest first, so the request closest to expiring is on top. */
export async function listApprovalsRoute(ctx: RouteContext<unknown, z.infer<typeof ApprovalListQuery>>): Promise<Response> {
  const q = ctx.query;
  const now = new Date();
  const status = q.status ?? 'pending';
  const views = await listApprovals(ctx.ledger, {
    now,
    ...(status === 'all' ? {} : { status }),
    ...(q.agent === undefined ? {} : { agent: q.agent }),
    ...(q.since === undefined ? {} : { since: q.since }),
  });
  const limit = q.limit ?? DEFAULT_LIMIT;
  const shown = views.slice(0, limit);
  await ctx.recordAccess({ count: shown.length });
  return ctx.c.json({ approvals: shown.map((v) => approvalDoc(v, now)), truncated: views.length > shown.length });
}

/** GET /v1/approvals/:id (the id or a unique prefix of at least 8 characters). */
export async function getApprovalRoute(ctx: RouteContext<z.infer<typeof ApprovalIdParam>>): Promise<Response> {
  const now = new Date();
  const v = await findApproval(ctx.ledger, ctx.params.id, now);
  await ctx.recordAccess({ count: 1, resource: v.requestId });
  return ctx.c.json(approvalDoc(v, now));
}

/**
 * POST /v1/approvals/:id/approve and /deny: the caller decides as themselves, signed with the
 * approver key the server holds for their API key (approve.ts). The decision event is the record
 * of this act, so no separate access record is written.
 */
export function decideRoute(decision: 'approved' | 'denied', oidc?: LedgerContext['oidc']) {
  return async (ctx: RouteContext<z.infer<typeof ApprovalIdParam>, unknown, z.infer<typeof DecideBody>>): Promise<Response> => {
    const caller = ctx.caller;
    if (caller === undefined) throw new WitnessError('unauthorized', 'Deciding an approval request needs an approver key; send it as `Authorization: Bearer <key>`.');
    const r = await approveAs(
      { ledger: ctx.ledger, metrics: ctx.metrics, ...(oidc === undefined ? {} : { oidc }) },
      { keyId: caller.keyId, name: caller.name, role: caller.role },
      ctx.params.id,
      decision,
      ctx.body.reason,
      {
        ...(ctx.body.arguments_digest === undefined ? {} : { expectDigest: ctx.body.arguments_digest }),
      },
    );
    const out: z.infer<typeof DecidedDoc> = {
      request_id: r.requestId,
      decision: r.decision,
      decision_id: r.decisionId,
      approver: r.approver,
      approver_key_fingerprint: r.fingerprint,
      status: r.status,
    };
    return ctx.c.json(out, 201);
  };
}
