/**
 * Codex's hooks file (`.codex/hooks.json` in a project, `~/.codex/hooks.json` for the user;
 * https://learn.chatgpt.com/docs/hooks, "Where Codex looks for hooks", "Config shape"): `hooks` maps
 * an event to matcher groups `{ matcher?, hooks: [{ type: "command", command, timeout,
 * statusMessage? }] }` (timeout in seconds). Codex reads the same shape from `[hooks]` tables of
 * `config.toml`; Witness writes only the JSON file, so the user's TOML (and its comments) is never
 * re-serialised. Installing adds one group per event whose command is Witness's, once, and an
 * install with other options replaces Witness's entry (as for Claude Code and Cursor); the user's
 * own groups are left exactly as they were. Pure: the CLI reads and writes the file.
 */
import { isWitnessHookCommand, sameJson } from './marker.js';
import type { SettingsChange } from './types.js';

/**
 * The events Witness records. No `matcher`: Codex reads a missing one as "every occurrence", and
 * trusts a hook by the hash of its definition as written, so the entry stays as small as it can be.
 * SessionEnd's timeout is capped at 3 s because Codex clamps it there (and warns at every start
 * about a larger value); older Codex releases ignore an event name they do not know.
 */
export const CODEX_EVENTS: ReadonlyArray<{ event: string; maxTimeoutSeconds?: number; statusMessage?: string }> = [
  { event: 'SessionStart' },
  { event: 'UserPromptSubmit' },
  // Shown while the hook runs, which for a call held for review is until `witness approve` or the limit.
  { event: 'PreToolUse', statusMessage: 'Witness: recording and checking this tool call' },
  { event: 'PostToolUse' },
  { event: 'Stop' },
  { event: 'SessionEnd', maxTimeoutSeconds: 3 },
];

/** What every Witness hook command for Codex contains, so install finds it already there and uninstall finds it to remove. */
export const CODEX_HOOK_MARKER = ' hook codex';

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

const isOursEntry = (h: unknown): boolean => isWitnessHookCommand((h as { command?: unknown } | null)?.command, 'codex');

function entries(group: unknown): unknown[] {
  const hooks = (group as { hooks?: unknown } | null)?.hooks;
  return Array.isArray(hooks) ? hooks : [];
}

const isOurs = (group: unknown): boolean => entries(group).some(isOursEntry);

/** `groups` without Witness's entries: a group left with no entry goes, a hook the user put into Witness's group stays in it (issue 16 review, M4 U5). */
function withoutOurs(groups: unknown[]): unknown[] {
  return groups.flatMap((g) => {
    if (!isOurs(g)) return [g];
    const rest = entries(g).filter((e) => !isOursEntry(e));
    return rest.length === 0 ? [] : [{ ...(g as Json), hooks: rest }];
  });
}

/** Adds Witness's hook `command` (timeout in seconds) to every recorded event that does not have exactly the group install writes yet; any other Witness entry there (other options, an older install's, under a matcher) is replaced, the user's hooks kept. */
export function addCodexHooks(text: string | undefined, command: string, timeoutSeconds: number, file = 'hooks.json'): SettingsChange {
  const doc = parseHooksFile(text, file);
  const hooks = doc['hooks'] ?? {};
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) throw new Error(`"hooks" in ${file} is not an object; fix it before installing the hooks.`);
  const h = hooks as Json;
  const events: string[] = [];
  for (const { event, maxTimeoutSeconds, statusMessage } of CODEX_EVENTS) {
    const groups = h[event] ?? [];
    if (!Array.isArray(groups)) throw new Error(`"hooks.${event}" in ${file} is not a list; fix it before installing the hooks.`);
    const timeout = Math.min(timeoutSeconds, maxTimeoutSeconds ?? timeoutSeconds);
    const entry = { type: 'command', command, timeout, ...(statusMessage === undefined ? {} : { statusMessage }) };
    const group = { hooks: [entry] };
    // Installed only as exactly this group: a `matcher` (or any other field) someone added can narrow it to no tool at all (review round 2, M-C).
    const ours = groups.filter(isOurs);
    if (ours.length === 1 && sameJson(ours[0], group)) continue;
    h[event] = [...withoutOurs(groups), group];
    events.push(event);
  }
  if (events.length === 0) return { text: text ?? '', events };
  // Codex refuses a hooks.json whose top level holds anything but `description` and `hooks`: nothing else is added.
  doc['hooks'] = h;
  return { text: `${JSON.stringify(doc, null, 2)}\n`, events };
}

/** Removes every Witness hook entry (and a group, an event or `hooks` left empty by that). */
export function removeCodexHooks(text: string, file = 'hooks.json'): SettingsChange {
  const doc = parseHooksFile(text, file);
  const hooks = doc['hooks'];
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) return { text, events: [] };
  const h = hooks as Json;
  const events: string[] = [];
  for (const [event, groups] of Object.entries(h)) {
    if (!Array.isArray(groups) || !groups.some(isOurs)) continue;
    const kept = withoutOurs(groups);
    if (kept.length === 0) delete h[event];
    else h[event] = kept;
    events.push(event);
  }
  if (events.length === 0) return { text, events };
  if (Object.keys(h).length === 0) delete doc['hooks'];
  return { text: `${JSON.stringify(doc, null, 2)}\n`, events };
}
