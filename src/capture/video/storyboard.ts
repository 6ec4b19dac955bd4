import { approvalRequestParts, decisionProblem, isApprovalRecord, isKind, listedApprovers, textField as str, type DecisionProblemCode, type StoredEvent } from '../../core/index.js';

/**
 * A session turned into the steps of a video, from its events alone (so the same session always
 * makes the same video): one step per tool call, with the reasoning that preceded it, the policy
 * decision, the approval, the before and after screenshots and the result. The narration is plain
 * generated text; nothing is invented beyond what the events say.
 *
 * Anyone who can write the ledger can append an approval.decision naming anyone, so the approver
 * shown is the one whose decision counted (see `judgeApproval`), never merely the first recorded.
 */

export interface Step {
  /** 0 for the overview, then 1… for each tool call, then the summary. */
  index: number;
  kind: 'overview' | 'call' | 'summary';
  chapter: string;
  /** Lines of the title card: a heading, then label/value rows. */
  heading: string;
  rows: Array<[string, string]>;
  /** The tone of the card's badge: allowed, denied, review, error. */
  tone: 'neutral' | 'ok' | 'denied' | 'review' | 'error';
  narration: string;
  before?: string | undefined;
  after?: string | undefined;
  callId?: string;
}

export interface Storyboard {
  session: string;
  agent: string;
  steps: Step[];
}

type Ev = StoredEvent;
type Request = StoredEvent<'approval.request'>;
type Decision = StoredEvent<'approval.decision'>;

/** `customer_id C-1042, amount 650`: the first few scalar arguments, for a person to read or hear. */
export function summariseArgs(args: unknown, max = 4): string {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return args === undefined ? '' : clip(JSON.stringify(args), 80);
  const parts: string[] = [];
  for (const [k, v] of Object.entries(args)) {
    if (parts.length >= max) break;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') parts.push(`${k} ${clip(String(v), 40)}`);
  }
  return parts.join(', ');
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** The first sentence or two of a model's output: the "why" of the next call. */
function reasoningOf(llm: StoredEvent<'llm.call'> | undefined): string | undefined {
  if (llm === undefined) return undefined;
  const out = llm.data?.output;
  let text: string | undefined;
  if (typeof out === 'string') text = out;
  else if (out !== null && typeof out === 'object') {
    const content = (out as { content?: unknown }).content;
    if (typeof content === 'string') text = content;
    else if (Array.isArray(content)) text = content.map((c) => str((c as { text?: unknown })?.text) ?? '').join(' ');
    else text = str((out as { text?: unknown }).text);
  }
  if (text === undefined || text.trim() === '') return undefined;
  const sentences = text
    .replace(/\s+/g, ' ')
    .trim()
    .match(/[^.!?]+[.!?]?/g) ?? [text];
  return clip(sentences.slice(0, 2).join('').trim(), 240);
}

function resultSentence(result: StoredEvent<'tool.result'> | undefined): { text: string; tone: Step['tone']; row: string } {
  if (result === undefined) return { text: 'No result was recorded for this call.', tone: 'error', row: 'no result recorded' };
  const d = result.data;
  // Refused (by the policy, a person, or a binding that failed) or expired undecided: never made.
  if (result.outcome === 'denied' || result.outcome === 'expired') return { text: 'The call was not made.', tone: 'denied', row: 'not made' };
  if (d?.is_error === true) {
    const e: unknown = d.error;
    const msg = str(e !== null && typeof e === 'object' ? (e as { message?: unknown }).message : undefined) ?? textOf(d.output) ?? 'an error';
    return { text: `The call failed: ${clip(msg, 160)}`, tone: 'error', row: `failed: ${clip(msg, 80)}` };
  }
  const t = textOf(d?.output);
  return { text: t === undefined ? 'The call succeeded.' : `The call succeeded: ${clip(t, 160)}`, tone: 'ok', row: t === undefined ? 'succeeded' : clip(t, 90) };
}

function textOf(output: unknown): string | undefined {
  if (typeof output === 'string') return output;
  if (output === null || typeof output !== 'object') return output === undefined ? undefined : JSON.stringify(output);
  const content = (output as { content?: unknown }).content;
  if (Array.isArray(content)) {
    const t = content
      .map((c) => str((c as { text?: unknown })?.text))
      .filter((x): x is string => x !== undefined)
      .join(' ');
    // Many tools answer with JSON as text: read it as values, not as braces and quotes.
    if (/^\s*[{[]/.test(t)) {
      try {
        return textOf(JSON.parse(t) as unknown);
      } catch {
        // Not JSON after all: fall through to the text.
      }
    }
    if (t !== '') return t.replace(/\s+/g, ' ');
  }
  // Spoken and shown as "refund_id R-1, status succeeded", never as braces and quotes.
  const summary = summariseArgs(output, 5);
  return summary === '' ? clip(JSON.stringify(output), 200) : summary;
}

function sentence(s: string): string {
  const t = s.trim();
  return /[.!?…]$/.test(t) ? t : `${t}.`;
}

/** Why a recorded decision did not count, as a short label for the card and a clause for the narration. */
type IgnoredWhy = DecisionProblemCode | 'late' | 'not_acted_on';

const IGNORED_LABEL: Record<IgnoredWhy, string> = {
  approval_forged: 'no valid signature',
  approver_not_allowed: 'approver not allowed',
  approval_mismatch: 'does not match the request',
  late: 'came after the decision that counted',
  not_acted_on: 'not the decision the gateway acted on',
};

const IGNORED_CLAUSE: Record<IgnoredWhy, string> = {
  approval_forged: 'it carries no valid signature by the approver it names',
  approver_not_allowed: 'its signer is not an approver the request lists, or is the agent itself',
  approval_mismatch: 'it does not match the request it names',
  late: 'it came after the decision that counted',
  not_acted_on: 'it is not the decision the gateway acted on',
};

const GATEWAY_CODES: ReadonlySet<string> = new Set(['approval_forged', 'approver_not_allowed', 'approval_mismatch']);

/** The decision that counted for an approval request: who, what, and why. */
interface Counted {
  who: string;
  verdict: 'approved' | 'denied' | 'expired';
  reason: string | undefined;
  /** Set when the approval was granted to an earlier identical call (a retry the gateway released on it). */
  earlierRequest?: string;
}

interface Judged {
  counted: Counted | undefined;
  /** Every other decision recorded for the request, with the name it claims, in ledger order. */
  ignored: Array<{ claimed: string; why: IgnoredWhy }>;
}

/**
 * Why a decision would not count, judged from the events alone (core's `decisionProblem`, the
 * gateway's own judgement) against the keys the request lists, or undefined when it would. The
 * ledger origin a decision also binds is not in the events; the gateway checks it, and records a
 * decision that fails it as an error (which `rejected` below then holds).
 */
function problemOf(request: Request, d: Decision): IgnoredWhy | undefined {
  return decisionProblem(approvalRequestParts(request), d, listedApprovers(request), undefined)?.code;
}

function approvalRef(e: StoredEvent<'policy.decision'>): { request_id?: unknown; decision_id?: unknown; approver?: unknown } | undefined {
  const a: unknown = e.data?.approval;
  return a !== null && typeof a === 'object' && !Array.isArray(a) ? (a as { request_id?: unknown; decision_id?: unknown; approver?: unknown }) : undefined;
}

/**
 * The decision that counted for a call's approval, as the gateway acted on it:
 *   1. the decision its release names (`policy.decision` allow, `data.approval.decision_id`);
 *   2. else the first decision the gateway did not reject (no `error` event naming it with
 *      `approval_forged`, `approver_not_allowed` or `approval_mismatch`) that also passes the checks
 *      the events can answer (`problemOf`): a denial, or the gateway's own expiry.
 * Every other decision is reported as ignored, with the name it claims, never as the approver.
 */
function judgeApproval(request: Request | undefined, decisions: readonly Decision[], release: StoredEvent<'policy.decision'> | undefined, rejected: ReadonlyMap<string, IgnoredWhy>): Judged {
  const ref = release === undefined ? undefined : approvalRef(release);
  const releasedBy = str(ref?.decision_id);
  let countedAt = releasedBy === undefined ? -1 : decisions.findIndex((d) => d.id === releasedBy);
  if (releasedBy === undefined) countedAt = decisions.findIndex((d) => !rejected.has(d.id) && (request === undefined || problemOf(request, d) === undefined));
  const ignored = decisions
    .map((d, i) => ({ d, i }))
    .filter(({ i }) => i !== countedAt)
    .map(({ d, i }) => {
      const why: IgnoredWhy = rejected.get(d.id) ?? (request === undefined ? undefined : problemOf(request, d)) ?? (countedAt !== -1 && i > countedAt ? 'late' : 'not_acted_on');
      return { claimed: str(d.data?.approver) ?? 'nobody', why };
    });
  const d = countedAt === -1 ? undefined : decisions[countedAt];
  if (d !== undefined) {
    const verdict = d.data?.decision;
    return {
      counted: {
        who: str(d.data?.approver) ?? 'someone',
        verdict: verdict === 'approved' || verdict === 'denied' ? verdict : 'expired',
        reason: verdict === 'expired' ? undefined : str(d.data?.reason),
      },
      ignored,
    };
  }
  if (release !== undefined && releasedBy !== undefined) {
    // Released on a decision recorded elsewhere (the approvals stream, after a gateway restart):
    // the release itself names the approver the gateway checked.
    const reason = release.approvals?.[0]?.reason;
    const earlier = request === undefined ? str(ref?.request_id) : undefined;
    return { counted: { who: str(ref?.approver) ?? 'someone', verdict: 'approved', reason, ...(earlier === undefined ? {} : { earlierRequest: earlier }) }, ignored };
  }
  return { counted: undefined, ignored };
}

/** `alice@corp`, `alice@corp and bob@corp`, `a, b, c and 2 more`: the distinct names claimed. */
function claimedNames(ignored: Judged['ignored'], joiner: 'and' | ','): string {
  const names = [...new Set(ignored.map((x) => clip(x.claimed, 40)))];
  const shown = names.slice(0, 3);
  const more = names.length - shown.length;
  if (joiner === ',') return `${shown.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
  if (more > 0) return `${shown.join(', ')} and ${more} more`;
  return shown.length <= 1 ? (shown[0] ?? '') : `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]!}`;
}

export function buildStoryboard(events: readonly Ev[]): Storyboard {
  const ordered = [...events].sort((a, b) => a.seq - b.seq);
  const start = ordered.find((e) => isKind(e, 'session.start'));
  const end = ordered.find((e) => isKind(e, 'session.end'));
  const agent = start?.agent.id ?? ordered[0]?.agent.id ?? 'unknown';
  const session = ordered[0]?.stream ?? '';
  const byParent = new Map<string, Ev[]>();
  for (const e of ordered) {
    if (e.parent === undefined) continue;
    const list = byParent.get(e.parent) ?? [];
    list.push(e);
    byParent.set(e.parent, list);
  }
  const calls = ordered.filter((e) => isKind(e, 'tool.call'));
  // The model output a call may be explained by: the last llm.call before it, when no other call
  // came between them. Found in one pass, not by a scan of every event per call (3,000 calls: 3.3 s).
  const reasoningBefore = new Map<string, StoredEvent<'llm.call'>>();
  let lastLlm: StoredEvent<'llm.call'> | undefined;
  for (const e of ordered) {
    if (isKind(e, 'llm.call')) lastLlm = e;
    else if (isKind(e, 'tool.call')) {
      if (lastLlm !== undefined && lastLlm.seq < e.seq) reasoningBefore.set(e.id, lastLlm);
      lastLlm = undefined;
    }
  }
  // Decisions the gateway rejected (it records each once, naming it) never count.
  const rejected = new Map<string, IgnoredWhy>();
  for (const e of ordered) {
    if (!isKind(e, 'error')) continue;
    const code: unknown = e.data?.code;
    const id = str(e.data?.decision_id);
    if (id !== undefined && typeof code === 'string' && GATEWAY_CODES.has(code) && !rejected.has(id)) rejected.set(id, code as IgnoredWhy);
  }
  const steps: Step[] = [];
  // A gateway session's purpose is the gateway's own ("MCP stdio proxy for …"), not the agent's task.
  const labels: Record<string, unknown> = start?.data?.labels ?? {};
  const viaGateway = start?.recorder?.kind === 'gateway';
  const server = str(labels['server']);
  const purpose = viaGateway ? undefined : str(start?.data?.purpose);
  const intro = viaGateway
    ? `This is the session of agent ${agent}, recorded by the Witness MCP gateway${server === undefined ? '' : ` in front of the ${server} server`}, independently of the agent's own code.`
    : `This is the recorded session of agent ${agent}${purpose === undefined ? '.' : `, whose task was: ${sentence(purpose)}`}`;
  steps.push({
    index: 0,
    kind: 'overview',
    chapter: 'Overview',
    heading: `Session of ${agent}`,
    rows: [
      ['Session', session],
      ['Agent', agent],
      ...(purpose === undefined ? [] : ([['Purpose', purpose]] as Array<[string, string]>)),
      ...(viaGateway ? ([['Recorded by', `MCP gateway (${str(labels['transport']) ?? 'stdio'})${server === undefined ? '' : ` for ${server}`}`]] as Array<[string, string]>) : []),
      ['Started', start?.ts ?? ordered[0]?.ts ?? ''],
      ['Steps', String(calls.length)],
    ],
    tone: 'neutral',
    narration: `${intro} It made ${calls.length} tool call${calls.length === 1 ? '' : 's'}.`,
  });

  let n = 0;
  for (const call of calls) {
    n += 1;
    const d = call.data;
    const tool = str(d?.tool) ?? call.action ?? 'a tool';
    const callArgs: unknown = d?.arguments;
    const args = summariseArgs(omit(callArgs, ['reason', 'justification']));
    const children = byParent.get(call.id) ?? [];
    const decisions = children.filter((e) => isKind(e, 'policy.decision'));
    // Only the gateway records a request (core's isApprovalRecord, as the session page and the
    // approvals queue read them): one any other recorder wrote held nothing, and it lists its own
    // approvers, so a decision signed by a key the agent holds would be told as a person's approval.
    const request = children.find((e): e is Request => isKind(e, 'approval.request') && isApprovalRecord(e));
    // Only the gateway releases a held call: a policy.decision naming an approval that anything else
    // recorded (an SDK, an agent's key through the server) is a claim, never told as an approval.
    const release = decisions.find((e) => e.recorder?.kind === 'gateway' && approvalRef(e)?.decision_id !== undefined && (request === undefined || approvalRef(e)?.request_id === request.id));
    const judged =
      request === undefined && release === undefined
        ? undefined
        : judgeApproval(request, request === undefined ? [] : (byParent.get(request.id) ?? []).filter((e) => isKind(e, 'approval.decision')), release, rejected);
    const approval = judged?.counted;
    const result = children.find((e) => isKind(e, 'tool.result'));
    const captures = children.filter((e) => isKind(e, 'capture'));
    const before = captures.find((e) => e.data?.role === 'before');
    const after = captures.find((e) => e.data?.role === 'after');
    // The model's reasoning just before the call when it was recorded (SDK); through a gateway,
    // the reason the agent gave in the call's own arguments.
    const argsObj = callArgs !== null && typeof callArgs === 'object' ? (callArgs as Record<string, unknown>) : {};
    const stated = str(argsObj['reason']) ?? str(argsObj['justification']);
    const why = reasoningOf(reasoningBefore.get(call.id)) ?? (stated === undefined ? undefined : clip(stated, 240));

    const first = decisions[0];
    const rule = str(first?.data?.rule) ?? first?.policy?.rule;
    const decision = first?.policy?.decision ?? str(first?.data?.decision);
    const reason = str(first?.data?.reason);
    let policyText: string | undefined;
    let policyRow: string | undefined;
    let tone: Step['tone'] = 'neutral';
    const ruleName = rule === undefined ? 'the policy default' : `policy rule ${rule}`;
    if (decision === 'allow') {
      policyText = `${ruleName} allowed it.`;
      policyRow = `allowed (${rule ?? 'default'})`;
    } else if (decision === 'deny') {
      policyText = `${ruleName} denied it${reason === undefined ? '.' : `: ${sentence(reason)}`}`;
      policyRow = `denied (${rule ?? 'default'})`;
      tone = 'denied';
    } else if (decision === 'review') {
      policyText = `${ruleName} required human review${reason === undefined ? '.' : `: ${sentence(reason)}`}`;
      policyRow = `review (${rule ?? 'default'})`;
      tone = 'review';
    }
    let approvalText: string | undefined;
    let approvalRow: string | undefined;
    if (approval !== undefined) {
      const { who, verdict, reason: why2 } = approval;
      const earlier = approval.earlierRequest === undefined ? '' : ` (approval request ${approval.earlierRequest}, given for an identical earlier call)`;
      if (verdict === 'approved') approvalText = `${who} approved it${earlier}${why2 === undefined ? '.' : `: ${sentence(why2)}`}`;
      else if (verdict === 'denied') approvalText = `${who} denied it${why2 === undefined ? '.' : `: ${sentence(why2)}`}`;
      else approvalText = 'Nobody decided before the request expired.';
      approvalRow = verdict === 'expired' ? 'expired undecided' : `${verdict} by ${who}${why2 === undefined ? '' : ` — ${clip(why2, 60)}`}`;
    } else if (request !== undefined) {
      approvalText = judged !== undefined && judged.ignored.length > 0 ? 'No decision that counts was recorded for the approval request.' : 'The approval request was never decided.';
      approvalRow = judged !== undefined && judged.ignored.length > 0 ? 'no decision that counts' : 'pending';
    }
    // Decisions that did not count are told as such, with the name they claim, never as the approver.
    const ignored = judged?.ignored ?? [];
    let ignoredText: string | undefined;
    let ignoredRow: string | undefined;
    if (ignored.length > 0) {
      ignoredText =
        ignored.length === 1
          ? `Witness ignored a decision that claimed to come from ${claimedNames(ignored, 'and')}: ${IGNORED_CLAUSE[ignored[0]!.why]}.`
          : `Witness ignored ${ignored.length} decisions that did not count, claimed by ${claimedNames(ignored, 'and')}.`;
      const whys = [...new Set(ignored.map((x) => IGNORED_LABEL[x.why]))].join(', ');
      ignoredRow = `${ignored.length} decision${ignored.length === 1 ? '' : 's'} (claimed by ${claimedNames(ignored, ',')}: ${whys})`;
    }
    const res = resultSentence(result);
    if (tone === 'neutral' || tone === 'review') tone = res.tone === 'ok' && tone === 'review' ? 'ok' : res.tone;
    if (decision === 'deny' || approval?.verdict === 'denied' || approval?.verdict === 'expired') tone = 'denied';
    const shots =
      before !== undefined || after !== undefined
        ? ` The screen ${before !== undefined && after !== undefined ? 'before and after' : before !== undefined ? 'before' : 'after'} the call follows.`
        : '';
    const narration = [
      `Step ${n}.`,
      why === undefined ? undefined : `The agent reasoned: ${sentence(why)}`,
      `It called ${tool}${args === '' ? '' : ` with ${args}`}.`,
      policyText === undefined ? undefined : sentence(policyText.charAt(0).toUpperCase() + policyText.slice(1)),
      ignoredText,
      approvalText,
      res.text === '' ? undefined : sentence(res.text),
    ]
      .filter((x): x is string => x !== undefined)
      .join(' ')
      .concat(shots);
    steps.push({
      index: n,
      kind: 'call',
      chapter: `Step ${n}: ${tool}`,
      heading: `Step ${n} · ${tool}`,
      rows: [
        ...(why === undefined ? [] : ([['Why', why]] as Array<[string, string]>)),
        ['Arguments', args === '' ? '(none)' : args],
        ...(policyRow === undefined ? [] : ([['Policy', policyRow]] as Array<[string, string]>)),
        ...(approvalRow === undefined ? [] : ([['Approval', approvalRow]] as Array<[string, string]>)),
        ...(ignoredRow === undefined ? [] : ([['Ignored', ignoredRow]] as Array<[string, string]>)),
        ['Result', res.row],
        ['Time', call.ts],
      ],
      tone,
      narration,
      before: before?.artifacts?.find((a) => a.mime === 'image/png')?.sha256,
      after: after?.artifacts?.find((a) => a.mime === 'image/png')?.sha256,
      callId: call.id,
    });
  }

  const denied = steps.filter((s) => s.tone === 'denied').length;
  const failed = steps.filter((s) => s.tone === 'error').length;
  const reasonEnd = str(end?.data?.reason);
  steps.push({
    index: n + 1,
    kind: 'summary',
    chapter: 'Summary',
    heading: 'Summary',
    rows: [
      ['Tool calls', String(calls.length)],
      ['Refused', String(denied)],
      ['Failed', String(failed)],
      ['Ended', end === undefined ? 'still open' : `${end.ts} (${reasonEnd ?? 'completed'})`],
      ['Events', String(ordered.length)],
    ],
    tone: 'neutral',
    narration: `In all, ${calls.length} tool call${calls.length === 1 ? ' was' : 's were'} recorded; ${denied} ${denied === 1 ? 'was' : 'were'} refused and ${failed} failed. ${end === undefined ? 'The session is still open.' : `The session ended: ${reasonEnd ?? 'completed'}.`} Every step is in the signed, hash-chained ledger.`,
  });
  return { session, agent, steps };
}

function omit(v: unknown, keys: readonly string[]): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).filter(([k]) => !keys.includes(k)));
}
