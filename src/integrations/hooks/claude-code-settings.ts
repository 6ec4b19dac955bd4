/**
 * Claude Code's settings file (`.claude/settings.json` in a project, `~/.claude/settings.json` for
 * the user): `hooks` maps an event to matcher groups, each `{ matcher?, hooks: [{ type: "command",
 * command, timeout }] }` (timeout in seconds). Installing adds one group per event whose command
 * is Witness's, once; the user's own groups are left exactly as they were. Witness's entries are
 * found by marker.ts's exact test, never by a substring of someone else's command, and only those
 * entries are removed (a hook the user put into Witness's group stays). Pure: the CLI reads and
 * writes the file (and keeps the backup that makes uninstall byte-exact).
 */
import { isWitnessHookCommand, sameJson } from './marker.js';
import type { SettingsChange } from './types.js';

/** The events Witness records, and whether Claude Code matches them by tool name. */
export const CLAUDE_CODE_EVENTS: ReadonlyArray<{ event: string; matcher: boolean }> = [
  { event: 'SessionStart', matcher: false },
  { event: 'UserPromptSubmit', matcher: false },
  { event: 'PreToolUse', matcher: true },
  { event: 'PostToolUse', matcher: true },
  { event: 'Stop', matcher: false },
  { event: 'SessionEnd', matcher: false },
];

/** What every Witness hook command for Claude Code contains (with marker.ts's HOOK_MARK at its end). */
export const HOOK_MARKER = ' hook claude-code';
const KIND = 'claude-code';

type Json = Record<string, unknown>;

function parseSettings(text: string | undefined, file: string): Json {
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

const isOursEntry = (h: unknown): boolean => isWitnessHookCommand((h as { command?: unknown } | null)?.command, KIND);

function entries(group: unknown): unknown[] {
  const hooks = (group as { hooks?: unknown } | null)?.hooks;
  return Array.isArray(hooks) ? hooks : [];
}

/** Adds Witness's hook `command` (timeout in seconds) to every recorded event that does not have exactly the group install writes yet; any other Witness entry there (other options, another matcher, another field) is replaced, the user's hooks kept. */
export function addClaudeCodeHooks(text: string | undefined, command: string, timeoutSeconds: number, file = 'settings.json'): SettingsChange {
  const doc = parseSettings(text, file);
  const hooks = doc['hooks'] ?? {};
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) throw new Error(`"hooks" in ${file} is not an object; fix it before installing the hooks.`);
  const h = hooks as Json;
  const events: string[] = [];
  for (const { event, matcher } of CLAUDE_CODE_EVENTS) {
    const groups = h[event] ?? [];
    if (!Array.isArray(groups)) throw new Error(`"hooks.${event}" in ${file} is not a list; fix it before installing the hooks.`);
    const group = { ...(matcher ? { matcher: '*' } : {}), hooks: [{ type: 'command', command, timeout: timeoutSeconds }] };
    // Installed only as exactly this group: the same command under a narrower matcher, or with `async: true` (run in the background, so it cannot
    // block; https://docs.rs/claude-code-settings/0.1.0/claude_code_settings/struct.CommandHook.html), guards nothing (review round 2, M-C).
    const ours = groups.filter((g) => entries(g).some(isOursEntry));
    if (ours.length === 1 && sameJson(ours[0], group)) continue;
    h[event] = [...withoutOurs(groups), group];
    events.push(event);
  }
  if (events.length === 0) return { text: text ?? '', events };
  doc['hooks'] = h;
  return { text: `${JSON.stringify(doc, null, 2)}\n`, events };
}

/** `groups` without Witness's entries; a group left with no entry goes, any other group stays as it was (its other keys too). */
function withoutOurs(groups: unknown[]): unknown[] {
  const kept: unknown[] = [];
  for (const g of groups) {
    const all = entries(g);
    if (!all.some(isOursEntry)) {
      kept.push(g);
      continue;
    }
    const rest = all.filter((e) => !isOursEntry(e));
    if (rest.length > 0) kept.push({ ...(g as Json), hooks: rest });
  }
  return kept;
}

/** Removes every Witness hook entry (and a group, event or `hooks` left empty by that). */
export function removeClaudeCodeHooks(text: string, file = 'settings.json'): SettingsChange {
  const doc = parseSettings(text, file);
  const hooks = doc['hooks'];
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) return { text, events: [] };
  const h = hooks as Json;
  const events: string[] = [];
  for (const [event, groups] of Object.entries(h)) {
    if (!Array.isArray(groups) || !groups.flatMap(entries).some(isOursEntry)) continue;
    const kept = withoutOurs(groups);
    if (kept.length === 0) delete h[event];
    else h[event] = kept;
    events.push(event);
  }
  if (events.length === 0) return { text, events };
  if (Object.keys(h).length === 0) delete doc['hooks'];
  return { text: `${JSON.stringify(doc, null, 2)}\n`, events };
}
