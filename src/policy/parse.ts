import { LineCounter, isMap, isScalar, isSeq, parseDocument, visit, type Document, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { WitnessError, keyFingerprint, parseVerifierKey, sha256Hex } from '../core/index.js';
import { KNOWN_KEYS, PolicyFileSchema, type PolicyFile } from './schema.js';
import type { Approver, Policy, PolicyRule } from './types.js';

/**
 * YAML text → validated Policy. Every problem is reported as `<file> line N: <one sentence>`,
 * the sentence naming the field (`rules[2].effect`) and what is wrong with it. All problems found
 * are in `details.problems`, sorted by position; the message names the first.
 */

export const MAX_POLICY_BYTES = 1024 * 1024;

export interface PolicyProblem {
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
  /** The field, as in `rules[2].effect`; empty for the file as a whole or a YAML syntax error. */
  readonly path: string;
  /** One sentence, without the file and line prefix. */
  readonly message: string;
}

export interface ParseOptions {
  /** Names the file in messages; default `policy`. */
  readonly source?: string;
}

type Path = ReadonlyArray<PropertyKey>;
type Issue = z.core.$ZodIssue;

/** Parses and validates a policy. Throws WitnessError `invalid_policy` naming the line of the first problem. */
export function parsePolicy(input: string | Uint8Array, options: ParseOptions = {}): Policy {
  const source = options.source ?? 'policy';
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const sha256 = sha256Hex(bytes);
  if (bytes.length > MAX_POLICY_BYTES) {
    fail(source, [{ line: 1, column: 1, path: '', message: `the file is ${bytes.length} bytes, more than the ${MAX_POLICY_BYTES} a policy may have` }]);
  }
  const text = decodeUtf8(bytes, source);

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true, merge: false });
  const at = (offset: number): { line: number; column: number } => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };

  const syntax = [...doc.errors, ...doc.warnings].map((e) => yamlProblem(e, text, at));
  if (syntax.length > 0) fail(source, syntax);
  const structural = unsupportedYaml(doc, at);
  if (structural.length > 0) fail(source, structural);

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 0 });
  } catch (e) {
    fail(source, [{ line: 1, column: 1, path: '', message: `not valid YAML (${sentence(e instanceof Error ? e.message : String(e))})` }]);
  }
  if (data === null || data === undefined) {
    fail(source, [{ line: 1, column: 1, path: '', message: 'the file is empty; a policy needs at least version and default' }]);
  }

  const result = PolicyFileSchema.safeParse(data);
  if (!result.success) {
    const locate = new Locator(doc, text, at);
    fail(
      source,
      result.error.issues.flatMap((i) => issueProblems(i, [], data, locate)),
    );
  }
  return compile(result.data, doc, at, sha256, source);
}

function fail(source: string, problems: PolicyProblem[]): never {
  // A missing field is often the echo of a misspelt one (`efect:`), so it is reported after the rest.
  const missing = (p: PolicyProblem): number => (p.message.includes(' is missing') ? 1 : 0);
  const sorted = [...problems].sort((a, b) => missing(a) - missing(b) || a.line - b.line || a.column - b.column);
  const first = sorted[0]!;
  throw new WitnessError('invalid_policy', `${source} line ${first.line}: ${first.message}`, {
    details: { file: source, line: first.line, column: first.column, path: first.path, problems: sorted },
  });
}

function decodeUtf8(bytes: Uint8Array, source: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Find the first line that does not decode, so the message can name it.
    let line = 1;
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start, i));
        } catch {
          break;
        }
        line++;
        start = i + 1;
      }
    }
    fail(source, [{ line, column: 1, path: '', message: 'the file is not valid UTF-8 text' }]);
  }
}

// ---------------------------------------------------------------- YAML-level problems

function yamlProblem(e: YAMLError, text: string, at: (o: number) => { line: number; column: number }): PolicyProblem {
  const pos = at(e.pos[0]);
  let message: string;
  switch (e.code) {
    case 'MULTIPLE_DOCS':
      message = 'a second YAML document starts here, but a policy file holds exactly one';
      break;
    case 'DUPLICATE_KEY': {
      const key = /^(?:"[^"\n]*"|'[^'\n]*'|[^:\n]*)/
        .exec(text.slice(e.pos[0]))![0]
        .trim()
        .replace(/^["']|["']$/g, '');
      message = `the key "${key}" appears twice in the same mapping`;
      break;
    }
    case 'TAG_RESOLVE_FAILED':
      message = `YAML tags are not used in policy files (${sentence(e.message)})`;
      break;
    default:
      message = `not valid YAML (${sentence(e.message)})`;
  }
  return { ...pos, path: '', message };
}

/** Aliases and non-scalar keys are valid YAML but make a policy harder to read than it must be. */
function unsupportedYaml(doc: Document, at: (o: number) => { line: number; column: number }): PolicyProblem[] {
  const out: PolicyProblem[] = [];
  visit(doc, {
    Alias(_k, node) {
      out.push({ ...at(node.range?.[0] ?? 0), path: '', message: `YAML aliases (*${node.source}) are not supported in a policy file; write the value out` });
    },
    Pair(_k, pair) {
      if (pair.key !== null && !isScalar(pair.key)) {
        const range = (pair.key as { range?: [number, number, number] }).range;
        out.push({ ...at(range?.[0] ?? 0), path: '', message: 'a mapping key must be a plain name, not a list or a mapping' });
      }
    },
  });
  return out;
}

function sentence(msg: string): string {
  const first = msg.split('\n')[0]!.replace(/\.$/, '');
  return first.charAt(0).toLowerCase() + first.slice(1);
}

// ---------------------------------------------------------------- zod issues → sentences with lines

class Locator {
  constructor(
    private readonly doc: Document,
    private readonly text: string,
    private readonly at: (o: number) => { line: number; column: number },
  ) {}

  /** The node at `path`, or the nearest ancestor that exists, and whether it was found exactly. */
  node(path: Path): { node: unknown; exact: boolean } {
    let node: unknown = this.doc.contents;
    for (const seg of path) {
      let next: unknown;
      if (isMap(node)) {
        next = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg))?.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        next = node.items[seg];
      }
      if (next === undefined || next === null) return { node, exact: false };
      node = next;
    }
    return { node, exact: true };
  }

  position(path: Path): { line: number; column: number } {
    return this.start(this.node(path).node);
  }

  /** Where the key `key` of the mapping at `path` is written. */
  keyPosition(path: Path, key: string): { line: number; column: number } {
    const { node, exact } = this.node(path);
    if (exact && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      if (pair !== undefined) return this.start(pair.key);
    }
    return this.start(node);
  }

  /** Where character `offset` of the string at `path` is, when the string is written on one line as is. */
  stringPosition(path: Path, offset: number): { line: number; column: number } {
    const { node, exact } = this.node(path);
    const pos = this.start(node);
    if (!exact || !isScalar(node) || typeof node.value !== 'string' || node.range === undefined || node.range === null) return pos;
    const raw = this.text.slice(node.range[0], node.range[1]);
    if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') return this.blockPosition(raw, node.value, pos, offset);
    if (raw.includes('\n')) return pos;
    if (node.type === 'PLAIN' && raw === node.value) return { line: pos.line, column: pos.column + offset };
    if ((node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') && raw.slice(1, -1) === node.value) {
      return { line: pos.line, column: pos.column + 1 + offset };
    }
    return pos;
  }

  /**
   * A condition written as a block scalar (`when: >-` then indented lines): each source line is one
   * line of the value, joined by "\n" (literal) or " " (folded) — one character either way — so an
   * offset maps to a line and column. When the value is not that simple join, the header's position.
   */
  private blockPosition(raw: string, value: string, header: { line: number; column: number }, offset: number): { line: number; column: number } {
    const lines = raw.split(/\r?\n/).slice(1);
    const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length));
    const content = lines.map((l) => l.slice(indent).replace(/\s+$/, ''));
    while (content.length > 0 && content[content.length - 1] === '') content.pop();
    if (content.some((l) => l === '') || content.join(' ') !== value.replace(/\n/g, ' ').replace(/\s+$/, '')) return header;
    let start = 0;
    for (let i = 0; i < content.length; i++) {
      const end = start + content[i]!.length;
      if (offset <= end || i === content.length - 1) return { line: header.line + 1 + i, column: indent + 1 + Math.max(0, offset - start) };
      start = end + 1;
    }
    return header;
  }

  private start(node: unknown): { line: number; column: number } {
    const range = (node as { range?: [number, number, number] | null } | null)?.range;
    return range ? this.at(range[0]) : { line: 1, column: 1 };
  }
}

function issueProblems(issue: Issue, prefix: Path, data: unknown, locate: Locator): PolicyProblem[] {
  const path = [...prefix, ...issue.path];
  if (path.length > 0 && valueAt(data, path) === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_value')) {
    const hint = issue.code === 'invalid_value' ? `; it must be ${alternatives(issue.values.map((v) => String(v)))}` : '';
    return [problem(path, `is missing${hint}`, locate.position(path))];
  }
  switch (issue.code) {
    case 'invalid_union': {
      // Report the branch that got furthest (`tool: [fs.*, 3]` → tool[1] must be a string), if any got past the top.
      const deepest = issue.errors.reduce<readonly Issue[] | undefined>((best, branch) => {
        const depth = Math.max(...branch.map((i) => i.path.length));
        return depth > 0 && (best === undefined || depth > Math.max(...best.map((i) => i.path.length))) ? branch : best;
      }, undefined);
      if (deepest !== undefined) return deepest.flatMap((i) => issueProblems(i, path, data, locate));
      return [problem(path, issue.message, locate.position(path))];
    }
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({
        ...locate.keyPosition(path, key),
        path: formatPath([...path, key]),
        message: `${subject(path)} has an unknown key "${key}"${suggest(key, knownKeys(path))}`,
      }));
    case 'invalid_type':
      return [problem(path, `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`, locate.position(path))];
    case 'invalid_value':
      return [problem(path, `must be ${alternatives(issue.values.map((v) => String(v)))}`, locate.position(path))];
    case 'too_small':
      return [problem(path, issue.origin === 'array' ? 'must not be an empty list' : issue.origin === 'string' ? 'must not be empty' : `must be at least ${issue.minimum}`, locate.position(path))];
    case 'too_big':
      return [
        problem(
          path,
          issue.origin === 'array' ? `may hold at most ${issue.maximum} items` : issue.origin === 'string' ? `must be at most ${issue.maximum} characters` : `must be at most ${issue.maximum}`,
          locate.position(path),
        ),
      ];
    case 'custom': {
      const offset = (issue.params as { offset?: unknown } | undefined)?.offset;
      const pos = typeof offset === 'number' ? locate.stringPosition(path, offset) : locate.position(path);
      return [problem(path, issue.message, pos)];
    }
    default:
      return [problem(path, issue.message, locate.position(path))];
  }
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping (key: value lines)',
  array: 'a list',
};

function problem(path: Path, predicate: string, pos: { line: number; column: number }): PolicyProblem {
  return { ...pos, path: formatPath(path), message: `${subject(path)} ${predicate}` };
}

function subject(path: Path): string {
  return path.length === 0 ? 'the policy' : formatPath(path);
}

/** `rules[2].match.tool`, the way a person reads a path. */
export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

function alternatives(values: string[]): string {
  if (values.length <= 1) return values.join('');
  return `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
}

function valueAt(data: unknown, path: Path): unknown {
  let cur = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg as string];
  }
  return cur;
}

function knownKeys(path: Path): readonly string[] {
  if (path.length === 0) return KNOWN_KEYS.policy;
  if (path.length === 2 && path[0] === 'rules') return KNOWN_KEYS.rule;
  if (path.length === 3 && path[0] === 'rules' && path[2] === 'match') return KNOWN_KEYS.match;
  if (path.length === 2 && path[0] === 'approvers') return KNOWN_KEYS.approver;
  return [];
}

/** `; did you mean "effect"?` when a known key is within two edits, else `; expected one of …`. */
function suggest(key: string, known: readonly string[]): string {
  if (known.length === 0) return '';
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  if (best !== undefined) return `; did you mean "${best}"?`;
  return `; the keys allowed here are ${alternatives(known.map((k) => k))}`;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 99;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------- compile

function compile(file: PolicyFile, doc: Document, at: (o: number) => { line: number; column: number }, sha256: string, source: string): Policy {
  const seq = doc.getIn(['rules'], true);
  const rules: PolicyRule[] = (file.rules ?? []).map((r, i) => {
    const node = isSeq(seq) ? (seq.items[i] as { range?: [number, number, number] } | undefined) : undefined;
    return Object.freeze({
      id: r.id,
      description: r.description,
      match: Object.freeze({
        agent: Object.freeze(r.match?.agent ?? ['*']),
        server: Object.freeze(r.match?.server ?? ['*']),
        tool: Object.freeze(r.match?.tool ?? ['*']),
      }),
      when: Object.freeze(r.when?.text ?? []),
      condition: r.when?.condition,
      effect: r.effect,
      reason: r.reason,
      hide: r.hide ?? false,
      approvers: r.approvers === undefined ? undefined : Object.freeze([...r.approvers]),
      line: node?.range ? at(node.range[0]).line : 1,
    });
  });
  const approverSeq = doc.getIn(['approvers'], true);
  const approvers: Approver[] = (file.approvers ?? []).map((a, i) => {
    const node = isSeq(approverSeq) ? (approverSeq.items[i] as { range?: [number, number, number] } | undefined) : undefined;
    // The schema has parsed the key already; this cannot throw.
    return Object.freeze({ id: a.id, key: a.key, fingerprint: keyFingerprint(parseVerifierKey(a.key)), line: node?.range ? at(node.range[0]).line : 1 });
  });
  const defaultPair = isMap(doc.contents) ? doc.contents.items.find((p) => isScalar(p.key) && p.key.value === 'default') : undefined;
  const defaultRange = (defaultPair?.key as { range?: [number, number, number] } | undefined)?.range;
  return Object.freeze({
    version: 1 as const,
    default: file.default,
    mode: file.mode ?? 'enforce',
    rules: Object.freeze(rules),
    approvers: Object.freeze(approvers),
    defaultLine: defaultRange ? at(defaultRange[0]).line : 1,
    sha256,
    source,
  });
}
