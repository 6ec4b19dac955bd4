import type { HookEvent } from './types.js';

/** Which event a payload is, as far as an answer needs to know: a tool call about to run and a prompt can be refused, nothing else. */
export type SeenEvent = Pick<HookEvent, 'type' | 'event'>;

/**
 * The event a payload names in `hook_event_name`, read from that field alone (an object's non-empty
 * string of at most 128 characters, as every adapter's schema takes it) and typed by `types` (an
 * agent's event names; any other is `other`). A payload the adapter's parse refuses (a Stop without
 * session_id) is still answered as its event expects: only a tool call or a prompt is ever refused
 * (issue 16 review 2, L-G). Undefined when the payload names no event.
 */
export function seenEvent(payload: unknown, types: ReadonlyMap<string, HookEvent['type']>): SeenEvent | undefined {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
  const event = (payload as { hook_event_name?: unknown }).hook_event_name;
  if (typeof event !== 'string' || event.length === 0 || event.length > 128) return undefined;
  return { type: types.get(event) ?? 'other', event };
}
