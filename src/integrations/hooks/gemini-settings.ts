/**
 * Gemini CLI's settings file (`.gemini/settings.json` in a project, `~/.gemini/settings.json` for
 * the user; https://geminicli.com/docs/hooks/#configuration): `hooks` maps an event to hook
 * definitions, each `{ matcher?, sequential?, hooks: [{ type: "command", command, name?, timeout?,
 * description? }] }`, the timeout in milliseconds. Gemini reads the file with comments allowed, so
 * it is read and edited with jsonc-parser, whose edits touch only the entries Witness adds or
 * removes: the user's own hooks, comments and layout stay byte for byte, and uninstalling what
 * install added gives back the file it started from. Pure: the CLI reads and writes the file.
 */
import { createRequire } from 'node:module';
import type * as Jsonc from 'jsonc-parser';
import { isWitnessHookCommand, sameJson } from './marker.js';
import type { SettingsChange } from './types.js';

/** The events Witness records, and whether Gemini matches them by tool name (a regex; `*` is every tool). */
export const GEMINI_EVENTS: ReadonlyArray<{ event: string; matcher: boolean }> = [
  { event: 'SessionStart', matcher: false },
  { event: 'BeforeAgent', matcher: false },
  { event: 'BeforeTool', matcher: true },
  { event: 'AfterTool', matcher: true },
  { event: 'AfterAgent', matcher: false },
  { event: 'SessionEnd', matcher: false },
];

/** What every Witness hook command contains, so install finds it already there and uninstall finds it to remove. */
export const GEMINI_HOOK_MARKER = ' hook gemini';

/** The hook's name in Gemini (`/hooks disable witness`, `hooksConfig.disabled`). */
const HOOK_NAME = 'witness';

// Loaded on the first settings edit only: `witness hook gemini` runs once per tool call and never edits settings.
let loaded: typeof Jsonc | undefined;
function jsonc(): typeof Jsonc {
  loaded ??= createRequire(import.meta.url)('jsonc-parser') as typeof Jsonc;
  return loaded;
}

interface Doc {
  text: string;
  root: Jsonc.Node;
  format: Jsonc.FormattingOptions;
}

function read(text: string, file: string): Doc {
  const j = jsonc();
  const errors: Jsonc.ParseError[] = [];
  // As Gemini reads it: comments yes, trailing commas no (strip-json-comments, then JSON.parse).
  const root = j.parseTree(text, errors, { allowTrailingComma: false, disallowComments: false });
  const first = errors[0];
  if (first !== undefined || root === undefined) {
    const line = first === undefined ? 1 : text.slice(0, first.offset).split('\n').length;
    const what = first === undefined ? 'no JSON value' : j.printParseErrorCode(first.error);
    throw new Error(`${file} is not valid JSON (${what} at line ${line}); fix it or move it aside before installing the hooks.`);
  }
  if (root.type !== 'object') throw new Error(`${file} does not hold a JSON object; fix it before installing the hooks.`);
  const indent = /^([ \t]+)"/m.exec(text)?.[1] ?? '  ';
  const format = { insertSpaces: !indent.startsWith('\t'), tabSize: indent.startsWith('\t') ? 1 : indent.length, eol: text.includes('\r\n') ? '\r\n' : '\n' };
  return { text, root, format };
}

/** Whether one hook configuration is Witness's. */
function isOurHook(hook: unknown): boolean {
  return isWitnessHookCommand((hook as { command?: unknown } | null)?.command, 'gemini');
}

function hooksOf(group: unknown): unknown[] {
  const hooks = (group as { hooks?: unknown } | null)?.hooks;
  return Array.isArray(hooks) ? hooks : [];
}

/** A definition that holds a Witness hook. */
const isOurs = (group: unknown): boolean => hooksOf(group).some(isOurHook);
/** A definition that holds nothing but Witness hooks (uninstall removes it whole). */
const onlyOurs = (group: unknown): boolean => isOurs(group) && hooksOf(group).every(isOurHook);

/**
 * Inserts `value` at `path`, formatting only what is inserted: jsonc-parser's own formatting of an
 * edit widens it to whole lines and so would also reflow the user's entry on the line before ours.
 */
function insert(doc: Doc, path: Jsonc.JSONPath, value: unknown, intoArray = false): Doc {
  const j = jsonc();
  let text = doc.text;
  for (const e of j.modify(doc.text, path, value, { isArrayInsertion: intoArray }).reverse()) {
    text = j.applyEdits(text, [e]);
    text = j.applyEdits(text, j.format(text, { offset: e.offset, length: e.content.length }, doc.format));
  }
  return reparse(doc, text);
}

/**
 * Removes an array item or an object property (`node` is the item, or the property's pair), with
 * the separator before it (after it, for the first one): exactly what `insert` added, so the rest
 * of the file keeps its bytes. jsonc-parser's own removal leaves the layout to its formatter.
 */
function remove(doc: Doc, node: Jsonc.Node): Doc {
  const siblings = node.parent?.children ?? [];
  const i = siblings.indexOf(node);
  const end = (n: Jsonc.Node): number => n.offset + n.length;
  let from: number;
  let to: number;
  if (siblings.length === 1) [from, to] = [node.parent!.offset + 1, end(node.parent!) - 1];
  else if (i > 0) [from, to] = [end(siblings[i - 1]!), end(node)];
  else [from, to] = [node.offset, siblings[1]!.offset];
  return reparse(doc, doc.text.slice(0, from) + doc.text.slice(to));
}

function reparse(doc: Doc, text: string): Doc {
  const root = jsonc().parseTree(text);
  if (root === undefined) throw new Error('Editing the settings produced no JSON; report this as a bug.');
  return { ...doc, text, root };
}

/** Takes Witness's hooks out of the list at `hooks.<event>` (whole definitions where nothing else is in them), leaving everything else byte for byte. */
function removeOurs(doc: Doc, event: string, groups: unknown[]): Doc {
  const j = jsonc();
  for (let i = groups.length - 1; i >= 0; i--) {
    if (onlyOurs(groups[i])) doc = remove(doc, j.findNodeAtLocation(doc.root, ['hooks', event, i])!);
    // A hook the user added to Witness's definition stays; only Witness's own are taken out of it.
    else if (isOurs(groups[i]))
      for (let k = hooksOf(groups[i]).length - 1; k >= 0; k--) if (isOurHook(hooksOf(groups[i])[k])) doc = remove(doc, j.findNodeAtLocation(doc.root, ['hooks', event, i, 'hooks', k])!);
  }
  return doc;
}

/**
 * Adds Witness's hook `command` (its time limit `timeoutSeconds`) to every recorded event that does
 * not have exactly that definition yet; a Witness hook with other options (or an older install's)
 * is replaced, as for Claude Code and Cursor, so a reinstall with another policy takes effect.
 */
export function addGeminiHooks(text: string | undefined, command: string, timeoutSeconds: number, file = 'settings.json'): SettingsChange {
  const j = jsonc();
  let doc = read(text === undefined || text.trim() === '' ? '{}\n' : text, file);
  const hooks = j.findNodeAtLocation(doc.root, ['hooks']);
  if (hooks !== undefined && hooks.type !== 'object') throw new Error(`"hooks" in ${file} is not an object; fix it before installing the hooks.`);
  const events: string[] = [];
  for (const { event, matcher } of GEMINI_EVENTS) {
    const node = j.findNodeAtLocation(doc.root, ['hooks', event]);
    if (node !== undefined && node.type !== 'array') throw new Error(`"hooks.${event}" in ${file} is not a list; fix it before installing the hooks.`);
    const groups = node === undefined ? [] : (j.getNodeValue(node) as unknown[]);
    const group = {
      ...(matcher ? { matcher: '*' } : {}),
      hooks: [{ name: HOOK_NAME, type: 'command', command, timeout: timeoutSeconds * 1000, description: 'Witness records this event and applies its policy' }],
    };
    // Installed only as exactly this definition (matcher, timeout, every field), in whatever key order (review round 2, M-C).
    const ours = groups.filter(isOurs);
    if (ours.length === 1 && sameJson(ours[0], group)) continue;
    // Witness's own definitions out first, then the new one in as a first install puts it, so that uninstalling still gives back the user's bytes.
    if (node === undefined || groups.every(onlyOurs)) doc = insert(doc, ['hooks', event], [group]);
    else doc = insert(removeOurs(doc, event, groups), ['hooks', event, -1], group, true);
    events.push(event);
  }
  if (events.length === 0) return { text: text ?? '', events };
  return { text: doc.text, events };
}

/** Removes every Witness hook definition (and an event or `hooks` left empty by that); everything else is left as it is. */
export function removeGeminiHooks(text: string, file = 'settings.json'): SettingsChange {
  const j = jsonc();
  let doc = read(text, file);
  const hooks = j.findNodeAtLocation(doc.root, ['hooks']);
  if (hooks?.type !== 'object') return { text, events: [] };
  const events: string[] = [];
  // Event names only: `enabled`, `disabled` and `notifications` may sit beside them (older settings).
  const names = (hooks.children ?? []).map((p) => p.children?.[0]?.value as string).filter((k) => typeof k === 'string');
  for (const event of names) {
    const node = j.findNodeAtLocation(doc.root, ['hooks', event]);
    if (node?.type !== 'array') continue;
    const groups = j.getNodeValue(node) as unknown[];
    if (!groups.some(isOurs)) continue;
    doc = groups.every(onlyOurs) ? remove(doc, node.parent!) : removeOurs(doc, event, groups);
    events.push(event);
  }
  if (events.length === 0) return { text, events };
  const left = j.findNodeAtLocation(doc.root, ['hooks']);
  if (left?.type === 'object' && (left.children ?? []).length === 0) doc = remove(doc, left.parent!);
  return { text: doc.text, events };
}
