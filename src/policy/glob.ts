/**
 * Globs for agent, server and tool names. Deliberately tiny, so a policy reads the same to every
 * person: `*` matches any run of characters (including none, dots and slashes), `?` matches exactly
 * one character, and every other character matches itself, case-sensitively. Matching is a
 * two-pointer scan (no regular expressions, so no pathological backtracking): O(glob × name).
 */

/** Characters that mean something in other glob dialects; refused so nobody relies on them silently. */
const UNSUPPORTED: ReadonlyArray<readonly [string, string]> = [
  ['[', 'character classes ([...]) are not supported; use * or ?'],
  [']', 'character classes ([...]) are not supported; use * or ?'],
  ['{', 'alternatives ({a,b}) are not supported; use a list of globs'],
  ['}', 'alternatives ({a,b}) are not supported; use a list of globs'],
  ['\\', 'backslash escapes are not supported'],
];

export const MAX_GLOB_LENGTH = 512;

/** Why `glob` is not a valid glob, as a predicate phrase ("is empty"), or undefined when it is valid. */
export function globProblem(glob: string): string | undefined {
  if (glob === '') return 'is an empty glob';
  if (glob.length > MAX_GLOB_LENGTH) return `is longer than ${MAX_GLOB_LENGTH} characters`;
  if (glob.trim() !== glob) return `"${glob}" has spaces at its start or end`;
  if (glob.startsWith('!')) return `"${glob}" starts with !, but negated globs are not supported; write a separate rule`;
  if (glob.includes('**')) return `"${glob}" contains **; a single * already matches any characters`;
  for (const [ch, why] of UNSUPPORTED) {
    if (glob.includes(ch)) return `"${glob}" contains "${ch}": ${why}`;
  }
  if (/[\u0000-\u001f\u007f]/.test(glob)) return 'contains a control character';
  return undefined;
}

/** True when `name` matches `glob` in full. Never throws; a non-string name matches nothing. */
export function matchGlob(glob: string, name: string): boolean {
  if (typeof name !== 'string') return false;
  let g = 0;
  let n = 0;
  let star = -1; // position in glob just after the last *
  let mark = 0; // position in name that the last * has consumed up to
  while (n < name.length) {
    const c = glob.charCodeAt(g);
    if (g < glob.length && c !== 42 /* * */ && (c === 63 /* ? */ || c === name.charCodeAt(n))) {
      g++;
      n++;
    } else if (g < glob.length && c === 42) {
      star = ++g;
      mark = n;
    } else if (star !== -1) {
      g = star;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob.charCodeAt(g) === 42) g++;
  return g === glob.length;
}

/** True when any glob of the list matches. */
export function matchAny(globs: readonly string[], name: string): boolean {
  for (const g of globs) if (matchGlob(g, name)) return true;
  return false;
}
