/**
 * Cursor's hooks file (`.cursor/hooks.json` in a project, `~/.cursor/hooks.json` for the user;
 * https://cursor.com/docs/hooks, "Configuration"): `{ "version": 1, "hooks": { "<event>": [ {
 * command, timeout?, failClosed?, matcher?, loop_limit?, type? } ] } }`, a flat list per event
 * (no matcher groups as in Claude Code), timeout in seconds. Installing adds one entry per event
 * whose command is Witness's, once; the user's own entries are left exactly as they were. Pure:
 * the CLI reads and writes the file (and keeps the backup that makes uninstall byte-exact).
 */
import { isWitnessHookCommand, sameJson } from './marker.js';
import type { SettingsChange } from './types.js';

/**
 * The events Witness records, and which of them can refuse what the agent is about to do
 * (`gate`). A tool call is seen at preToolUse (every tool but MCP's) or at beforeMCPExecution
 * (MCP tools, the only event that names the server), so each call is judged once.
 */
export const CURSOR_EVENTS: ReadonlyArray<{ event: string; gate: boolean }> = [
  { event: 'sessionStart', gate: false },
  { event: 'beforeSubmitPrompt', gate: true },
  { event: 'preToolUse', gate: true },
  { event: 'postToolUse', gate: false },
  { event: 'postToolUseFailure', gate: false },
  { event: 'beforeMCPExecution', gate: true },
  { event: 'afterMCPExecution', gate: false },
  { event: 'stop', gate: false },
  { event: 'sessionEnd', gate: false },
];

/** What every Witness hook command contains, so install finds it already there and uninstall finds it to remove. */
export const CURSOR_HOOK_MARKER = ' hook cursor';

type Json = Record<string, unknown>;

function parseHooksFile(text: string | undefined, file: string): Json {
  if (text === undefined || text.trim() === '') return {};
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}); fix it or move it aside before installing the hooks.`, { cause: e });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error(`${file} does not hold a JSON object; fix it before installing the hooks.`);
  return doc as Json;
}

function isOurs(entry: unknown): boolean {
  return isWitnessHookCommand((entry as { command?: unknown } | null)?.command, 'cursor');
}

/**
 * Adds Witness's hook `command` (timeout in seconds) to every recorded event that does not have
 * exactly that entry yet. When the command fails closed, the gating events also get `failClosed: true`: Cursor fails
 * open on a hook that crashes or times out unless told otherwise, and a Witness that cannot start
 * must then refuse as the command's own `--fail closed` would.
 */
export function addCursorHooks(text: string | undefined, command: string, timeoutSeconds: number, file = 'hooks.json'): SettingsChange {
  const doc = parseHooksFile(text, file);
  const version = doc['version'];
  if (version !== undefined && version !== 1) throw new Error(`${file} is hooks file version ${JSON.stringify(version)}; Witness writes version 1 hooks, so it was left as it is.`);
  const hooks = doc['hooks'] ?? {};
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) throw new Error(`"hooks" in ${file} is not an object; fix it before installing the hooks.`);
  const h = hooks as Json;
  const failClosed = /(^|\s)--fail\s+'?closed'?(\s|$)/.test(command);
  const events: string[] = [];
  for (const { event, gate } of CURSOR_EVENTS) {
    const entries = h[event] ?? [];
    if (!Array.isArray(entries)) throw new Error(`"hooks.${event}" in ${file} is not a list; fix it before installing the hooks.`);
    const entry = { command, timeout: timeoutSeconds, ...(gate && failClosed ? { failClosed: true } : {}) };
    // Installed only as exactly this entry (a `matcher` or a missing `failClosed` weakens it; review round 2, M-C), in whatever key order.
    const ours = entries.filter(isOurs);
    if (ours.length === 1 && sameJson(ours[0], entry)) continue;
    // A Witness entry with other options (an earlier install with another policy, say) is replaced, not kept beside the new one.
    h[event] = [...entries.filter((e) => !isOurs(e)), entry];
    events.push(event);
  }
  if (events.length === 0) return { text: text ?? '', events };
  // Cursor reads `version` first in every example; a file without one gets it in front.
  const out: Json = version === undefined ? { version: 1, ...doc } : doc;
  out['hooks'] = h;
  return { text: `${JSON.stringify(out, null, 2)}\n`, events };
}

/** Removes every Witness entry (and an event or `hooks` left empty by that). */
export function removeCursorHooks(text: string, file = 'hooks.json'): SettingsChange {
  const doc = parseHooksFile(text, file);
  const hooks = doc['hooks'];
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) return { text, events: [] };
  const h = hooks as Json;
  const events: string[] = [];
  for (const [event, entries] of Object.entries(h)) {
    if (!Array.isArray(entries) || !entries.some(isOurs)) continue;
    const kept = entries.filter((e) => !isOurs(e));
    if (kept.length === 0) delete h[event];
    else h[event] = kept;
    events.push(event);
  }
  if (events.length === 0) return { text, events };
  if (Object.keys(h).length === 0) delete doc['hooks'];
  return { text: `${JSON.stringify(doc, null, 2)}\n`, events };
}
