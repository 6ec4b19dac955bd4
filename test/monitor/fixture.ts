import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { openLedger, type AppendRequest, type Ledger } from '../../src/store/index.js';

/**
 * Events as the MCP gateway records them (a session per agent run; each call a tool.call, its
 * policy.decision when refused, and its tool.result), appended with the times given, so a test
 * can lay down days of history in a real SQLite ledger.
 */
export class Agent {
  readonly stream = `s-${randomUUID()}`;
  private started = false;
  constructor(
    private readonly ledger: Ledger,
    readonly id: string,
  ) {}

  private base(ts: string): Pick<AppendRequest, 'stream' | 'agent' | 'ts' | 'recorder'> {
    return { stream: this.stream, agent: { id: this.id }, ts, recorder: { kind: 'gateway' } };
  }

  private async put(events: AppendRequest[]): Promise<string[]> {
    if (!this.started) {
      this.started = true;
      events.unshift({ ...this.base(events[0]!.ts!), kind: 'session.start', data: {} });
      return (await this.ledger.append(events)).slice(1).map((r) => r.id);
    }
    return (await this.ledger.append(events)).map((r) => r.id);
  }

  /** A call let through, and its result. Returns the ids [call, result]. */
  async call(tool: string, ts: string, output: unknown = { content: [{ type: 'text', text: 'ok' }] }): Promise<string[]> {
    return this.put([
      { ...this.base(ts), kind: 'tool.call', resource: tool.split('.')[0], action: tool, data: { tool, arguments: { id: 'A-1042' } } },
      { ...this.base(ts), kind: 'tool.result', outcome: 'success', resource: tool.split('.')[0], action: tool, data: { tool, output, is_error: false } },
    ]);
  }

  /** A call refused by policy: the call and the gateway's policy.decision. */
  async denied(tool: string, ts: string): Promise<string[]> {
    return this.put([
      { ...this.base(ts), kind: 'tool.call', outcome: 'denied', action: tool, data: { tool, arguments: {} } },
      { ...this.base(ts), kind: 'policy.decision', outcome: 'denied', action: tool, data: { decision: 'deny', rule: 'no-deletes', tool } },
    ]);
  }

  async allowed(tool: string, ts: string): Promise<string[]> {
    return this.put([{ ...this.base(ts), kind: 'policy.decision', outcome: 'success', action: tool, data: { decision: 'allow', rule: 'reads', tool } }]);
  }

  async captured(url: string, text: string, ts: string): Promise<string[]> {
    return this.put([{ ...this.base(ts), kind: 'capture', resource: url, data: { role: 'after', url, text } }]);
  }

  async record(kind: AppendRequest['kind'], data: Record<string, unknown>, ts: string, extra: Partial<AppendRequest> = {}): Promise<string[]> {
    return this.put([{ ...this.base(ts), ...extra, kind, data } as AppendRequest]);
  }
}

export async function newLedger(dir: string, name = `l-${randomUUID().slice(0, 8)}`): Promise<{ ledger: Ledger; file: string; url: string }> {
  const file = path.join(dir, `${name}.db`);
  const url = `sqlite:${file}`;
  return { ledger: await openLedger(url, { create: true, name: 'monitor-test' }), file, url };
}

/** `2026-11-<day>T<hh>:<mm>:<ss>.000Z`. */
export function at(day: number, hh: number, mm = 0, ss = 0): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `2026-11-${p(day)}T${p(hh)}:${p(mm)}:${p(ss)}.000Z`;
}
