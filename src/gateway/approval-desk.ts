import {
  GATEWAY_APPROVER,
  canonicalKey,
  decidedRequests,
  decisionProblem,
  findApproval,
  grantsUsedHere,
  listApprovals,
  releaseProblem,
  requestMismatch,
  watchDecisions,
  type ApprovalView,
  type Binding,
  type DecisionProblem,
  type Row,
} from '../approvals/index.js';
import { isApprovalRecord, newArgumentsSalt, textField, tryArgumentsDigest } from '../core/index.js';
import type { Evaluation } from '../policy/index.js';
import type { Witness } from '../recorder/index.js';
import { ErrorCode, errorMessage, idKey, resultMessage, toolErrorResult, type JsonRpcId, type Wire } from './jsonrpc.js';
import type { GatewayRecorder } from './record.js';

/**
 * Holds `review` calls until a person decides: the MCP side of the approval protocol (src/approvals
 * holds the protocol itself). Everything it knows is in the ledger: it writes approval.request, polls for approval.decision written by
 * `witness approve` / `witness deny` in any process (and, on a ledger that announces commits —
 * PostgreSQL's LISTEN/NOTIFY — reads as soon as one is committed on any host, polling on as the
 * fallback), checks each decision itself — the approver's
 * signature, that the policy in force lists their key for this rule, that they are not the agent,
 * and the binding to the held call — and consumes a grant by recording the policy.decision that
 * releases the call. A decision that fails a check is recorded as an error once and ignored: the
 * call stays held for a decision that counts, or its expiry.
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
  /** The client's message, forwarded unchanged if the call is approved. */
  message: Wire;
  callId: string;
  tool: string;
  args: unknown;
  evaluation: Evaluation;
  started: number;
  progressToken: unknown;
  session: string;
  /** Shapes a result the desk writes itself for the request's era (see era.ts ownResult); unchanged when absent. */
  shape?: (result: Record<string, unknown>) => Record<string, unknown>;
}

export interface Held extends HoldInput {
  requestId: string;
  /** The request's arguments digest and its salt (the held call's arguments were checked against them). */
  digest: string;
  salt: string | undefined;
  /** The arguments as the ledger stores them (redacted): what every request's digest is checked against. */
  redacted: unknown;
  /** Decisions already judged (so a forged one is recorded as an error once, not on every poll). */
  judged: Set<string>;
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
  /** A message for the client (an answer, a progress notification), as an object. */
  toClient(message: Record<string, unknown>, related?: JsonRpcId): void;
  /** Sends a released call to the server (after its release is recorded). */
  release(held: Held): void;
  /**
   * Why an approved call must not be released now (its agent was halted while it waited), as the
   * text the agent reads; undefined to release it. Asked before the release is recorded, so a halted
   * call never uses up its grant.
   */
  stopped(held: Held): string | undefined;
  log(message: string): void;
}

export class ApprovalDesk {
  /** Decisions this process has released a call on, never used again by it (approvals/wait.ts says why). */
  private static readonly used = grantsUsedHere;
  private readonly held = new Map<string, Held>();
  private readonly s: ApprovalSettings;
  private poller: NodeJS.Timeout | undefined;
  /** Stops listening for decisions (Ledger.watch), while calls are held on a ledger that announces them. */
  private unwatch: (() => void) | undefined;
  private polling = false;
  /** A decision was announced while a poll was under way (which may have read before it committed): poll again after it. */
  private pollAgain = false;
  private closed = false;

  constructor(
    private readonly witness: Witness,
    private readonly rec: GatewayRecorder,
    settings: Partial<ApprovalSettings>,
    private readonly host: DeskHost,
  ) {
    this.s = { ...DEFAULT_APPROVAL_SETTINGS, ...settings };
  }

  /** What a decision must bind to release this call; the approvers come from the policy in force, never from the ledger. */
  private binding(h: { tool: string; redacted: unknown; evaluation: Evaluation }): Binding {
    const approvers = (h.evaluation.approvers ?? []).map((a) => canonicalKey(a.key)).filter((k): k is string => k !== undefined);
    return { agent: this.host.agent, server: this.host.server, tool: h.tool, arguments: h.redacted, policyVersion: h.evaluation.policyVersion, approvers };
  }

  private get origin(): string {
    return this.witness.reader.info.origin;
  }

  /**
   * Holds a call: releases it at once with an unused grant for exactly this call (the client's
   * retry after a gateway restart), joins a pending request for exactly this call, or records a new
   * approval.request. Resolves once the hold (or the release) is recorded.
   */
  async hold(input: HoldInput): Promise<void> {
    const now = new Date();
    let redacted: unknown;
    try {
      redacted = this.witness.redactData(input.args);
    } catch {
      // Arguments the recorder cannot hold (the tool.call would not have been recorded either).
      this.host.toClient(errorMessage(input.id, ErrorCode.NotRecorded, `Witness could not record the arguments of this call to ${input.tool}, so it was not sent to the server.`), input.id);
      return;
    }
    const binding = this.binding({ ...input, redacted });
    let recent: ApprovalView[];
    try {
      recent = await listApprovals(this.witness.reader, { agent: this.host.agent, since: new Date(now.getTime() - this.s.timeoutMs - 60_000).toISOString(), now });
    } catch (e) {
      // Without the list the desk can neither find a grant nor join a pending request: opening a
      // new request as if there were none would put a second one before the approvers. Fail closed.
      const why = e instanceof Error ? e.message : String(e);
      const message = `Witness could not read the approval requests in the ledger, so this call to ${input.tool} was not sent to the server; try again once the ledger is readable.`;
      this.host.toClient(errorMessage(input.id, ErrorCode.NotRecorded, message), input.id);
      this.rec.error(`Could not read the approval requests for a call to ${input.tool} under review, so it was refused: ${why}`, 'approvals_unreadable', 'gateway', {
        tool: input.tool,
        jsonrpc_id: input.id,
      });
      this.rec.failed(input, this.host.server, input.started, message, 'approvals_unreadable');
      this.host.log(`witness gateway: refused a call to ${input.tool} because the approval requests could not be read: ${why}`);
      return;
    }
    const grant = recent.find(
      (v) => v.status === 'approved' && v.decision !== undefined && !ApprovalDesk.used.has(v.decision.id) && releaseProblem(v, v.decision, binding, now, this.origin) === undefined,
    );
    if (grant !== undefined) {
      const h: Held = {
        ...input,
        requestId: grant.requestId,
        digest: grant.argumentsDigest,
        salt: grant.argumentsSalt,
        redacted,
        judged: new Set(),
        requestedAt: Date.parse(grant.request.ts),
        own: false,
        expiresAt: Date.parse(grant.expiresAt),
        progress: 0,
        timers: [],
      };
      this.rec.note(`Released by approval request ${grant.requestId}, granted before this call arrived (the client retried an approved call).`, { approval: { request_id: grant.requestId } });
      await this.approve(h, grant);
      return;
    }
    const joined = new Set([...this.held.values()].map((h) => h.requestId));
    // Only a request a gateway recorded is joined (listApprovals lists no other): one an agent wrote
    // into its own session would otherwise hold this call on the agent's own rule and reason.
    const waiting = recent.find((v) => v.status === 'pending' && isApprovalRecord(v.request) && !joined.has(v.requestId) && requestMismatch(v, binding) === undefined);
    for (const v of recent) {
      const mismatch = v.status === 'approved' && v.tool === input.tool && v.server === this.host.server && v.argumentsSalt !== undefined ? requestMismatch(v, binding) : undefined;
      if (mismatch !== undefined && v.argumentsSalt !== undefined) {
        const theirs = tryArgumentsDigest(v.argumentsSalt, redacted);
        this.rec.error(
          `Approval request ${v.requestId} was granted for another call to ${input.tool} (${mismatch}), so it does not release this one; this call needs its own approval.`,
          'approval_mismatch',
          'gateway',
          {
            request_id: v.requestId,
            approved_digest: v.argumentsDigest,
            ...(theirs === undefined ? {} : { arguments_digest: theirs }),
          },
        );
      }
    }
    let requestId: string;
    let expiresAt: number;
    let digest: string;
    let salt: string | undefined;
    let requestedAt = now.getTime();
    if (waiting !== undefined) {
      requestId = waiting.requestId;
      expiresAt = Date.parse(waiting.expiresAt);
      requestedAt = Date.parse(waiting.request.ts);
      digest = waiting.argumentsDigest;
      salt = waiting.argumentsSalt;
      this.rec.note(`Waiting on approval request ${requestId}, which a previous identical call made.`, { approval: { request_id: requestId } });
    } else {
      expiresAt = now.getTime() + this.s.timeoutMs;
      salt = newArgumentsSalt();
      const computed = tryArgumentsDigest(salt, redacted);
      const recorded =
        computed === undefined
          ? undefined
          : await this.rec.approvalRequest({
              callId: input.callId,
              tool: input.tool,
              server: this.host.server,
              args: redacted,
              salt,
              digest: computed,
              approvers: binding.approvers,
              evaluation: input.evaluation,
              expiresAt: new Date(expiresAt).toISOString(),
            });
      if (recorded === undefined || computed === undefined) {
        this.host.toClient(
          errorMessage(
            input.id,
            ErrorCode.NotRecorded,
            `Witness could not record the approval request for this call to ${input.tool}, so it was not sent to the server; try again once the ledger is available.`,
          ),
          input.id,
        );
        return;
      }
      requestId = recorded;
      digest = computed;
    }
    const h: Held = { ...input, requestId, digest, salt, redacted, judged: new Set(), requestedAt, own: waiting === undefined, expiresAt, progress: 0, timers: [] };
    this.held.set(idKey(input.id), h);
    this.host.log(
      `witness: the call to ${input.tool} needs human approval (policy rule ${input.evaluation.rule ?? 'default'}): witness approve ${requestId} --key <your key>  |  witness deny ${requestId} --key <your key>`,
    );
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
      this.host.toClient(errorMessage(h.id, ErrorCode.ConnectionClosed, message), h.id);
      this.rec.failed(h, this.host.server, h.started, message, code);
    }
  }

  close(): void {
    this.closed = true;
    for (const h of this.held.values()) for (const t of h.timers) clearTimeout(t);
    this.held.clear();
    if (this.poller !== undefined) clearInterval(this.poller);
    this.poller = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
  }

  /**
   * Takes `h` itself off the desk: false when it is no longer held (cancelled, its client gone, the
   * desk closed, or another call now held under the same JSON-RPC id) while a decision was being
   * read, and then nothing may be decided for it: no grant consumed, nothing released or refused.
   */
  private takeHeld(h: Held): boolean {
    if (this.closed || this.held.get(idKey(h.id)) !== h) return false;
    this.take(h.id);
    return true;
  }

  private take(id: JsonRpcId): Held | undefined {
    const h = this.held.get(idKey(id));
    if (h === undefined) return undefined;
    this.held.delete(idKey(id));
    for (const t of h.timers) clearTimeout(t);
    if (this.held.size === 0 && this.poller !== undefined) {
      clearInterval(this.poller);
      this.poller = undefined;
      this.unwatch?.();
      this.unwatch = undefined;
    }
    return h;
  }

  private keepAlive(h: Held): void {
    h.progress += 1;
    const left = Math.max(0, Math.round((h.expiresAt - Date.now()) / 1000));
    this.host.toClient(
      {
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: h.progressToken, progress: h.progress, message: `Waiting for human approval of ${h.tool} (request ${h.requestId}, ${left} s left).` },
      },
      h.id,
    );
  }

  private startPolling(): void {
    if (this.poller !== undefined || this.closed) return;
    this.poller = setInterval(() => void this.poll(), this.s.pollMs);
    this.poller.unref();
    this.unwatch = watchDecisions(this.witness.reader, () => void this.poll());
  }

  /** Reads the decisions recorded since the oldest held request, and acts on those for held calls. */
  private async poll(only?: Held): Promise<void> {
    if (this.polling && only === undefined) {
      this.pollAgain = true;
      return;
    }
    if (only === undefined) this.polling = true;
    try {
      const byRequest = new Map([...this.held.values()].filter((h) => only === undefined || h === only).map((h) => [h.requestId, h] as const));
      if (byRequest.size === 0) return;
      const oldest = Math.min(...[...byRequest.values()].map((h) => h.requestedAt));
      const decided = await decidedRequests(this.witness.reader, this.host.agent, new Set(byRequest.keys()), oldest);
      for (const requestId of decided) {
        const h = byRequest.get(requestId);
        if (h === undefined || !this.held.has(idKey(h.id))) continue;
        const v = await findApproval(this.witness.reader, requestId);
        await this.decide(h, v);
      }
    } catch (e) {
      this.host.log(`witness: could not read approval decisions: ${String(e)}`);
    } finally {
      if (only === undefined) {
        this.polling = false;
        if (this.pollAgain && !this.closed) {
          this.pollAgain = false;
          void this.poll();
        }
      }
    }
  }

  /**
   * Acts on the decisions recorded for a held call's request, in ledger order: the first that
   * counts decides (an expiry, a denial, or an approval that binds this call). Those that do not
   * count are recorded once as `approval_forged`, `approver_not_allowed` or `approval_mismatch` and
   * skipped, so a forged or unauthorised decision can neither release nor refuse the call.
   */
  private async decide(h: Held, v: ApprovalView, expired = `The call to ${h.tool} was not approved before its approval request ${v.requestId} expired, so it was not made.`): Promise<void> {
    const binding = { ...this.binding(h), ...(h.own ? { session: h.session } : {}) };
    for (const d of v.decisions) {
      if (this.closed || this.held.get(idKey(h.id)) !== h) return;
      if (h.judged.has(d.id)) continue;
      h.judged.add(d.id);
      const decision = d.data?.decision;
      const problem = decisionProblem(v, d, binding.approvers, this.origin);
      if (problem !== undefined) {
        // This desk's own expiry of a request it joined (made in another session) counts only by
        // the request's own expiry time, which the refusal below already applies: nothing to record.
        if (!(decision === 'expired' && d.recorder?.kind === 'gateway' && d.stream === h.session)) this.ignore(h, v, d, problem);
        continue;
      }
      if (decision === 'expired') {
        if (!this.takeHeld(h)) return;
        this.refuse(h, expired, 'expired');
        return;
      }
      const approver = textField(d.data?.approver) ?? 'unknown';
      if (decision === 'denied') {
        const why = textField(d.data?.reason);
        const reason = why === undefined ? '' : `: ${why}`;
        if (!this.takeHeld(h)) return;
        this.refuse(h, `The call to ${h.tool} was denied by ${approver}${reason} (approval request ${v.requestId}). It was not sent to the server.`);
        return;
      }
      // A decision recorded before the expiry counts even if it is read just after.
      const mismatch = ApprovalDesk.used.has(d.id)
        ? { code: 'approval_mismatch' as const, reason: `its approval (decision ${d.id}) has already released a call, and a grant is used once` }
        : releaseProblem(v, d, binding, new Date(Math.min(Date.now(), h.expiresAt - 1)), this.origin);
      if (!this.takeHeld(h)) return;
      if (mismatch === undefined) {
        await this.approve(h, v, d);
        return;
      }
      this.rec.error(`Approval request ${v.requestId} cannot release this call: ${mismatch.reason}.`, mismatch.code, 'gateway', {
        request_id: v.requestId,
        decision_id: d.id,
        arguments_digest: h.digest,
      });
      this.refuse(h, `The call to ${h.tool} was not made: its approval (request ${v.requestId}) does not match it (${mismatch.reason}).`);
      return;
    }
  }

  /** A decision that does not count: recorded once, with what it claimed, and otherwise ignored. */
  private ignore(h: Held, v: ApprovalView, d: Row<'approval.decision'>, problem: DecisionProblem): void {
    const approver = textField(d.data?.approver);
    const approverKey = textField(d.data?.approver_key);
    this.rec.error(`The ${String(d.data?.decision ?? '')} decision ${d.id} on approval request ${v.requestId} was ignored: ${problem.reason}; the call stays held.`, problem.code, 'gateway', {
      request_id: v.requestId,
      decision_id: d.id,
      ...(approver === undefined ? {} : { approver }),
      ...(approverKey === undefined ? {} : { approver_key: approverKey }),
    });
    this.host.log(`witness: ignored decision ${d.id} on approval request ${v.requestId}: ${problem.reason}.`);
  }

  /** Records the release (consuming the grant), then forwards the call. */
  private async approve(h: Held, v: ApprovalView, d: Row<'approval.decision'> = v.decision!): Promise<void> {
    const stop = this.host.stopped(h);
    if (stop !== undefined) {
      this.refuse(h, stop);
      return;
    }
    // Marked before the release is awaited, so two sessions polling the same grant cannot both pass.
    if (ApprovalDesk.used.has(d.id)) {
      this.refuse(h, `The call to ${h.tool} was not made: its approval (request ${v.requestId}) has already released a call, and a grant is used once.`);
      return;
    }
    ApprovalDesk.used.add(d.id);
    const released = await this.rec.release({
      callId: h.callId,
      tool: h.tool,
      server: this.host.server,
      salt: h.salt,
      digest: h.digest,
      evaluation: h.evaluation,
      requestId: v.requestId,
      decision: d,
    });
    if (!released) {
      // A gateway in another process, perhaps on another host, may have used the grant first: the
      // ledger refuses a second consumption (PostgreSQL: a unique index), and the ledger says whose.
      const now = await findApproval(this.witness.reader, v.requestId).catch(() => undefined);
      const first = now?.decision?.id === d.id ? now.consumedBy : undefined;
      if (first !== undefined) {
        this.rec.error(
          `Approval request ${v.requestId} cannot release this call: its approval (decision ${d.id}) released another call first (event ${first.id}), and a grant is used once.`,
          'approval_mismatch',
          'gateway',
          { request_id: v.requestId, decision_id: d.id, arguments_digest: h.digest },
        );
        this.refuse(h, `The call to ${h.tool} was not made: its approval (request ${v.requestId}) has already released a call, and a grant is used once.`);
        return;
      }
      ApprovalDesk.used.delete(d.id);
      this.host.toClient(
        errorMessage(h.id, ErrorCode.NotRecorded, `Witness could not record the release of this approved call to ${h.tool}, so it was not sent to the server; retry it within the approval's expiry.`),
        h.id,
      );
      return;
    }
    this.host.release(h);
  }

  /** Answers a held call it will not make: `denied` (a person, or a binding that failed), or `expired` (nobody decided in time). */
  private refuse(h: Held, text: string, outcome: 'denied' | 'expired' = 'denied'): void {
    const result = h.shape === undefined ? toolErrorResult(text) : h.shape(toolErrorResult(text));
    this.host.toClient(resultMessage(h.id, result), h.id);
    this.rec.result({ callId: h.callId, tool: h.tool, server: this.host.server, output: result, isError: true, durationMs: performance.now() - h.started, outcome });
  }

  /** No decision by the expiry: one last look, then the gateway records the expiry and refuses. */
  private async expire(h: Held): Promise<void> {
    if (!this.held.has(idKey(h.id))) return;
    await this.poll(h);
    if (!this.held.has(idKey(h.id))) return;
    this.take(h.id);
    await this.rec.expire({ requestId: h.requestId, tool: h.tool, server: this.host.server, digest: h.digest, approver: GATEWAY_APPROVER, evaluation: h.evaluation });
    const timedOut = `The call to ${h.tool} was not approved within ${duration(this.s.timeoutMs)} (approval request ${h.requestId}), so it was not made.`;
    // Whatever counting decision was recorded first wins: a person's decision that raced the expiry wins.
    const v = await findApproval(this.witness.reader, h.requestId).catch(() => undefined);
    if (v !== undefined) {
      this.held.set(idKey(h.id), h);
      await this.decide(h, v, timedOut);
      if (!this.held.has(idKey(h.id))) return;
      this.take(h.id);
    }
    this.refuse(h, timedOut, 'expired');
  }
}

function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 6000) / 10} minute(s)`;
}
