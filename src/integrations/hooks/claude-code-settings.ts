/**
 * Claude Code's settings file (`.claude/settings.json` in a project, `~/.claude/settings.json` for
 * the user): `hooks` maps an event to matcher groups, each `{ matcher?, hooks: [{ type: "command",
 * command, timeout }] }` (timeout in seconds). Installing adds one group per event whose command
 * is Witness's, once; the user's own groups are left exactly as they were. Pure: the CLI reads and
 * writes the file (and keeps the backup that makes uninstall byte-exact).
 */
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

/** What every Witness hook command contains, so install finds it already there and uninstall finds it to remove. */
export const HOOK_MARKER = ' hook claude-code';

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

function isOurs(group: unknown): boolean {
  const hooks = (group as { hooks?: unknown } | null)?.hooks;
  return Array.isArray(hooks) && hooks.some((h) => typeof (h as { command?: unknown } | null)?.command === 'string' && (h as { command: string }).command.includes(HOOK_MARKER));
}

/** Adds Witness's hook `command` (timeout in seconds) to every recorded event that does not have it yet. */
export function addClaudeCodeHooks(text: string | undefined, command: string, timeoutSeconds: number, file = 'settings.json'): SettingsChange {
  const doc = parseSettings(text, file);
  const hooks = doc['hooks'] ?? {};
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) throw new Error(`"hooks" in ${file} is not an object; fix it before installing the hooks.`);
  const h = hooks as Json;
  const events: string[] = [];
  for (const { event, matcher } of CLAUDE_CODE_EVENTS) {
    const groups = h[event] ?? [];
    if (!Array.isArray(groups)) throw new Error(`"hooks.${event}" in ${file} is not a list; fix it before installing the hooks.`);
    if (groups.some(isOurs)) continue;
    h[event] = [...groups, { ...(matcher ? { matcher: '*' } : {}), hooks: [{ type: 'command', command, timeout: timeoutSeconds }] }];
    events.push(event);
  }
  if (events.length === 0) return { text: text ?? '', events };
  doc['hooks'] = h;
  return { text: `${JSON.stringify(doc, null, 2)}\n`, events };
}

/** Removes every Witness hook group (and an event or `hooks` left empty by that). */
export function removeClaudeCodeHooks(text: string, file = 'settings.json'): SettingsChange {
  const doc = parseSettings(text, file);
  const hooks = doc['hooks'];
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) return { text, events: [] };
  const h = hooks as Json;
  const events: string[] = [];
  for (const [event, groups] of Object.entries(h)) {
    if (!Array.isArray(groups) || !groups.some(isOurs)) continue;
    const kept = groups.filter((g) => !isOurs(g));
    if (kept.length === 0) delete h[event];
    else h[event] = kept;
    events.push(event);
  }
  if (events.length === 0) return { text, events };
  if (Object.keys(h).length === 0) delete doc['hooks'];
  return { text: `${JSON.stringify(doc, null, 2)}\n`, events };
}
