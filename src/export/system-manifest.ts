import type { BundleMode } from './bundle-format.js';

/**
 * system.json: what made up the system whose events a bundle holds, gathered from its in-scope
 * events as they pass (docs/FORMAT.md "system.json"). Header facts (agents and their versions,
 * policy versions) are always given; facts read from payloads (models asked for and answering,
 * system-prompt and tool-definition hashes) only in mode `full`, since a withheld bundle carries
 * no payload to check them against.
 */
export interface SystemManifest {
  format: 'witness-system/1';
  derived_from: string;
  agents: Record<string, string[]>;
  models: { requested: string[]; answering: string[] } | null;
  system_prompts: string[] | null;
  tool_definitions: string[] | null;
  policies: Array<{ version: string; first_leaf: number; last_leaf: number; events: number }>;
  recorders: string[];
}

interface EventFacts {
  kind: string;
  agent: { id: string; version?: string };
  policy?: { version?: string };
  recorder?: { kind: string; version?: string };
  data?: unknown;
}

export class SystemFacts {
  private readonly agents = new Map<string, Set<string>>();
  private readonly requested = new Set<string>();
  private readonly answering = new Set<string>();
  private readonly prompts = new Set<string>();
  private readonly tools = new Set<string>();
  private readonly policies = new Map<string, { first_leaf: number; last_leaf: number; events: number }>();
  private readonly recorders = new Set<string>();

  constructor(private readonly mode: BundleMode) {}

  add(leaf: number, e: EventFacts): void {
    let versions = this.agents.get(e.agent.id);
    if (versions === undefined) this.agents.set(e.agent.id, (versions = new Set()));
    if (e.agent.version !== undefined) versions.add(e.agent.version);
    if (e.recorder !== undefined) this.recorders.add(e.recorder.version === undefined ? e.recorder.kind : `${e.recorder.kind} ${e.recorder.version}`);
    const pv = e.policy?.version;
    if (pv !== undefined) {
      const p = this.policies.get(pv);
      if (p === undefined) this.policies.set(pv, { first_leaf: leaf, last_leaf: leaf, events: 1 });
      else {
        p.last_leaf = leaf;
        p.events++;
      }
    }
    if (e.kind === 'llm.call' && typeof e.data === 'object' && e.data !== null) {
      const d = e.data as Record<string, unknown>;
      const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
      const add = (set: Set<string>, v: string | undefined) => v !== undefined && set.add(v);
      add(this.requested, str('model'));
      add(this.answering, str('response_model'));
      add(this.prompts, str('system_prompt_sha256'));
      add(this.tools, str('tool_definitions_sha256'));
      const av = str('agent_version');
      if (av !== undefined) versions.add(av);
    }
  }

  result(): SystemManifest {
    const sorted = (s: Set<string>) => [...s].sort();
    const full = this.mode === 'full';
    return {
      format: 'witness-system/1',
      derived_from: full
        ? 'the in-scope events of the span: agents, recorders and policy versions from their headers; models, system-prompt and tool-definition hashes from llm.call payloads'
        : 'the in-scope events of the span, headers only (payloads are withheld, so models and prompt and tool-definition hashes are not given)',
      agents: Object.fromEntries([...this.agents.keys()].sort().map((id) => [id, sorted(this.agents.get(id)!)])),
      models: full ? { requested: sorted(this.requested), answering: sorted(this.answering) } : null,
      system_prompts: full ? sorted(this.prompts) : null,
      tool_definitions: full ? sorted(this.tools) : null,
      policies: [...this.policies].map(([version, p]) => ({ version, ...p })).sort((a, b) => a.first_leaf - b.first_leaf),
      recorders: sorted(this.recorders),
    };
  }
}
