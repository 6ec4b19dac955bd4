import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import {
  GATEWAY_APPROVER,
  canonicalKey,
  decidedRequests,
  decisionProblem,
  findApproval,
  haltState,
  recordExpiry,
  recordRelease,
  recordRequest,
  releaseProblem,
  type Binding,
  type HaltView,
} from '../../approvals/index.js';
import { argumentsDigest, canonicalize, isWellFormedString, newArgumentsSalt, textField, type ArtifactRef, type Outcome } from '../../core/index.js';
import { hookAdapter, type HookAgent, type HookAnswer, type HookEvent, type HookVerdict } from '../../integrations/index.js';
import { evaluate, type Evaluation, type Policy } from '../../policy/index.js';
import { RECORDER_VERSION, Session, openWitness, systemWriter, type Witness } from '../../recorder/index.js';

/**
 * One `witness hook <agent>` invocation: the agent's payload in, its answer out. Recorded as the
 * gateway records a call it relays (tool.call, policy.decision, approval records, tool.result,
 * recorder kind `gateway`: Witness observing from outside the agent's code), in one stream per
 * agent session, under the agent identity of the installed command (`--agent`), never the
 * payload's. The agent's own hook timeout kills a hook that overruns, so everything here races
 * `budgetMs`; a failure (or the budget) answers as `failOpen` says, except that a call the policy
 * denies or holds for review is refused whatever recording does (issue 16 review, H4 and M5), and
 * only what the agent is about to do (a tool call, a prompt) is ever refused (M2). A failure is
 * recorded as an `error` event when the ledger takes anything at all (M6).
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

/**
 * Where a fault goes that belongs to no session (a payload that could not be read): the gateway's
 * own stream, as the HTTP gateway records its faults (src/gateway GATEWAY_STREAM; not imported,
 * which would load the gateway into every hook).
 */
const FAULT_STREAM = 'witness.gateway';
/** How long recording a fault (and closing the ledger) may take once the answer is decided: the agent's own timeout is 5 s above the budget. */
const FAULT_MS = 1500;
const CLOSE_MS = 3000;

function answerFor(kind: HookAgent, event: Pick<HookEvent, 'type' | 'event'> | undefined, verdict: HookVerdict): HookAnswer {
  return hookAdapter(kind).answer(event, verdict);
}

function readJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error('The hook payload on standard input is not JSON.');
  }
}

/** Resolves `p`, or undefined after `ms` (the work goes on unobserved). */
function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, ms))));
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** What the hook learnt while working, for recording a fault where it belongs. */
interface Progress {
  stream?: string;
  callId?: string;
  /** A refusal decided before recording finished (the agent is halted): the answer whatever recording or --fail does. */
  refusal?: Extract<HookVerdict, { decision: 'deny' }>;
}

/** `stdin`: the payload, or why it could not be read (too large, a broken pipe). */
export async function runHook(o: HookRunOptions, stdin: string | Error): Promise<HookAnswer> {
  const log = o.log ?? (() => undefined);
  const deadline = Date.now() + o.budgetMs;
  let event: HookEvent | undefined;
  /** The event the payload names, read before it is parsed: what a payload that fails to parse is answered as (review 2, L-G). */
  let seen: Pick<HookEvent, 'type' | 'event'> | undefined;
  /** The policy's own verdict on a tool call it denies or holds: the answer whenever anything fails (review H4, M5). */
  let floor: Extract<HookVerdict, { decision: 'deny' }> | undefined;
  let witness: Witness | undefined;
  let opening: 'idle' | 'pending' | 'failed' | 'open' = 'idle';
  const progress: Progress = {};
  const open = async (retryForMs: number): Promise<Witness> => {
    opening = 'pending';
    try {
      witness = await openWitness({ store: o.store, strict: true, retryForMs });
      opening = 'open';
      return witness;
    } catch (e) {
      opening = 'failed';
      throw e;
    }
  };
  const recordFault = async (why: string): Promise<void> => {
    // A ledger that could not be opened, or is still being opened, is not asked again.
    if (opening === 'failed' || opening === 'pending') return;
    const w = witness ?? (await open(0));
    const stream = progress.stream ?? FAULT_STREAM;
    const named = (event ?? seen)?.event;
    await systemWriter(w, 'gateway').record(stream, {
      agent: { id: o.agent },
      kind: 'error',
      outcome: 'error',
      ...(progress.callId === undefined ? {} : { parent: progress.callId }),
      recorder: { kind: 'gateway', version: RECORDER_VERSION },
      data: {
        message: `witness hook ${o.agentKind} failed: ${why}`,
        code: 'hook_failed',
        source: 'gateway',
        coding_agent: o.agentKind,
        ...(named === undefined ? {} : { hook_event: named }),
      },
    });
    await w.flush();
  };
  const failed = async (why: string): Promise<HookAnswer> => {
    log(`witness hook: ${why}`);
    await within(
      recordFault(why).catch(() => undefined),
      Math.min(FAULT_MS, Math.max(deadline + 2000 - Date.now(), 0)),
    );
    const answering = event ?? seen;
    const refusal = progress.refusal ?? floor;
    if (refusal !== undefined) return answerFor(o.agentKind, answering, refusal);
    if (o.failOpen) return answerFor(o.agentKind, answering, { decision: 'allow' });
    // Only what the agent is about to do (a tool call, a prompt) is refused: every adapter answers a
    // deny on any other event without blocking (a notice to the user at most), review M2; the notice
    // then says what happened, which is no refusal (review 2, L-G). A payload naming no event is
    // answered as the refusal it most likely is.
    if (answering !== undefined && answering.type !== 'tool.before' && answering.type !== 'prompt') {
      return answerFor(o.agentKind, answering, {
        decision: 'deny',
        reason: `Witness could not record this ${answering.event} event, which goes on as usual (fail closed holds back only tool calls and prompts): ${why}`,
      });
    }
    return answerFor(o.agentKind, answering, { decision: 'deny', reason: `Witness could not record or check this action, so it was refused (fail closed): ${why}` });
  };
  try {
    try {
      if (stdin instanceof Error) throw stdin;
      const doc = readJson(stdin);
      seen = hookAdapter(o.agentKind).eventOf(doc);
      event = hookAdapter(o.agentKind).parse(doc);
    } catch (e) {
      return await failed((e as Error).message);
    }
    const ev = event;
    let evaluation: Evaluation | undefined;
    if (ev.type === 'tool.before' && o.policy !== undefined) {
      try {
        evaluation = strictest(o.policy, o.agent, ev);
      } catch (e) {
        return await failed(`the policy could not be evaluated: ${(e as Error).message}`);
      }
      if (evaluation.enforced && evaluation.decision === 'deny') floor = { decision: 'deny', reason: denyReason(evaluation, ev.tool) };
      if (evaluation.enforced && evaluation.decision === 'review') {
        floor = {
          decision: 'deny',
          reason: `The ${ev.tool} call needs a person's approval (policy rule ${evaluation.rule ?? 'default'}), and Witness could not hold it for review, so it was refused.`,
        };
      }
    }
    const work = (async (): Promise<HookVerdict> => handle(await open(1000), o, ev, evaluation, progress, log))();
    work.catch(() => undefined);
    const r = await within(work, deadline - Date.now()).catch((e: unknown) => e as Error);
    if (r === undefined) return await failed(`it did not finish within ${o.budgetMs} ms`);
    if (r instanceof Error) return await failed(r.message);
    return answerFor(o.agentKind, ev, r);
  } finally {
    if (witness !== undefined)
      await within(
        witness.close().catch(() => undefined),
        CLOSE_MS,
      );
  }
}

function denyReason(e: Evaluation, tool: string): string {
  return `Witness policy rule ${e.rule ?? 'default'} denies this ${tool} call${e.reason === undefined ? '.' : `: ${e.reason}`}`;
}

type ToolBefore = Extract<HookEvent, { type: 'tool.before' }>;

/**
 * The policy's verdict on a tool call. A qualified MCP name that cannot say where its server's name
 * ends (`mcp__bank__eu__transfer`: server `bank`, or `bank__eu`? Gemini's `mcp_my_bank_transfer`:
 * `my`, or `my_bank`?) comes with every reading (the adapters' `readings`), each is evaluated and
 * the strictest wins: a rule on any of those servers applies (issue 16 review L1, review 2 L-D).
 */
function strictest(policy: Policy, agent: string, ev: Pick<ToolBefore, 'server' | 'tool' | 'args' | 'readings'>): Evaluation {
  const rank = (e: Evaluation): number => (!e.enforced ? 0 : e.decision === 'deny' ? 3 : e.decision === 'review' ? 2 : 1);
  let worst = evaluate(policy, { agent, server: ev.server, tool: ev.tool, args: ev.args });
  for (const r of ev.readings ?? []) {
    const e = evaluate(policy, { agent, server: r.server, tool: r.tool, args: ev.args });
    if (rank(e) > rank(worst)) worst = e;
  }
  return worst;
}

/** A Session on the hook's stream through the gateway's write path, without recording session.start (which only the first sight of the session does). */
function sessionOn(w: Witness, stream: string, agent: string, kind: HookAgent): Session {
  const writer = systemWriter(w, 'gateway');
  const host: ConstructorParameters<typeof Session>[0] = {
    record: (s, input) => writer.record(s, input),
    storeOutput: (k, v) => w.storeOutput(k, v),
    storeArtifact: (b, m, r) => w.storeArtifact(b, m, r),
    // Session.storeJson refuses a host that cannot redact: what the hook stores is redacted as its records are.
    redactData: (v) => w.redactData(v),
    capturer: undefined,
    sessionEnded: () => w.sessionEnded(),
    now: () => w.now(),
  };
  return new Session(host, { id: stream, agent: { id: agent }, resource: kind, recorder: { kind: 'gateway', version: RECORDER_VERSION } });
}

/** How many stream segments one agent session may have (each resume after a session.end opens one). */
const MAX_SEGMENTS = 1000;

/**
 * The stream segment an agent session records into now. A session.end closes a stream for good
 * (the store refuses anything after it), but Claude Code sends a resumed session's events under the
 * same session id: those go on in `<stream>#2`, `#3`, … (`#` never occurs in hookStream's names),
 * whose session.start names the segment it continues (issue 16 review, H3).
 */
async function segment(w: Witness, base: string): Promise<{ stream: string; fresh: boolean; continues?: { stream: string; session_end: string } }> {
  let continues: { stream: string; session_end: string } | undefined;
  for (let n = 1; n <= MAX_SEGMENTS; n++) {
    const stream = n === 1 ? base : `${base}#${n}`;
    const [any, end] = await Promise.all([w.reader.query({ stream, limit: 1 }), w.reader.query({ stream, kind: 'session.end', limit: 1 })]);
    if (any.events.length === 0) return { stream, fresh: true, ...(continues === undefined ? {} : { continues }) };
    const ended = end.events[0];
    if (ended === undefined) return { stream, fresh: false };
    continues = { stream, session_end: ended.id };
  }
  throw new Error(`the agent session has ended ${MAX_SEGMENTS} times, more than Witness records as one session`);
}

/** A receipt, or the failure it is: the store refused the record or gave up on it (review H3, H4). */
function recorded<T>(receipt: T | undefined, what: string): T {
  if (receipt === undefined) throw new Error(`the ${what} could not be recorded`);
  return receipt;
}

async function handle(w: Witness, o: HookRunOptions, ev: HookEvent, e: Evaluation | undefined, progress: Progress, log: (line: string) => void): Promise<HookVerdict> {
  const seg = await segment(w, hookStream(o.agentKind, o.agent, ev.agentSession));
  const stream = seg.stream;
  progress.stream = stream;
  const s = sessionOn(w, stream, o.agent, o.agentKind);
  if (seg.fresh) {
    recorded(
      await s.record('session.start', {
        clock: { source: 'system' },
        labels: { via: 'hook', coding_agent: o.agentKind, agent_session: ev.agentSession.slice(0, 256) },
        ...(seg.continues === undefined ? {} : { continues: seg.continues }),
      }),
      'session.start',
    );
  }
  const claims = { hook_event: ev.event, ...ev.claims };
  switch (ev.type) {
    case 'session.start':
      recorded(await s.record('note', { text: `${o.agentKind} session ${ev.source ?? 'started'}.`, client_claims: claims }), 'note');
      return { decision: 'allow' };
    case 'session.end':
      if (ev.reason !== undefined) recorded(await s.record('note', { text: `${o.agentKind} session ended: ${ev.reason}.`, client_claims: claims }), 'note');
      recorded(await s.end({ reason: 'completed' }), 'session.end');
      return { decision: 'allow' };
    case 'prompt': {
      const t = await recordableText(w, ev.prompt, 'note.prompt');
      recorded(await s.record('note', { ...t.data, level: 'info', client_claims: claims }, { action: 'user_prompt', ...artifactsOf(t) }), 'prompt');
      return { decision: 'allow' };
    }
    case 'other': {
      const t = await recordableText(w, ev.text ?? `${o.agentKind} ${ev.event}.`, 'note.text');
      recorded(await s.record('note', { ...t.data, client_claims: claims }, { action: ev.event, ...artifactsOf(t) }), 'note');
      return { decision: 'allow' };
    }
    case 'tool.after': {
      const call = await findCall(w, stream, ev);
      const out: Recordable = ev.output === undefined ? { value: null, plain: null } : await recordable(w, ev.output, 'tool.result.output');
      recorded(
        await s.record(
          'tool.result',
          { tool: ev.tool, ...(ev.server === undefined ? {} : { server: ev.server }), output: out.value, is_error: false, call_link: call.link, client_claims: claims },
          { resource: ev.server ?? ev.tool, action: ev.tool, outcome: 'success', ...(call.id === undefined ? {} : { parent: call.id }), ...artifactsOf(out) },
        ),
        'tool.result',
      );
      return { decision: 'allow' };
    }
    case 'tool.before':
      return toolBefore(w, o, s, ev, e, claims, progress, log);
  }
}

type ToolAfter = Extract<HookEvent, { type: 'tool.after' }>;

/**
 * How a tool.result was tied to its tool.call, recorded beside it as `call_link`: Witness's own
 * reading of the payloads (by the agent's call id, or by matching arguments), or why it has no
 * parent, so an auditor can tell a missing call from one that could not be told.
 */
type CallLink = { by: 'tool_use_id' | 'arguments' } | { by: 'none'; reason: string };

const NO_MATCH = 'The agent gave this result no call id, and no tool.call in this session with the same tool, server and arguments is waiting for its result.';

/**
 * The tool.call a tool's result answers, looked for in this stream only (never across sessions).
 * By the agent's call id when it sends one (Claude Code, Codex, Cursor's postToolUse): the newest
 * call with that id. Gemini CLI's AfterTool and Cursor's afterMCPExecution carry none
 * (https://geminicli.com/docs/hooks/reference, https://cursor.com/docs/hooks), so there: the
 * newest call of the same tool and server, with the same arguments as recorded (redacted, so the
 * comparison sees what the ledger holds; over SPILL_BYTES, the digest of the artifact holding
 * them), that has no tool.result yet. Two calls alike in all of that are told apart by order only.
 */
async function findCall(w: Witness, stream: string, ev: ToolAfter): Promise<{ id?: string; link: CallLink }> {
  type Stored = Awaited<ReturnType<Witness['reader']['query']>>['events'][number];
  const all = async (filter: { kind: string; resource?: string; action?: string }): Promise<Stored[]> => {
    const out: Stored[] = [];
    let cursor: string | undefined;
    do {
      const page = await w.reader.query({ stream, ...filter, limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
      out.push(...page.events);
      cursor = page.next;
    } while (cursor !== undefined);
    return out;
  };
  const newest = (events: Stored[]): Stored | undefined => events.reduce<Stored | undefined>((a, e) => (a === undefined || e.seq > a.seq ? e : a), undefined);
  if (ev.callRef !== undefined) {
    const byId = newest((await all({ kind: 'tool.call' })).filter((e) => (e.data as { client_claims?: { tool_use_id?: unknown } } | null)?.client_claims?.tool_use_id === ev.callRef));
    if (byId !== undefined) return { id: byId.id, link: { by: 'tool_use_id' } };
    return { link: { by: 'none', reason: `No tool.call in this session has the tool call id ${ev.callRef.slice(0, 256)}.` } };
  }
  let text: string;
  try {
    text = canonicalize(redactedValue(w, ev.args));
  } catch (e) {
    return { link: { by: 'none', reason: `The agent gave this result no call id, and its arguments could not be read to find its call: ${(e as Error).message}` } };
  }
  let digest: string | undefined;
  const sameArgs = (recordedArgs: unknown): boolean => {
    try {
      if (canonicalize(recordedArgs) === text) return true;
    } catch {
      return false;
    }
    const ref = (recordedArgs as { $artifact?: unknown } | null)?.$artifact;
    return typeof ref === 'string' && ref === (digest ??= createHash('sha256').update(text).digest('hex'));
  };
  const where = { resource: ev.server ?? ev.tool, action: ev.tool };
  const [calls, results] = await Promise.all([all({ kind: 'tool.call', ...where }), all({ kind: 'tool.result', ...where })]);
  const answered = new Set(results.map((e) => e.parent));
  const match = newest(
    calls.filter((e) => {
      const d = e.data as { tool?: unknown; server?: unknown; arguments?: unknown } | null;
      return d !== null && d.tool === ev.tool && d.server === ev.server && !answered.has(e.id) && sameArgs(d.arguments);
    }),
  );
  return match === undefined ? { link: { by: 'none', reason: NO_MATCH } } : { id: match.id, link: { by: 'arguments' } };
}

/** How deep a recorded value may nest (the ledger's canonical JSON refuses 200 levels, counted from `data`). */
const MAX_NESTING = 180;

/**
 * `value` (parsed from the agent's JSON) as the ledger can hold it, changing only what it cannot:
 * an integer beyond 2^53 or a number JSON.parse made infinite becomes `{ $number: "1e+20" }`, a
 * lone UTF-16 surrogate U+FFFD, nesting deeper than MAX_NESTING `{ $truncated: … }` (issue 16
 * review, H4: a call whose arguments the ledger refused went unrecorded, and under fail open ran).
 */
function representable(value: unknown, depth = 0): unknown {
  if (typeof value === 'number') return Number.isFinite(value) && (!Number.isInteger(value) || Number.isSafeInteger(value)) ? value : { $number: String(value) };
  if (typeof value === 'string') return wellFormed(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_NESTING) return { $truncated: `nested deeper than ${MAX_NESTING} levels` };
  if (Array.isArray(value)) return value.map((v) => representable(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[wellFormed(k)] = representable(v, depth + 1);
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const wellFormed = (t: string): string => (isWellFormedString(t) ? t : t.replace(LONE_SURROGATE, '\uFFFD'));

/** Above this a tool call's arguments or a tool's output go to the artifact store (the recorder's default spill size for outputs). */
const SPILL_BYTES = 256 * 1024;

interface Recordable {
  /** What goes into the event: the redacted value, or `{ $artifact, bytes, mime }` for a large one. */
  value: unknown;
  /** The redacted value itself (what an approval or a digest binds). */
  plain: unknown;
  artifact?: ArtifactRef;
}

/**
 * A tool's arguments or output as the ledger takes it: made representable, redacted, and stored as
 * a content-addressed artifact bound into the event when it is large, as the gateway spills large
 * tool outputs (review M3: a 1.2 MB Write was refused, a 1.2 MB output went unrecorded).
 */
async function recordable(w: Witness, value: unknown, role: string): Promise<Recordable> {
  const plain = redactedValue(w, value);
  const json = JSON.stringify(plain);
  if (json.length <= SPILL_BYTES / 3 || Buffer.byteLength(json) <= SPILL_BYTES) return { value: plain, plain };
  const artifact = await w.storeArtifact(Buffer.from(canonicalize(plain)), 'application/json', role);
  return { value: { $artifact: artifact.sha256, bytes: artifact.bytes, mime: artifact.mime }, plain, artifact };
}

/** `value` redacted as the ledger holds it, made representable first when it could not be taken as sent. */
function redactedValue(w: Witness, value: unknown): unknown {
  try {
    return w.redactData(value);
  } catch {
    return w.redactData(representable(value));
  }
}

const artifactsOf = (r: { artifact?: ArtifactRef | undefined }): { artifacts?: ArtifactRef[] } => (r.artifact === undefined ? {} : { artifacts: [r.artifact] });

/** How much of a text spilled to an artifact stays inline, so the note still reads as what it was. */
const TEXT_HEAD_CHARS = 4096;

/**
 * A prompt or a notice as a note's `text`: redacted and well formed, and over SPILL_BYTES stored
 * whole as an artifact (`text_artifact`) with its head inline, instead of a note the ledger refuses
 * (which under --fail closed would refuse the user's prompt).
 */
async function recordableText(w: Witness, text: string, role: string): Promise<{ data: { text: string; text_artifact?: unknown }; artifact?: ArtifactRef }> {
  const redacted = w.redactData(wellFormed(text)) as string;
  if (redacted.length <= SPILL_BYTES / 3 || Buffer.byteLength(redacted) <= SPILL_BYTES) return { data: { text: redacted } };
  const artifact = await w.storeArtifact(Buffer.from(redacted), 'text/plain; charset=utf-8', role);
  const head = wellFormed(redacted.slice(0, TEXT_HEAD_CHARS));
  return {
    data: { text: `${head}… [${artifact.bytes} bytes in all, in artifact ${artifact.sha256}]`, text_artifact: { $artifact: artifact.sha256, bytes: artifact.bytes, mime: artifact.mime } },
    artifact,
  };
}

async function toolBefore(
  w: Witness,
  o: HookRunOptions,
  s: Session,
  ev: ToolBefore,
  e: Evaluation | undefined,
  claims: Record<string, unknown>,
  progress: Progress,
  log: (line: string) => void,
): Promise<HookVerdict> {
  // The stop button outranks the policy and --fail, as at every gateway (issue 16 review 2, M-B): a
  // halted agent's call is refused with the halt's reason once that is known, whatever recording does.
  const halt = await haltOf(w, o.agent);
  if (halt !== undefined) progress.refusal = { decision: 'deny', reason: haltedReason(halt, ev.tool) };
  const callId = uuidv7();
  progress.callId = callId;
  const base = { resource: ev.server ?? ev.tool, action: ev.tool };
  const review = halt === undefined && e?.decision === 'review' && e.enforced;
  const args = await recordable(w, ev.args, 'tool.call.arguments');
  const call = s.record(
    'tool.call',
    { tool: ev.tool, ...(ev.server === undefined ? {} : { server: ev.server }), arguments: args.value, ...(review ? { requires_approval: true } : {}), client_claims: claims },
    { ...base, id: callId, outcome: 'pending', ...artifactsOf(args) },
  );
  // Recorded as the gateway records a halted agent's call (src/gateway/record.ts haltDecision): a deny
  // for reason `halted` naming the halt, instead of the policy's evaluation, which did not decide.
  const decision =
    halt !== undefined
      ? s.record(
          'policy.decision',
          { decision: 'deny', reason: 'halted', tool: ev.tool, ...digestFields(args.value), halt: { id: halt.id, actor: halt.actor, reason: halt.reason, ts: halt.ts } },
          { ...base, parent: callId, outcome: 'denied', policy: { decision: 'deny', reason_code: 'halted', mode: 'enforce' } },
        )
      : e === undefined
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
              ...digestFields(args.value),
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
  const [callReceipt, decisionReceipt] = await Promise.all([call, decision]);
  // Neither may be missing: a call run without its record, or a decision without its call, is what the review found (H3, H4).
  recorded(callReceipt, `tool.call of this ${ev.tool} call`);
  if (halt !== undefined || e !== undefined) recorded(decisionReceipt, `policy decision on this ${ev.tool} call`);
  if (progress.refusal !== undefined) {
    await refused(w, s, ev, callId, progress.refusal.reason, 'denied', 'halted');
    return progress.refusal;
  }
  if (o.policyProblem !== undefined) {
    recorded(
      await s.record('error', { message: `The hook's policy could not be loaded: ${o.policyProblem}`, code: 'policy_unavailable', source: 'gateway' }, { parent: callId, outcome: 'error' }),
      'policy error',
    );
    if (!o.failOpen) {
      const reason = `Witness refused this ${ev.tool} call because its policy could not be loaded (fail closed): ${o.policyProblem}`;
      await refused(w, s, ev, callId, reason, 'denied');
      return { decision: 'deny', reason };
    }
    return { decision: 'allow' };
  }
  if (e === undefined || !e.enforced || e.decision === 'allow') return { decision: 'allow' };
  if (e.decision === 'deny') {
    const reason = denyReason(e, ev.tool);
    await refused(w, s, ev, callId, reason, 'denied');
    return { decision: 'deny', reason };
  }
  return hold(w, o, s, ev, callId, e, args.value, log);
}

/**
 * The halt in force on `agent`, read by the rule every gateway obeys (approvals' haltState: its
 * latest halt a person recorded comes after its latest resume). A hook lives for one call, so it
 * reads once instead of keeping the gateway's HaltWatch. A state that cannot be read is a failure
 * (then --fail decides, as the gateway's fail-open setting does), never "not halted".
 */
async function haltOf(w: Witness, agent: string): Promise<HaltView | undefined> {
  try {
    const state = await haltState(w.reader, agent);
    return state.halted ? state.halt : undefined;
  } catch (e) {
    throw new Error(`whether agent ${agent} is halted could not be read: ${(e as Error).message}`, { cause: e });
  }
}

/** What the agent (and the model) reads when a halt refuses its call: who halted it, when, why, and how it is lifted. */
function haltedReason(halt: HaltView, tool: string): string {
  const why = halt.reason.replace(/[.!?\s]+$/, '');
  return `Agent ${halt.agent} was halted by ${halt.actor} at ${halt.ts} (${why}), so this ${tool} call was refused; a person lifts the halt with \`witness resume --agent ${halt.agent}\`.`;
}

/** Closes a call the agent will not make with a tool.result saying why (`code`: the error code, the outcome unless given). */
async function refused(w: Witness, s: Session, ev: ToolBefore, callId: string, reason: string, outcome: Outcome, code: string = outcome): Promise<void> {
  recorded(
    await s.record(
      'tool.result',
      { tool: ev.tool, ...(ev.server === undefined ? {} : { server: ev.server }), is_error: true, error: { message: reason, code }, duration_ms: 0 },
      { resource: ev.server ?? ev.tool, action: ev.tool, parent: callId, outcome },
    ),
    'refusal',
  );
  await w.flush();
}

/** The salted digest of the arguments as recorded (already redacted, representable, or the artifact that holds them). */
function digestFields(recordedArgs: unknown): Record<string, string> {
  try {
    const salt = newArgumentsSalt();
    return { arguments_salt: salt, arguments_digest: argumentsDigest(salt, recordedArgs) };
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
async function hold(w: Witness, o: HookRunOptions, s: Session, ev: ToolBefore, callId: string, e: Evaluation, redacted: unknown, log: (line: string) => void): Promise<HookVerdict> {
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
  /** Set when a halt placed while the call waited refuses it: its tool.result then says `halted`. */
  let haltedWhileHeld = false;
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
      // A halt placed while the call waited stops it too, before the release would use up the grant (as the gateway's approval desk asks `stopped`).
      const halt = await haltOf(w, o.agent);
      if (halt !== undefined) {
        haltedWhileHeld = true;
        return { decision: 'deny', reason: haltedReason(halt, ev.tool) };
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
      if (verdict.decision === 'deny') await refused(w, s, ev, callId, verdict.reason, 'denied', haltedWhileHeld ? 'halted' : 'denied');
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
