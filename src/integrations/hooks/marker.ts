/**
 * How Witness finds its own entries in a coding agent's hook settings again: every hook command
 * `witness hooks install` writes ends with the argument {@link HOOK_MARK} (which `witness hook`
 * accepts and ignores). An entry is Witness's when its command is `… hook <kind> …` and ends with
 * that argument, nothing looser: another tool's command that merely contains ` hook claude-code`
 * (issue 16 review, M4 U1) is not Witness's, so install does not skip an event for it and
 * uninstall never deletes it. The mark is an argument, not a shell comment or an extra JSON key,
 * so it survives every agent's way of running a command and every settings schema.
 *
 * Commands installed before the mark existed (up to commit cf38d07) are recognised too, so that a
 * reinstall replaces them instead of adding a second hook and uninstall takes them out; but only in
 * exactly the shape that installer wrote, every value checked as it checked it, never by a substring.
 */
import path from 'node:path';

/** The last argument of every hook command Witness installs. */
export const HOOK_MARK = '--installed-by=witness-hooks-install';

/** Whether `command` is a Witness hook command for the coding agent `kind`, as install writes it (or wrote it before the mark). */
export function isWitnessHookCommand(command: unknown, kind: string): boolean {
  if (typeof command !== 'string') return false;
  if (command.endsWith(` ${HOOK_MARK}`)) return command.includes(` hook ${kind} `);
  return isUnmarkedWitnessHookCommand(command, kind);
}

/** One argument as the installer's shellQuote wrote it: bare when safe, else single-quoted with `'\''` for a quote. */
const WORD = String.raw`[\w@%+=:,./-]+|'(?:[^']|'\\'')*'`;
/**
 * The unmarked command: `<command> hook <kind> --agent A --fail F --review-timeout D --budget Ns[ --store S][ --policy P]`.
 * `<command>` was the user's `--command` (default `witness`), written as given; one that chains or
 * redirects (`;`, `&`, `|`, `<`, `>`, `` ` ``, `$(`, a line break) is someone's own composition and
 * is left alone, at the cost of a second Witness entry after a reinstall.
 */
const UNMARKED = new RegExp(
  String.raw`^([^\s;&|<>\x60\n\r][^;&|<>\x60\n\r]*?) hook ([\w-]+) --agent (${WORD}) --fail (${WORD}) --review-timeout (${WORD}) --budget (\d+)s(?: --store (${WORD}))?(?: --policy (${WORD}))?$`,
);

function isUnmarkedWitnessHookCommand(command: string, kind: string): boolean {
  const m = UNMARKED.exec(command);
  if (m === null || m[2] !== kind || m[1]!.includes('$(')) return false;
  const [agent, fail, review, store, policy] = [m[3], m[4], m[5], m[7], m[8]].map((w) => (w === undefined ? undefined : unquote(w)));
  // Each word must be quoted exactly as the installer quoted it, and hold a value it accepted.
  if ([m[3], m[4], m[5], m[7], m[8]].some((w) => w !== undefined && shellQuote(unquote(w)) !== w)) return false;
  if (agent === undefined || agent === '' || agent.length > 512 || !/^[\w.@:+-]+$/.test(agent)) return false;
  if (fail !== 'open' && fail !== 'closed') return false;
  const reviewMs = durationMs(review!);
  if (reviewMs === undefined || Number(m[6]) !== Math.ceil(reviewMs / 1000) + 5) return false;
  if (store === '') return false;
  return policy === undefined || (path.isAbsolute(policy) && path.resolve(policy) === policy);
}

/**
 * Whether two JSON values are the same, whatever the order of their objects' keys: install counts
 * Witness's entry as installed only when it (and its group) is exactly what install would write
 * (issue 16 review round 2, M-C: the exact command under a matcher no tool has, or with
 * `async: true`, guards nothing), while an agent or editor that writes the settings back with its
 * keys reordered has changed nothing that matters.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return a === b;
  const ka = Object.keys(a);
  const kb = b as Record<string, unknown>;
  return ka.length === Object.keys(kb).length && ka.every((k) => Object.prototype.hasOwnProperty.call(kb, k) && sameJson((a as Record<string, unknown>)[k], kb[k]));
}

/** The installer's shellQuote (src/cli/commands/hook.ts), repeated: this module must not import the CLI. */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function unquote(word: string): string {
  return word.startsWith("'") ? word.slice(1, -1).replace(/'\\''/g, "'") : word;
}

/** `--review-timeout` as the installer's parseDuration read it (1 ms to a day), or undefined where it refused it. */
function durationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  const ms = m === null ? Number.NaN : Number(m[1]) * unit[(m[2] ?? 'ms') as keyof typeof unit];
  return Number.isFinite(ms) && ms >= 1 && ms <= 24 * 3_600_000 ? Math.round(ms) : undefined;
}
