import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { GATEWAY_APPROVER, canonicalKey, decidedRequests, decisionProblem, findApproval, recordExpiry, recordRelease, recordRequest, releaseProblem, type Binding } from '../../approvals/index.js';
import { argumentsDigest, newArgumentsSalt, textField, type Outcome } from '../../core/index.js';
import { hookAdapter, type HookAgent, type HookAnswer, type HookEvent, type HookVerdict } from '../../integrations/index.js';
import { evaluate, type Evaluation, type Policy } from '../../policy/index.js';
import { RECORDER_VERSION, Session, openWitness, systemWriter, type Witness } from '../../recorder/index.js';

/**
 * One `witness hook <agent>` invocation: the agent's payload in, its answer out. Recorded as the
 * gateway records a call it relays (tool.call, policy.decision, approval records, tool.result,
 * recorder kind `gateway`: Witness observing from outside the agent's code), in one stream per
 * agent session, under the agent identity of the installed command (`--agent`), never the
 * payload's. The agent's own hook timeout kills a hook that overruns, so everything here races
 * `budgetMs`; a failure (or the budget) answers as `failOpen` says.
 */

export interface HookRunOptions {
  agentKind: HookAgent;
  agent: string;
  store: string;
  policy: Policy | undefined;
  /** Why the policy could not be loaded (then every tool call fails as failOpen says, and the fault is recorded). */
  policyProblem?: string | undefined;
  failOpen: boolean;
  /** How long a call held for review waits for `witness approve`. */
  reviewMs: number;
  /** The whole invocation's time limit (below the agent's own hook timeout). */
  budgetMs: number;
  pollMs?: number;
  log?: (line: string) => void;
}

/** The stream of an agent session: the agent kind and identity, and the agent's session id (hashed when it is not a plain token). */
export function hookStream(kind: HookAgent, agent: string, agentSession: string): string {
  const plain = /^[A-Za-z0-9._-]{1,128}$/.test(agentSession) ? agentSession : createHash('sha256').update(agentSession).digest('hex').slice(0, 32);
  return `${kind}:${agent}:${plain}`;
}

function answerFor(kind: HookAgent, event: HookEvent | undefined, verdict: HookVerdict): HookAnswer {
  return hookAdapter(kind).answer(event, verdict);
}

function parse(kind: HookAgent, text: string): HookEvent {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error('The hook payload on standard input is not JSON.');
  }
  return hookAdapter(kind).parse(doc);
}

export async function runHook(o: HookRunOptions, stdin: string): Promise<HookAnswer> {
  const log = o.log ?? (() => undefined);
  let event: HookEvent | undefined;
  const failed = (why: string): HookAnswer => {
    log(`witness hook: ${why}`);
    // Only what the agent is about to do can be refused; anything else just goes on.
    if (o.failOpen) return answerFor(o.agentKind, event, { decision: 'allow' });
    return answerFor(o.agentKind, event, { decision: 'deny', reason: `Witness could not record or check this action, so it was refused (fail closed): ${why}` });
  };
  try {
    event = parse(o.agentKind, stdin);
  } catch (e) {
    return failed((e as Error).message);
  }
  const ev = event;
  let timer: NodeJS.Timeout | undefined;
  const budget = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), o.budgetMs);
  });
  let witness: Witness | undefined;
  const work = (async (): Promise<HookVerdict> => {
    witness = await openWitness({ store: o.store, strict: true, retryForMs: 1000 });
    return handle(witness, o, ev, log);
  })();
  try {
    const r = await Promise.race([work, budget]);
    if (r === 'timeout') return failed(`it did not finish within ${o.budgetMs} ms`);
    return answerFor(o.agentKind, ev, r);
  } catch (e) {
    return failed(e instanceof Error ? e.message : String(e));
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined);
    await (witness as Witness | undefined)?.close().catch(() => undefined);
  }
}

/** A Session on the hook's stream through the gateway's write path, without recording session.start (which only the first sight of the session does). */
function sessionOn(w: Witness, stream: string, agent: string, kind: HookAgent): Session {
  const writer = systemWriter(w, 'gateway');
  const host: ConstructorParameters<typeof Session>[0] = {
    record: (s, input) => writer.record(s, input),
    storeOutput: (k, v) => w.storeOutput(k, v),
    storeArtifact: (b, m, r) => w.storeArtifact(b, m, r),
    capturer: undefined,
    sessionEnded: () => w.sessionEnded(),
    now: () => w.now(),
  };
  return new Session(host, { id: stream, agent: { id: agent }, resource: kind, recorder: { kind: 'gateway', version: RECORDER_VERSION } });
}

async function handle(w: Witness, o: HookRunOptions, ev: HookEvent, log: (line: string) => void): Promise<HookVerdict> {
  const stream = hookStream(o.agentKind, o.agent, ev.agentSession);
  const s = sessionOn(w, stream, o.agent, o.agentKind);
  const seen = await w.reader.query({ stream, limit: 1 });
  if (seen.events.length === 0) {
    await s.record('session.start', { clock: { source: 'system' }, labels: { via: 'hook', coding_agent: o.agentKind, agent_session: ev.agentSession.slice(0, 256) } });
  }
  const claims = { hook_event: ev.event, ...ev.claims };
  switch (ev.type) {
    case 'session.start':
      await s.record('note', { text: `${o.agentKind} session ${ev.source ?? 'started'}.`, client_claims: claims });
      return { decision: 'allow' };
    case 'session.end':
      if (ev.reason !== undefined) await s.record('note', { text: `${o.agentKind} session ended: ${ev.reason}.`, client_claims: claims });
      await s.end({ reason: 'completed' });
      return { decision: 'allow' };
    case 'prompt':
      await s.record('note', { text: ev.prompt, level: 'info', client_claims: claims }, { action: 'user_prompt' });
      return { decision: 'allow' };
    case 'other':
      await s.record('note', { text: ev.text ?? `${o.agentKind} ${ev.event}.`, client_claims: claims }, { action: ev.event });
      return { decision: 'allow' };
    case 'tool.after': {
      const callId = await findCall(w, stream, ev.callRef);
      await s.record(
        'tool.result',
        { tool: ev.tool, ...(ev.server === undefined ? {} : { server: ev.server }), output: ev.output ?? null, is_error: false, client_claims: claims },
        { resource: ev.server ?? ev.tool, action: ev.tool, outcome: 'success', ...(callId === undefined ? {} : { parent: callId }) },
      );
      return { decision: 'allow' };
    }
    case 'tool.before':
      return toolBefore(w, o, s, ev, claims, log);
  }
}

/** The tool.call a PostToolUse answers: the newest in the stream with the same tool-use id. */
async function findCall(w: Witness, stream: string, callRef: string | undefined): Promise<string | undefined> {
  if (callRef === undefined) return undefined;
  let found: string | undefined;
  let cursor: string | undefined;
  do {
    const page = await w.reader.query({ stream, kind: 'tool.call', limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const e of page.events) if ((e.data as { client_claims?: { tool_use_id?: unknown } } | null)?.client_claims?.tool_use_id === callRef) found = e.id;
    cursor = page.next;
  } while (cursor !== undefined);
  return found;
}

type ToolBefore = Extract<HookEvent, { type: 'tool.before' }>;

async function toolBefore(w: Witness, o: HookRunOptions, s: Session, ev: ToolBefore, claims: Record<string, unknown>, log: (line: string) => void): Promise<HookVerdict> {
  const callId = uuidv7();
  const base = { resource: ev.server ?? ev.tool, action: ev.tool };
  const e: Evaluation | undefined = o.policy === undefined ? undefined : evaluate(o.policy, { agent: o.agent, server: ev.server, tool: ev.tool, args: ev.args });
  const review = e?.decision === 'review' && e.enforced;
  const call = s.record(
    'tool.call',
    { tool: ev.tool, ...(ev.server === undefined ? {} : { server: ev.server }), arguments: ev.args, ...(review ? { requires_approval: true } : {}), client_claims: claims },
    { ...base, id: callId, outcome: 'pending' },
  );
  const decision =
    e === undefined
      ? undefined
      : s.record(
          'policy.decision',
          {
            decision: e.decision,
            ...(e.rule === undefined ? {} : { rule: e.rule }),
            mode: e.mode,
            policy_version: e.policyVersion,
            ...(e.reason === undefined ? {} : { reason: e.reason }),
            tool: ev.tool,
            ...digestFields(w, ev.args),
            ...(e.matched.length === 0 ? {} : { matched: e.matched }),
            ...(e.approvers === undefined ? {} : { approvers: e.approvers.map((a) => a.id) }),
          },
          {
            ...base,
            parent: callId,
            outcome: !e.enforced || e.decision === 'allow' ? 'success' : e.decision === 'deny' ? 'denied' : 'pending',
            policy: { decision: e.decision, ...(e.rule === undefined ? {} : { rule: e.rule }), version: e.policyVersion, mode: e.mode },
          },
        );
  await Promise.all([call, decision]);
  if (o.policyProblem !== undefined) {
    await s.record('error', { message: `The hook's policy could not be loaded: ${o.policyProblem}`, code: 'policy_unavailable', source: 'gateway' }, { parent: callId, outcome: 'error' });
    if (!o.failOpen) {
      const reason = `Witness refused this ${ev.tool} call because its policy could not be loaded (fail closed): ${o.policyProblem}`;
      await refused(w, s, ev, callId, reason, 'denied');
      return { decision: 'deny', reason };
    }
    return { decision: 'allow' };
  }
  if (e === undefined || !e.enforced || e.decision === 'allow') return { decision: 'allow' };
  if (e.decision === 'deny') {
    const reason = `Witness policy rule ${e.rule ?? 'default'} denies this ${ev.tool} call${e.reason === undefined ? '.' : `: ${e.reason}`}`;
    await refused(w, s, ev, callId, reason, 'denied');
    return { decision: 'deny', reason };
  }
  return hold(w, o, s, ev, callId, e, log);
}

/** Closes a call the agent will not make with a tool.result saying why. */
async function refused(w: Witness, s: Session, ev: ToolBefore, callId: string, reason: string, outcome: Outcome): Promise<void> {
  await s.record(
    'tool.result',
    { tool: ev.tool, ...(ev.server === undefined ? {} : { server: ev.server }), is_error: true, error: { message: reason, code: outcome }, duration_ms: 0 },
    { resource: ev.server ?? ev.tool, action: ev.tool, parent: callId, outcome },
  );
  await w.flush();
}

function digestFields(w: Witness, args: unknown): Record<string, string> {
  try {
    const salt = newArgumentsSalt();
    return { arguments_salt: salt, arguments_digest: argumentsDigest(salt, w.redactData(args)) };
  } catch {
    return {};
  }
}

/**
 * Holds a `review` call for `witness approve` until `reviewMs`: the gateway's approval protocol
 * (src/approvals) in one process that lives as long as the hook. A decision counts only as the
 * gateway's do (core's decisionProblem, then releaseProblem against this policy's approvers); the
 * first that counts decides; at the limit the expiry is recorded and the call refused.
 */
async function hold(w: Witness, o: HookRunOptions, s: Session, ev: ToolBefore, callId: string, e: Evaluation, log: (line: string) => void): Promise<HookVerdict> {
  const redacted = w.redactData(ev.args);
  const salt = newArgumentsSalt();
  const digest = argumentsDigest(salt, redacted);
  const approvers = (e.approvers ?? []).map((a) => canonicalKey(a.key)).filter((k): k is string => k !== undefined);
  const requestedAt = Date.now();
  const expiresAt = requestedAt + o.reviewMs;
  const requestId = await recordRequest(s, { callId, tool: ev.tool, server: ev.server, args: redacted, salt, digest, approvers, policy: e, expiresAt: new Date(expiresAt).toISOString() });
  if (requestId === undefined) throw new Error(`the approval request for this ${ev.tool} call could not be recorded`);
  await w.flush();
  log(`witness: the ${ev.tool} call needs human approval (policy rule ${e.rule ?? 'default'}): witness approve ${requestId} --key <your key>  |  witness deny ${requestId} --key <your key>`);
  const binding: Binding = { agent: o.agent, server: ev.server, tool: ev.tool, arguments: redacted, policyVersion: e.policyVersion, approvers, session: s.id };
  const origin = w.reader.info.origin;
  const judged = new Set<string>();
  const pollMs = o.pollMs ?? 250;
  const look = async (now: Date): Promise<HookVerdict | undefined> => {
    const decided = await decidedRequests(w.reader, o.agent, new Set([requestId]), requestedAt);
    if (!decided.has(requestId)) return undefined;
    const v = await findApproval(w.reader, requestId);
    for (const d of v.decisions) {
      if (judged.has(d.id)) continue;
      judged.add(d.id);
      // Judged before anything is read from it: an unsigned `expired` counts only from the gateway in the request's own session.
      const problem = decisionProblem(v, d, approvers, origin);
      if (problem !== undefined) {
        // This hook's own expiry, written just before the last look, is not a decision to complain about.
        if (d.data?.decision === 'expired' && d.recorder?.kind === 'gateway' && d.stream === s.id) continue;
        await s.record(
          'error',
          { message: `Decision ${d.id} on approval request ${requestId} was ignored: ${problem.reason}.`, code: problem.code, source: 'gateway', request_id: requestId, decision_id: d.id },
          { outcome: 'error' },
        );
        continue;
      }
      if (d.data?.decision === 'expired') return { decision: 'deny', reason: `The ${ev.tool} call was not approved before approval request ${requestId} expired, so it was refused.` };
      const approver = textField(d.data?.approver) ?? 'unknown';
      if (d.data?.decision === 'denied') {
        const why = textField(d.data?.reason);
        return { decision: 'deny', reason: `The ${ev.tool} call was denied by ${approver}${why === undefined ? '' : `: ${why}`} (approval request ${requestId}).` };
      }
      const mismatch = releaseProblem(v, d, binding, now, origin);
      if (mismatch !== undefined) return { decision: 'deny', reason: `The ${ev.tool} call was refused: its approval (request ${requestId}) does not release it (${mismatch.reason}).` };
      const released = await recordRelease(s, { callId, tool: ev.tool, server: ev.server, salt, digest, policy: e, requestId, decision: d });
      if (!released) return { decision: 'deny', reason: `The release of the approved ${ev.tool} call could not be recorded, so it was refused.` };
      await w.flush();
      return { decision: 'allow' };
    }
    return undefined;
  };
  while (Date.now() < expiresAt) {
    const verdict = await look(new Date(Math.min(Date.now(), expiresAt - 1)));
    if (verdict !== undefined) {
      if (verdict.decision === 'deny') await refused(w, s, ev, callId, verdict.reason, 'denied');
      return verdict;
    }
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, expiresAt - Date.now()))));
  }
  await recordExpiry(s, { requestId, tool: ev.tool, server: ev.server, digest, approver: GATEWAY_APPROVER, policy: e });
  await w.flush();
  // A person's decision recorded before the expiry still wins over it.
  const late = await look(new Date(expiresAt - 1));
  if (late !== undefined && late.decision === 'allow') return late;
  const reason = `The ${ev.tool} call was not approved within ${Math.round(o.reviewMs / 100) / 10} s (approval request ${requestId}), so it was refused.`;
  await refused(w, s, ev, callId, reason, 'expired');
  return { decision: 'deny', reason };
}
