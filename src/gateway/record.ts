import { v7 as uuidv7 } from 'uuid';
import { canonicalize, sha256Hex, type Outcome } from '../core/index.js';
import type { Evaluation } from '../policy/index.js';
import type { Session, Witness } from '../recorder/index.js';

/**
 * What the gateway writes to the ledger, in one place. The gateway observes calls from outside the
 * agent, so every event is attributed to the session's agent (the proxy's own configuration), and
 * whatever the client says about itself goes into `client_claims` only.
 */

export interface CallStart {
  tool: string;
  server: string | undefined;
  args: unknown;
  jsonrpcId: string | number;
  claims: unknown;
  evaluation: Evaluation | undefined;
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
}

export class GatewayRecorder {
  /** Records started but not awaited by the forwarding path (results, errors): awaited at the end. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly witness: Witness,
    readonly session: Session,
  ) {}

  /**
   * Records `tool.call` and, when a policy was evaluated, its `policy.decision`, both committed
   * before this resolves. Returns the call's event id, or undefined when the call could not be
   * recorded (the caller then refuses the call: the gateway fails closed).
   */
  async call(c: CallStart): Promise<string | undefined> {
    const callId = uuidv7();
    const base = { resource: c.server ?? c.tool, action: c.tool };
    const review = c.evaluation?.decision === 'review';
    const call = this.session.record(
      'tool.call',
      {
        tool: c.tool,
        ...(c.server === undefined ? {} : { server: c.server }),
        arguments: c.args,
        jsonrpc_id: c.jsonrpcId,
        ...(review ? { requires_approval: true } : {}),
        ...(c.claims === undefined ? {} : { client_claims: c.claims }),
      },
      { ...base, id: callId, outcome: 'pending' },
    );
    const e = c.evaluation;
    const decision =
      e === undefined
        ? Promise.resolve(undefined)
        : this.session.record(
            'policy.decision',
            {
              decision: e.decision,
              ...(e.rule === undefined ? {} : { rule: e.rule }),
              mode: e.mode,
              policy_version: e.policyVersion,
              ...(e.reason === undefined ? {} : { reason: e.reason }),
              tool: c.tool,
              ...argumentsDigest(c.args),
              ...(e.matched.length === 0 ? {} : { matched: e.matched }),
            },
            {
              ...base,
              parent: callId,
              outcome: e.enforced && e.decision !== 'allow' ? 'denied' : 'success',
              policy: { decision: e.decision, ...(e.rule === undefined ? {} : { rule: e.rule }), version: e.policyVersion, mode: e.mode },
            },
          );
    const [receipt] = await Promise.all([call, decision]);
    return receipt === undefined ? undefined : callId;
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

  /** Records an `error` event: bad input from the client, an upstream that exited, a refused call. */
  error(message: string, code: string, source: 'gateway' | 'tool', extra: Record<string, unknown> = {}): void {
    this.track(this.session.record('error', { message, code, source, ...extra }, { outcome: 'error' }));
  }

  note(text: string, extra: Record<string, unknown> = {}): void {
    this.track(this.session.record('note', { text, ...extra }));
  }

  /** Waits for every record started so far. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch(() => undefined).finally(() => this.inFlight.delete(q));
    this.inFlight.add(q);
  }
}

function argumentsDigest(args: unknown): { arguments_digest?: string } {
  try {
    return { arguments_digest: sha256Hex(canonicalize(args ?? null)) };
  } catch {
    // Arguments that have no canonical form (numbers beyond 2^53) are still recorded on tool.call.
    return {};
  }
}
