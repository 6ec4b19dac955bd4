/**
 * The per-event columns a driver fills from an event's header beside the header itself (identity:
 * id, stream, seq; query: ts, kind, agent, resource, action, outcome), as the drivers' edit hooks
 * (test/store/*-edit-hook.ts) fill them when they forge a header, the way a careful forger would:
 * no column gives the forgery away by disagreeing with its header. Empty when the header is not a
 * JSON object; a field the header lacks is left out, except resource, action and outcome (null).
 */
export function headerColumns(header: string): Record<string, unknown> {
  let h: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(header);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    h = parsed as Record<string, unknown>;
  } catch {
    return {};
  }
  const agent = h['agent'];
  const fromHeader: Record<string, unknown> = {
    id: h['id'],
    stream: h['stream'],
    seq: h['seq'],
    ts: h['ts'],
    kind: h['kind'],
    agent: typeof agent === 'object' && agent !== null ? (agent as { id?: unknown }).id : undefined,
    resource: h['resource'] ?? null,
    action: h['action'] ?? null,
    outcome: h['outcome'] ?? null,
  };
  return Object.fromEntries(Object.entries(fromHeader).filter(([, v]) => v !== undefined));
}
