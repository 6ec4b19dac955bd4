import { z } from 'zod';
import { scanForInjection } from './injection.js';

/**
 * Anomaly rules over what agents do, learned from each agent's own history as the monitor reads
 * the ledger in order. A flag is an `anomaly` event with the rule's id and a reason; nothing is
 * blocked. All state is plain data (saved in the monitor's state file), so a restarted monitor
 * continues where it stopped instead of learning again or flagging twice.
 */

/** One event as the rules read it: header fields, and the payload (null when purged or unreadable). */
export interface ObservedEvent {
  pos: number;
  id: string;
  stream: string;
  ts: string;
  kind: string;
  agent: string;
  outcome: string | undefined;
  data: Record<string, unknown> | null;
  /** The header's recorder kind (sdk, gateway, server, otlp, cli) and principal id, when stamped. */
  recorder?: string;
  principal?: string;
}

export interface AnomalyFlag {
  rule: string;
  reason: string;
  agent: string;
  target_event: string;
  /** What the reason rests on, for a reader and a webhook: counts, the matched text. */
  evidence?: Record<string, unknown>;
}

export const BehaviourConfig = z.strictObject({
  /** behaviour.new-tool: an agent's first call of a tool, once it has made this many calls. */
  newToolAfter: z.number().int().min(0).default(20),
  /** behaviour.burst: more than `burstCalls` tool calls by one agent within `burstWindowMs`. */
  burstCalls: z.number().int().min(1).default(30),
  burstWindowMs: z.number().int().min(1).default(60_000),
  /** behaviour.denial-streak: this many refused calls in a row by one agent. */
  denialStreak: z.number().int().min(1).default(5),
  /** behaviour.off-hours: learned once the agent has this many calls over at least `hoursMinDays` days. */
  hoursMinCalls: z.number().int().min(1).default(50),
  hoursMinDays: z.number().int().min(1).default(3),
});
export type BehaviourConfig = z.infer<typeof BehaviourConfig>;

const AgentState = z.object({
  calls: z.number().int(),
  tools: z.array(z.string()),
  recent: z.array(z.number()),
  bursting: z.boolean(),
  denials: z.number().int(),
  hours: z.array(z.number().int()).length(24),
  days: z.number().int(),
  lastDay: z.string(),
  offHoursFlagged: z.string(),
});
type AgentState = z.infer<typeof AgentState>;
export const BehaviourState = z.record(z.string(), AgentState);
export type BehaviourState = z.infer<typeof BehaviourState>;

/** Tools remembered per agent at most: an agent inventing tool names must not grow the state without end. */
const MAX_TOOLS = 10_000;

export const BEHAVIOUR_RULES = [
  { id: 'behaviour.new-tool', description: 'An agent called a tool (or MCP method) it never called before, after at least 20 calls of history (--new-tool-after).' },
  { id: 'behaviour.burst', description: 'An agent made more than 30 tool calls within 60 s (--burst 30/60s); flagged once per burst, again only after its rate fell back.' },
  { id: 'behaviour.denial-streak', description: '5 calls in a row refused by policy (--denial-streak); a call let through ends the streak; refusals of a halted agent do not count.' },
  {
    id: 'behaviour.off-hours',
    description:
      'A call in a UTC hour where the agent never made a call within an hour either side, once it has 50 calls over 3 days (learned from its own history); at most one flag per agent per clock hour, and flagged calls are not learned as usual.',
  },
] as const;

export class BehaviourRules {
  constructor(
    private readonly config: BehaviourConfig,
    readonly state: BehaviourState = {},
  ) {}

  /** The flags `e` raises (none while `learnOnly`), after learning from it. */
  observe(e: ObservedEvent, learnOnly = false): AnomalyFlag[] {
    const flags: AnomalyFlag[] = [];
    const flag = (rule: string, reason: string, evidence?: Record<string, unknown>) => {
      if (!learnOnly) flags.push({ rule, reason, agent: e.agent, target_event: e.id, ...(evidence === undefined ? {} : { evidence }) });
    };
    if (e.kind === 'tool.result' || e.kind === 'capture') {
      const content = e.kind === 'tool.result' ? e.data?.['output'] : e.data?.['text'];
      const where = e.kind === 'tool.result' ? `the result of ${toolName(e) ?? 'a tool'}` : `the page text captured from ${typeof e.data?.['url'] === 'string' ? e.data['url'] : 'a page'}`;
      for (const hit of scanForInjection(content)) flag(hit.rule, `Prompt-injection indicator in ${where}: ${hit.excerpt}`, { excerpt: hit.excerpt });
    }
    const s = this.agent(e.agent);
    // A halted agent's calls are refused by the stop button, not the policy: the halt already alerts.
    if (e.kind === 'policy.decision' && e.data?.['reason'] !== 'halted') {
      if (e.outcome === 'denied') {
        s.denials++;
        if (s.denials === this.config.denialStreak) flag('behaviour.denial-streak', `${s.denials} calls by ${e.agent} in a row were refused by policy.`, { streak: s.denials });
      } else if (e.outcome === 'success') s.denials = 0;
    } else if (e.kind === 'tool.result' && e.outcome === 'success') s.denials = 0;
    if (e.kind !== 'tool.call') return flags;

    const tool = toolName(e) ?? '(unnamed)';
    const at = Date.parse(e.ts);
    if (!s.tools.includes(tool)) {
      if (s.calls >= this.config.newToolAfter) flag('behaviour.new-tool', `${e.agent} called ${tool} for the first time, after ${s.calls} calls of other tools.`, { tool, calls: s.calls });
      if (s.tools.length < MAX_TOOLS) s.tools.push(tool);
    }
    // Burst: the call times within the window (at most burstCalls + 1 are kept).
    s.recent = s.recent.filter((t) => t > at - this.config.burstWindowMs);
    s.recent.push(at);
    if (s.recent.length > this.config.burstCalls + 1) s.recent.shift();
    if (s.recent.length > this.config.burstCalls) {
      if (!s.bursting)
        flag('behaviour.burst', `${e.agent} made more than ${this.config.burstCalls} tool calls within ${Math.round(this.config.burstWindowMs / 1000)} s.`, {
          calls: s.recent.length,
          window_ms: this.config.burstWindowMs,
        });
      s.bursting = true;
    } else s.bursting = false;
    // Usual hours: a histogram of calls by UTC hour, consulted once there is enough of it.
    const hour = new Date(at).getUTCHours();
    const day = e.ts.slice(0, 10);
    const learned = s.calls >= this.config.hoursMinCalls && s.days >= this.config.hoursMinDays;
    const near = s.hours[(hour + 23) % 24]! + s.hours[hour]! + s.hours[(hour + 1) % 24]!;
    let offHours = false;
    if (learned && near === 0 && Number.isFinite(at)) {
      offHours = true;
      const bucket = e.ts.slice(0, 13);
      if (s.offHoursFlagged !== bucket) {
        s.offHoursFlagged = bucket;
        flag(
          'behaviour.off-hours',
          `${e.agent} made a call at ${e.ts.slice(11, 16)} UTC; in ${s.calls} earlier calls it was never active between ${pad((hour + 23) % 24)}:00 and ${pad((hour + 2) % 24)}:00 UTC.`,
          {
            hour,
            calls: s.calls,
          },
        );
      }
    }
    if (!offHours && Number.isFinite(at)) s.hours[hour]!++;
    if (day !== s.lastDay) {
      s.lastDay = day;
      s.days++;
    }
    s.calls++;
    return flags;
  }

  private agent(id: string): AgentState {
    let s = this.state[id];
    if (s === undefined) {
      s = { calls: 0, tools: [], recent: [], bursting: false, denials: 0, hours: new Array<number>(24).fill(0), days: 0, lastDay: '', offHoursFlagged: '' };
      this.state[id] = s;
    }
    return s;
  }
}

/** The tool a call or result names; an MCP request other than tools/call by its method. */
function toolName(e: ObservedEvent): string | undefined {
  const tool = e.data?.['tool'];
  const method = e.data?.['method'];
  if (typeof tool === 'string' && tool !== '') return typeof method === 'string' && method !== '' && method !== 'tools/call' ? `${method} ${tool}` : tool;
  return typeof method === 'string' ? method : undefined;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
