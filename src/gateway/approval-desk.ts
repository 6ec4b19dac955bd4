import type { StoredEvent } from '../core/index.js';
import type { Evaluation } from '../policy/index.js';
import { bindingMismatch, findApproval, listApprovals, type ApprovalView, type Binding, type Witness } from '../recorder/index.js';
import { errorResponse, idKey, resultResponse, toolErrorResult, type JsonRpcId } from './jsonrpc.js';
import type { GatewayRecorder } from './record.js';

/**
 * Holds `review` calls until a person decides. Everything it knows is in the ledger (see
 * recorder/approvals.ts): it writes approval.request, polls for approval.decision written by
 * `witness approve` / `witness deny` in any process, checks the decision's binding itself, and
 * consumes a grant by recording the policy.decision that releases the call.
 */

export interface ApprovalSettings {
  /** How long a call waits for a decision before it is refused (default 5 minutes). */
  timeoutMs: number;
  /** How often the ledger is read for decisions. */
  pollMs: number;
  /** How often a waiting client that sent a progress token is sent a progress notification. */
  progressMs: number;
}

export const DEFAULT_APPROVAL_SETTINGS: ApprovalSettings = { timeoutMs: 5 * 60_000, pollMs: 250, progressMs: 10_000 };

export interface HoldInput {
  id: JsonRpcId;
  /** The client's frame, forwarded unchanged if the call is approved. */
  line: string;
  callId: string;
  tool: string;
  args: unknown;
  digest: string;
  evaluation: Evaluation;
  started: number;
  progressToken: unknown;
  session: string;
}

export interface Held extends HoldInput {
  requestId: string;
  /** When the request was recorded (ms): decisions are looked for from then on. */
  requestedAt: number;
  /** True when this call made the request (then the request is bound to this session too). */
  own: boolean;
  expiresAt: number;
  progress: number;
  timers: NodeJS.Timeout[];
}

interface DeskHost {
  agent: string;
  server: string | undefined;
  toClient(line: string, related?: JsonRpcId): void;
  /** Sends a released call to the server (after its release is recorded). */
  release(held: Held): void;
  log(message: string): void;
}

/** How far another process's clock may lag ours when it stamps a decision. */
const CLOCK_SKEW_MS = 10 * 60_000;

/** The gateway's own name when it records a decision (an expiry), never an agent's. */
const GATEWAY_APPROVER = 'witness-gateway';

export class ApprovalDesk {
  private readonly held = new Map<string, Held>();
  private readonly s: ApprovalSettings;
  private poller: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  constructor(
    private readonly witness: Witness,
    private readonly rec: GatewayRecorder,
    settings: Partial<ApprovalSettings>,
    private readonly host: DeskHost,
  ) {
    this.s = { ...DEFAULT_APPROVAL_SETTINGS, ...settings };
  }

  private binding(h: { tool: string; digest: string; evaluation: Evaluation }): Binding {
    return { agent: this.host.agent, server: this.host.server, tool: h.tool, argumentsDigest: h.digest, policyVersion: h.evaluation.policyVersion };
  }

  /**
   * Holds a call: releases it at once with an unused grant for exactly this call (the client's
   * retry after a gateway restart), joins a pending request for exactly this call, or records a new
   * approval.request. Resolves once the hold (or the release) is recorded.
   */
  async hold(input: HoldInput): Promise<void> {
    const now = new Date();
    const binding = this.binding(input);
    const recent = await listApprovals(this.witness.ledger, { agent: this.host.agent, since: new Date(now.getTime() - this.s.timeoutMs - 60_000).toISOString(), now }).catch(() => [] as ApprovalView[]);
    const grant = recent.find((v) => v.status === 'approved' && bindingMismatch(v, binding, now) === undefined);
    if (grant !== undefined) {
      const h: Held = { ...input, requestId: grant.requestId, requestedAt: Date.parse(grant.request.ts), own: false, expiresAt: Date.parse(grant.expiresAt), progress: 0, timers: [] };
      this.rec.note(`Released by approval request ${grant.requestId}, granted before this call arrived (the client retried an approved call).`, { approval: { request_id: grant.requestId } });
      await this.approve(h, grant);
      return;
    }
    const joined = new Set([...this.held.values()].map((h) => h.requestId));
    const waiting = recent.find(
      (v) => v.status === 'pending' && !joined.has(v.requestId) && v.tool === input.tool && v.server === this.host.server && v.argumentsDigest === input.digest && v.policyVersion === input.evaluation.policyVersion,
    );
    for (const v of recent) {
      if (v.status === 'approved' && v.tool === input.tool && v.server === this.host.server && v.argumentsDigest !== input.digest) {
        this.rec.error(`Approval request ${v.requestId} was granted for other arguments of ${input.tool} (digest ${v.argumentsDigest}), so it does not release this call (digest ${input.digest}); this call needs its own approval.`, 'approval_mismatch', 'gateway', {
          request_id: v.requestId,
          approved_digest: v.argumentsDigest,
          arguments_digest: input.digest,
        });
      }
    }
    let requestId: string;
    let expiresAt: number;
    let requestedAt = now.getTime();
    if (waiting !== undefined) {
      requestId = waiting.requestId;
      expiresAt = Date.parse(waiting.expiresAt);
      requestedAt = Date.parse(waiting.request.ts);
      this.rec.note(`Waiting on approval request ${requestId}, which a previous identical call made.`, { approval: { request_id: requestId } });
    } else {
      expiresAt = now.getTime() + this.s.timeoutMs;
      const recorded = await this.rec.approvalRequest({
        callId: input.callId,
        tool: input.tool,
        server: this.host.server,
        args: input.args,
        digest: input.digest,
        evaluation: input.evaluation,
        expiresAt: new Date(expiresAt).toISOString(),
      });
      if (recorded === undefined) {
        this.host.toClient(errorResponse(input.id, -32050, `Witness could not record the approval request for this call to ${input.tool}, so it was not sent to the server; try again once the ledger is available.`), input.id);
        return;
      }
      requestId = recorded;
    }
    const h: Held = { ...input, requestId, requestedAt, own: waiting === undefined, expiresAt, progress: 0, timers: [] };
    this.held.set(idKey(input.id), h);
    this.host.log(`witness: the call to ${input.tool} needs human approval (policy rule ${input.evaluation.rule ?? 'default'}): witness approve ${requestId} --as <you>  |  witness deny ${requestId} --as <you>`);
    if (typeof h.progressToken === 'string' || typeof h.progressToken === 'number') {
      this.keepAlive(h);
      const t = setInterval(() => this.keepAlive(h), this.s.progressMs);
      t.unref();
      h.timers.push(t);
    }
    const timeout = setTimeout(() => void this.expire(h), Math.max(0, expiresAt - Date.now()));
    timeout.unref();
    h.timers.push(timeout);
    this.startPolling();
  }

  /** A cancelled held call: true when it was held here (and is now dropped). */
  cancel(id: JsonRpcId, why: string, code = 'cancelled'): boolean {
    const h = this.take(id);
    if (h === undefined) return false;
    this.rec.failed(h, this.host.server, h.started, why, code);
    return true;
  }

  /** Every held call fails (upstream gone, client gone); their approval requests stay in the ledger. */
  abandonAll(message: string, code: string): void {
    for (const h of [...this.held.values()]) {
      this.take(h.id);
      this.host.toClient(errorResponse(h.id, -32000, message), h.id);
      this.rec.failed(h, this.host.server, h.started, message, code);
    }
  }

  close(): void {
    this.closed = true;
    for (const h of this.held.values()) for (const t of h.timers) clearTimeout(t);
    this.held.clear();
    if (this.poller !== undefined) clearInterval(this.poller);
    this.poller = undefined;
  }

  private take(id: JsonRpcId): Held | undefined {
    const h = this.held.get(idKey(id));
    if (h === undefined) return undefined;
    this.held.delete(idKey(id));
    for (const t of h.timers) clearTimeout(t);
    if (this.held.size === 0 && this.poller !== undefined) {
      clearInterval(this.poller);
      this.poller = undefined;
    }
    return h;
  }

  private keepAlive(h: Held): void {
    h.progress += 1;
    const left = Math.max(0, Math.round((h.expiresAt - Date.now()) / 1000));
    this.host.toClient(
      JSON.stringify({
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: h.progressToken, progress: h.progress, message: `Waiting for human approval of ${h.tool} (request ${h.requestId}, ${left} s left).` },
      }),
      h.id,
    );
  }

  private startPolling(): void {
    if (this.poller !== undefined || this.closed) return;
    this.poller = setInterval(() => void this.poll(), this.s.pollMs);
    this.poller.unref();
  }

  /** Reads the decisions recorded since the oldest held request, and acts on those for held calls. */
  private async poll(only?: Held): Promise<void> {
    if (this.polling && only === undefined) return;
    if (only === undefined) this.polling = true;
    try {
      const byRequest = new Map([...this.held.values()].filter((h) => only === undefined || h === only).map((h) => [h.requestId, h] as const));
      if (byRequest.size === 0) return;
      const oldest = Math.min(...[...byRequest.values()].map((h) => h.requestedAt));
      const decided = await this.decidedRequests(new Set(byRequest.keys()), oldest);
      for (const requestId of decided) {
        const h = byRequest.get(requestId);
        if (h === undefined || !this.held.has(idKey(h.id))) continue;
        const v = await findApproval(this.witness.ledger, requestId);
        await this.decide(h, v);
      }
    } catch (e) {
      this.host.log(`witness: could not read approval decisions: ${String(e)}`);
    } finally {
      if (only === undefined) this.polling = false;
    }
  }

  /**
   * Requests among `ids` that have a decision. Only decisions recorded since the oldest held
   * request are read (less a margin for another process's clock), so a poll every 250 ms does not
   * rescan every decision this agent ever had.
   */
  private async decidedRequests(ids: ReadonlySet<string>, oldestRequestMs: number): Promise<Set<string>> {
    const out = new Set<string>();
    const since = new Date(oldestRequestMs - CLOCK_SKEW_MS).toISOString();
    let cursor: string | undefined;
    do {
      const page = await this.witness.ledger.query({ kind: 'approval.decision', agent: this.host.agent, since, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      for (const e of page.events) if (e.parent !== undefined && ids.has(e.parent)) out.add(e.parent);
      cursor = page.next;
    } while (cursor !== undefined);
    return out;
  }


  private async decide(h: Held, v: ApprovalView): Promise<void> {
    const d = v.decision;
    if (d === undefined) return;
    const decision = d.data?.['decision'];
    const approver = typeof d.data?.['approver'] === 'string' ? d.data['approver'] : 'unknown';
    const reason = typeof d.data?.['reason'] === 'string' ? `: ${d.data['reason']}` : '';
    if (decision === 'approved') {
      // A decision recorded before the expiry counts even if it is read just after.
      const mismatch = bindingMismatch(v, { ...this.binding(h), ...(h.own ? { session: h.session } : {}) }, new Date(Math.min(Date.now(), h.expiresAt - 1)));
      if (mismatch === undefined) {
        this.take(h.id);
        await this.approve(h, v);
        return;
      }
      this.take(h.id);
      this.rec.error(`Approval request ${v.requestId} cannot release this call: ${mismatch}.`, 'approval_mismatch', 'gateway', { request_id: v.requestId, decision_id: d.id, arguments_digest: h.digest });
      this.refuse(h, `The call to ${h.tool} was not made: its approval (request ${v.requestId}) does not match it (${mismatch}).`);
      return;
    }
    this.take(h.id);
    if (decision === 'denied') this.refuse(h, `The call to ${h.tool} was denied by ${approver}${reason} (approval request ${v.requestId}). It was not sent to the server.`);
    else this.refuse(h, `The call to ${h.tool} was not approved before its approval request ${v.requestId} expired, so it was not made.`);
  }

  /** Records the release (consuming the grant), then forwards the call. */
  private async approve(h: Held, v: ApprovalView): Promise<void> {
    const d = v.decision as StoredEvent;
    const released = await this.rec.release({ callId: h.callId, tool: h.tool, server: this.host.server, digest: h.digest, evaluation: h.evaluation, requestId: v.requestId, decision: d });
    if (!released) {
      this.host.toClient(errorResponse(h.id, -32050, `Witness could not record the release of this approved call to ${h.tool}, so it was not sent to the server; retry it within the approval's expiry.`), h.id);
      return;
    }
    this.host.release(h);
  }

  private refuse(h: Held, text: string): void {
    const result = toolErrorResult(text);
    this.host.toClient(resultResponse(h.id, result), h.id);
    this.rec.result({ callId: h.callId, tool: h.tool, server: this.host.server, output: result, isError: true, durationMs: performance.now() - h.started, outcome: 'denied' });
  }

  /** No decision by the expiry: one last look, then the gateway records the expiry and refuses. */
  private async expire(h: Held): Promise<void> {
    if (!this.held.has(idKey(h.id))) return;
    await this.poll(h);
    if (!this.held.has(idKey(h.id))) return;
    this.take(h.id);
    await this.rec.expire({ requestId: h.requestId, tool: h.tool, server: this.host.server, digest: h.digest, approver: GATEWAY_APPROVER, evaluation: h.evaluation });
    // Whatever was recorded first counts: a person's decision that raced the expiry wins.
    const v = await findApproval(this.witness.ledger, h.requestId).catch(() => undefined);
    if (v?.decision !== undefined && v.decision.data?.['decision'] !== 'expired') {
      this.held.set(idKey(h.id), h);
      await this.decide(h, v);
      return;
    }
    this.refuse(h, `The call to ${h.tool} was not approved within ${duration(this.s.timeoutMs)} (approval request ${h.requestId}), so it was not made.`);
  }
}

function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 6000) / 10} minute(s)`;
}
