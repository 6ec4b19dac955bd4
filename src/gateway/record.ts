import { v7 as uuidv7 } from 'uuid';
import { recordExpiry, recordRelease, recordRequest, type ExpiryRecord, type HaltView, type ReleaseRecord, type RequestRecord } from '../approvals/index.js';
import { argumentsDigest, newArgumentsSalt, type AgentRef, type Outcome, type RecordedErrorCode } from '../core/index.js';
import type { Evaluation } from '../policy/index.js';
import type { Session, Witness } from '../recorder/index.js';

/**
 * What the gateway writes to the ledger, in one place. The gateway observes calls from outside the
 * agent, so every event is attributed to the session's agent (the proxy's own configuration), and
 * whatever the client says about itself goes into `client_claims` only.
 */

/** What a recorded request is: a tool call, a resource read, a prompt fetch, a list call, or another request (one a halt refused). */
export type CallKind = 'tool' | 'resource' | 'prompt' | 'list' | 'request';

export interface CallStart {
  kind: CallKind;
  /** The tool name; for other requests the MCP method (resources/read, prompts/get, tools/list). */
  tool: string;
  method?: string;
  /** The resource URI or prompt name a non-tool request names. */
  target?: string | undefined;
  server: string | undefined;
  args: unknown;
  jsonrpcId: string | number;
  claims: unknown;
  evaluation: Evaluation | undefined;
  /**
   * The halt in force for the agent: the call is refused, and its policy.decision records a deny
   * for reason `halted` naming the halt (instead of the policy's evaluation, which did not decide).
   */
  halt?: HaltView | undefined;
  /** More facts for the tool.call record (a modern MRTR retry's input responses and request state). */
  extra?: Record<string, unknown>;
}

export interface CallEnd {
  callId: string;
  tool: string;
  server: string | undefined;
  output?: unknown;
  isError: boolean;
  error?: { message: string; code?: string | number; name?: string; data?: unknown };
  durationMs: number;
  outcome: Outcome;
  /** A modern result that does not finish its request (`input_required`): recorded as result_type. */
  resultType?: string;
}

export class GatewayRecorder {
  /** Records started but not awaited by the forwarding path (results, errors): awaited at the end. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly witness: Witness,
    readonly session: Session,
    readonly agent: AgentRef,
  ) {}

  /**
   * Records `tool.call` and, when a policy was evaluated, its `policy.decision`, both committed
   * before this resolves. Returns the call's event id, or undefined when the call could not be
   * recorded (the caller then refuses the call: the gateway fails closed).
   */
  async call(c: CallStart): Promise<string | undefined> {
    const callId = uuidv7();
    // For a tool the resource is the server and the action the tool; a resource read touches the URI.
    const base =
      c.kind === 'tool'
        ? { resource: c.server ?? c.tool, action: c.tool }
        : { resource: c.kind === 'resource' && c.target !== undefined ? c.target : (c.server ?? c.tool), action: c.kind === 'prompt' && c.target !== undefined ? `prompts/get ${c.target}` : c.tool };
    const review = c.evaluation?.decision === 'review';
    const call = this.session.record(
      'tool.call',
      {
        tool: c.tool,
        ...(c.method === undefined ? {} : { method: c.method }),
        ...(c.target === undefined ? {} : { target: c.target }),
        ...(c.server === undefined ? {} : { server: c.server }),
        arguments: c.args,
        jsonrpc_id: c.jsonrpcId,
        ...(review ? { requires_approval: true } : {}),
        ...(c.claims === undefined ? {} : { client_claims: c.claims }),
        ...c.extra,
      },
      { ...base, id: callId, outcome: 'pending' },
    );
    const e = c.halt === undefined ? c.evaluation : undefined;
    const decision =
      e === undefined
        ? this.haltDecision(c, callId, base)
        : this.session.record(
            'policy.decision',
            {
              decision: e.decision,
              ...(e.rule === undefined ? {} : { rule: e.rule }),
              mode: e.mode,
              policy_version: e.policyVersion,
              ...(e.reason === undefined ? {} : { reason: e.reason }),
              tool: c.tool,
              ...this.digestFields(c.args),
              ...(e.matched.length === 0 ? {} : { matched: e.matched }),
              ...(e.approvers === undefined ? {} : { approvers: e.approvers.map((a) => a.id) }),
            },
            {
              ...base,
              parent: callId,
              outcome: policyOutcome(e),
              policy: { decision: e.decision, ...(e.rule === undefined ? {} : { rule: e.rule }), version: e.policyVersion, mode: e.mode },
            },
          );
    const [receipt] = await Promise.all([call, decision]);
    return receipt === undefined ? undefined : callId;
  }

  /** The policy.decision of a call refused because its agent is halted (nothing when it is not). */
  private async haltDecision(c: CallStart, callId: string, base: { resource: string; action: string }): Promise<unknown> {
    const h = c.halt;
    if (h === undefined) return undefined;
    return this.session.record(
      'policy.decision',
      { decision: 'deny', reason: 'halted', tool: c.tool, ...this.digestFields(c.args), halt: { id: h.id, actor: h.actor, reason: h.reason, ts: h.ts } },
      { ...base, parent: callId, outcome: 'denied', policy: { decision: 'deny', reason_code: 'halted', mode: 'enforce' } },
    );
  }

  /** Records `tool.result` (large outputs spill into the artifact store). Does not block the caller. */
  result(r: CallEnd): void {
    this.track(
      (async () => {
        const stored = r.output === undefined ? { value: undefined } : await this.witness.storeOutput('tool.result', r.output);
        await this.session.record(
          'tool.result',
          {
            tool: r.tool,
            ...(r.server === undefined ? {} : { server: r.server }),
            ...(stored.value === undefined ? {} : { output: stored.value }),
            is_error: r.isError,
            ...(r.resultType === undefined ? {} : { result_type: r.resultType }),
            ...(r.error === undefined ? {} : { error: r.error }),
            duration_ms: Math.max(0, r.durationMs),
          },
          {
            resource: r.server ?? r.tool,
            action: r.tool,
            parent: r.callId,
            outcome: r.outcome,
            ...(stored.artifact === undefined ? {} : { artifacts: [stored.artifact] }),
          },
        );
      })(),
    );
  }

  /** Records that a call ended without an answer from the server (cancelled, timed out, upstream or client gone). */
  failed(call: { callId: string; tool: string }, server: string | undefined, started: number, message: string, code: string): void {
    this.result({ callId: call.callId, tool: call.tool, server, isError: true, error: { message, code }, durationMs: performance.now() - started, outcome: 'error' });
  }

  /**
   * The approval records (approvals/records.ts) in this session: the request, the release that
   * consumes a grant, the gateway's expiry. `args` are the redacted arguments, `digest` their
   * digest under `salt`, `approvers` the verifier keys of the people the policy allows to decide.
   */
  async approvalRequest(r: Omit<RequestRecord, 'policy'> & { evaluation: Evaluation }): Promise<string | undefined> {
    const { evaluation, ...rest } = r;
    return recordRequest(this.session, { ...rest, policy: evaluation });
  }

  async release(r: Omit<ReleaseRecord, 'policy'> & { evaluation: Evaluation }): Promise<boolean> {
    const { evaluation, ...rest } = r;
    return recordRelease(this.session, { ...rest, policy: evaluation });
  }

  async expire(r: Omit<ExpiryRecord, 'policy'> & { evaluation: Evaluation }): Promise<void> {
    const { evaluation, ...rest } = r;
    await recordExpiry(this.session, { ...rest, policy: evaluation });
  }

  /** Records an `error` event: bad input from the client, an upstream that exited, a refused call. */
  error(message: string, code: RecordedErrorCode | (string & Record<never, never>) | number, source: 'gateway' | 'tool', extra: Record<string, unknown> = {}): void {
    // The sentence, code and source are the recorder's own: context in `extra` never replaces them.
    this.track(this.session.record('error', { ...extra, message, code, source }, { outcome: 'error' }));
  }

  note(text: string, extra: Record<string, unknown> = {}): void {
    this.track(this.session.record('note', { text, ...extra }));
  }

  /** Waits for every record started so far. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * The salted digest of a call's arguments as the ledger stores them (redacted), with its salt
   * (core/approval.ts). Empty when the arguments have no canonical form: the call itself then
   * cannot be recorded either, and is refused.
   */
  digestFields(args: unknown): { arguments_salt: string; arguments_digest: string } | Record<string, never> {
    try {
      const salt = newArgumentsSalt();
      return { arguments_salt: salt, arguments_digest: argumentsDigest(salt, this.witness.redactData(args)) };
    } catch {
      return {};
    }
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch(() => undefined).finally(() => this.inFlight.delete(q));
    this.inFlight.add(q);
  }
}

/**
 * A policy decision's outcome as a compliance reader means it: an enforced `deny` refused the
 * call (`denied`); an enforced `review` holds it for a person (`pending`; the person's decision
 * and the release or refusal that follow carry what happened); an allow, or any decision in shadow
 * mode (recorded, not enforced), let it through (`success`).
 */
export function policyOutcome(e: Pick<Evaluation, 'decision' | 'enforced'>): Outcome {
  if (!e.enforced || e.decision === 'allow') return 'success';
  return e.decision === 'deny' ? 'denied' : 'pending';
}
