/**
 * Secrets are removed before anything is hashed or written: once in a hash-chained ledger they
 * could never be taken out again without breaking verification.
 *
 * One pass over a value, the same for every path that records (SDK, proxy, gateway, captures):
 *
 * 1. Objects: a member whose key names a secret (see `isSecretKey`) has its value replaced by
 *    `[REDACTED:key]`; every other member is searched. A `value` beside a `name`/`key` that names
 *    a secret counts as that key (`{name: "DB_PASSWORD", value: …}`), and so does the second of a
 *    `[name, value]` pair in a list; argument vectors get the command-line rules of 3 (see
 *    `Redactor.listEdits`). Copies keep a `__proto__` member as data (`setMember`).
 * 2. Strings that are JSON text (first non-space character `{` or `[`): parsed, with the same key
 *    rule applied inside and every string value searched in turn (JSON in a string in JSON, up to
 *    `MAX_TEXT_DEPTH` levels). Only the redacted values are rewritten; spacing, key order and
 *    numbers keep the tool's own bytes. Text cut off mid-value (the head a gateway keeps of a
 *    refused frame) is read as far as it goes.
 * 3. Every other string (and a string that is not JSON after all): the token patterns below, the
 *    caller's patterns, then the value after a key that names a secret in `key=value`,
 *    `key: value`, `key => value`, `"key": "value"`, `'key': 'value'`, `--key value` and
 *    `?key=value`, and the rest of header lines (`Authorization:`, `Cookie:`, `Set-Cookie:`);
 *    in `curl` and `mysql` command lines, `-u user:password` and `-pPASSWORD`.
 * 4. The event header's caller-written text fields (`HEADER_TEXT`), as strings (`redactHeader`).
 *
 * Redacting redacted output changes nothing (values already `[REDACTED:…]` are left alone), so a
 * tool output measured for spilling and then recorded comes out the same.
 */

import { isWellFormedString } from '../core/index.js';

export interface RedactionRule {
  name: string;
  pattern: RegExp;
}

export interface RedactionConfig {
  /** Extra patterns; every match is replaced by `[REDACTED:<name>]`. */
  patterns?: RedactionRule[];
  /** Extra object keys (case-insensitive) whose whole value is replaced. */
  keys?: string[];
  /** Turn the built-in rules off (not recommended). */
  builtins?: boolean;
}

/**
 * The header fields a caller writes as text, redacted like any string in `data` (`true`: the field
 * itself, a string or a list of strings; a list of names: those members of the object, or of each
 * object in the list). Not redacted, because Witness writes them or their format admits no secret:
 * `id`, `ts`, `received_ts`, `stream`, `seq`, `parent`, `kind`, `outcome`, `prev`,
 * `payload_digest`, `policy.decision` / `version` / `mode`, `approvals[].decision` / `args_digest` /
 * `ts`, `artifacts[].sha256` / `mime` / `bytes`, `delegation.expires`, `principal.kind`,
 * `recorder.kind`.
 */
const HEADER_TEXT: Readonly<Record<string, true | readonly string[]>> = {
  agent: ['id', 'version', 'credential'],
  user: true,
  principal: ['id'],
  delegation: ['id', 'issuer', 'scopes'],
  subject: true,
  recorder: ['id', 'version'],
  source: ['host', 'process'],
  env: true,
  tenant: true,
  resource: true,
  action: true,
  policy: ['rule', 'reason_code', 'approver'],
  approvals: ['approver', 'role', 'reason', 'meaning'],
  record_class: true,
  data_categories: true,
  artifacts: ['role', 'name'],
};

const HEADER_TEXT_ENTRIES = Object.entries(HEADER_TEXT);

/** The header fields that are lists (of strings, or of objects). */
const HEADER_LISTS: ReadonlySet<string> = new Set(['approvals', 'artifacts', 'data_categories', 'delegation.scopes']);

/** `HEADER_TEXT` as paths (`approvals[].reason`, `data_categories[]`), for documentation and tests. */
export const HEADER_TEXT_FIELDS: readonly string[] = Object.entries(HEADER_TEXT).flatMap(([field, names]) => {
  const path = (p: string): string => (HEADER_LISTS.has(p) ? `${p}[]` : p);
  return names === true ? [path(field)] : names.map((n) => path(`${path(field)}.${n}`));
});

/** A pattern whose shape alone does not make a secret can ask for a second look at each match. */
interface BuiltinRule extends RedactionRule {
  accept?: (match: string) => boolean;
}

/**
 * `Basic` is also an English word: a match counts only when what follows decodes (base64) to
 * printable `user:password`, which is what RFC 7617 credentials are.
 */
function isBasicCredential(match: string): boolean {
  const b64 = match.replace(/^basic(?:\s+|%20|\+)/i, '').replace(/%3D/gi, '=');
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  return decoded.includes(':') && !/[\u0000-\u001f\u007f\ufffd]/.test(decoded);
}

// Schemes are matched after a non-letter rather than at a word boundary, so that URL-encoded
// headers (`Authorization%3A%20Bearer%20…`, where a digit precedes the scheme) are found too.
export const BUILTIN_PATTERNS: readonly RedactionRule[] = [
  { name: 'private-key', pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g },
  { name: 'bearer', pattern: /(?<![A-Za-z])Bearer(?:\s+|%20|\+)[A-Za-z0-9._~+/-]{8,}(?:=|%3D)*/gi },
  { name: 'basic-auth', pattern: /(?<![A-Za-z])Basic(?:\s+|%20|\+)[A-Za-z0-9+/]{8,}(?:=|%3D){0,2}/gi, accept: isBasicCredential } as BuiltinRule,
  // `Authorization: Token 9944b0…` (Django REST framework, GitHub's `token ghp_…`): a value with a digit, 12 characters or more.
  { name: 'token-scheme', pattern: /(?<![A-Za-z])Token(?:\s+|%20|\+)(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{12,}=*/gi },
  // The password of scheme://user:password@host (or scheme://:password@host); the user and host stay readable.
  { name: 'url-credentials', pattern: /(?<=\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s/@]+(?=@)/gi },
  { name: 'api-key', pattern: /\bsk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{16,}/g },
  { name: 'aws-key', pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g },
  { name: 'github-token', pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b/g },
  { name: 'slack-token', pattern: /\bxox[abprs]-[A-Za-z0-9-]{10,}/g },
  { name: 'jwt', pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g },
  { name: 'google-api-key', pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g },
];

/**
 * Key names are compared after lower-casing and dropping everything but letters and digits, so
 * `DB_PASSWORD`, `secretAccessKey`, `x-api-key` and `OPENAI_API_KEY` all match. A key matches when
 * its normalised name contains one of these fragments, is one of `BUILTIN_EXACT_KEYS`, or ends in
 * `token` (not `tokens`, so usage counts such as `input_tokens` and `max_tokens` are kept) and is not
 * one of `NON_SECRET_TOKEN_KEYS`.
 */
export const BUILTIN_SECRET_KEYS: readonly string[] = [
  'password',
  'passwd',
  'passphrase',
  'passcode',
  'secret',
  'apikey',
  'accesskey',
  'privatekey',
  'privkey',
  'authorization',
  'cookie',
  'credential',
  'signature',
  'pwd',
];

/**
 * Short names that mean a secret only as a whole key or its last word (`pass`, `db_pass`, but not
 * `passenger`; `auth`, `x-auth`, not `author`; `pin`, `userPin`, not `pinned`).
 */
const BUILTIN_EXACT_KEYS: readonly string[] = ['pass', 'auth', 'authkey', 'tokenvalue', 'bearer', 'pin', 'otp', 'totp'];

/**
 * Tokens that correlate or page rather than authenticate: MCP's `progressToken` (also under
 * `_meta`), and the pagination cursors of cloud APIs (`nextPageToken`, `NextToken`,
 * `continuationToken`, `syncToken`). A key ending in one of these is not a secret.
 */
const NON_SECRET_TOKEN_KEYS: readonly string[] = ['progresstoken', 'pagetoken', 'nexttoken', 'continuationtoken', 'synctoken', 'resumetoken', 'cursortoken', 'paginationtoken', 'cancellationtoken'];

/** Names that are secrets only as a query parameter (`?key=AIza…`, `&sig=…`), not in prose (`primary key: id`). */
const QUERY_ONLY_KEYS: ReadonlySet<string> = new Set(['key', 'sig']);

/** Headers whose whole value is the credential, scheme and all (`Authorization: Digest …`, `Cookie: a=1; b=2`). */
const WHOLE_LINE_KEYS: ReadonlySet<string> = new Set(['authorization', 'proxyauthorization', 'cookie', 'setcookie']);

/** Returned by Redactor.redactPlainJson for a value that is not plain JSON (see there). */
export const NOT_PLAIN: unique symbol = Symbol('not plain JSON');
/** Plain values nested deeper than this take toJsonValue's walk, which also names a cycle. */
const PLAIN_MAX_DEPTH = 64;

/** Header strings up to this long, and this many of them, are remembered as holding no secret. */
const MAX_CACHED_HEADER_CHARS = 256;
const MAX_CACHED_HEADER_STRINGS = 1024;

/** JSON text longer than this is searched as free text only (bounded work and memory per string). */
const MAX_JSON_TEXT_CHARS = 8 * 1024 * 1024;
/** Levels of JSON text inside a string inside JSON text that are parsed; deeper ones are searched as free text. */
const MAX_TEXT_DEPTH = 3;
/** Objects and arrays nested deeper than this in one JSON text make it free text (no deep recursion on hostile input). */
const MAX_JSON_NESTING = 256;

/**
 * Cheap first looks, so that the common string (no secret) costs one regex test instead of a dozen.
 * Every built-in pattern's match contains one of these anchors, and every built-in key name (as
 * written, before normalising) contains one of these fragments; test/recorder/redaction.test.ts
 * checks both.
 */
// In two parts, because only the schemes match in any case and a case-insensitive alternation
// is scanned about three times slower: 0.48 → 0.32 µs over a tool call's seven strings.
const BUILTIN_HINT = /bearer|basic|token/i;
const BUILTIN_HINT_CASED = /PRIVATE KEY|:\/\/|sk-|AKIA|ASIA|gh[pousr]_|github_pat_|xox[abprs]-|eyJ|AIza/;
const KEY_HINT = /pass|pwd|secret|key|auth|cookie|credential|sig|token|bearer|pin|otp/i;

const REDACTED = '[REDACTED:';
const REDACTED_KEY_JSON = '"[REDACTED:key]"';

/**
 * A command-line flag (`--password hunter2`, `--token=…`: groups 1), or a key, optionally quoted
 * (`"key"`, `'key'`, `\"key\"` in JSON inside a string: groups 2 and 3), then `=`, `=>` or `:`.
 */
const ASSIGNMENT = /(?<![A-Za-z0-9_.])(?:--([A-Za-z][A-Za-z0-9_.-]{0,63})(?:[ \t]*=[ \t]*|[ \t]+)|(\\*["']?)([A-Za-z_][A-Za-z0-9_.-]{0,63})\2[ \t]*(?:=>|=|:)[ \t]*)/g;
const QUOTE_AT = /(\\*)(["'])/y;
// A closing bracket ends a bare value only where it closes something (`(password: x)`); inside a
// token (`abc)def`) it is part of the secret, which must not leak its tail.
const BARE_VALUE_AT = /(?:[^\s&#,;"'<>\\)\]}]|[)\]}](?=[^\s&#,;"'<>\\)\]}])|\\(?![nrt"'\\/]))+/y;
// A header's value runs to the end of its line (in JSON-escaped text, to an escaped newline); when
// the header was itself opened by a quote (`"Cookie: a=1" was sent`), to that quote.
const LINE_VALUE_AT = /(?:[^\r\n\\]|\\(?![nr]))+/y;
const QUOTED_LINE_VALUE_AT = /(?:[^\r\n"\\]|\\(?![nr"]))+/y;
const LOOKS_LIKE_JSON = /^\s*[[{]/;
const NUMBER_AT = /-?\d+(?:\.\d*)?(?:[eE][+-]?\d*)?/y;

/** A name in a name/value list or a `[name, value]` pair: one identifier-like word, as a key in text is. */
const NAME_LIKE = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** `{name: "DB_PASSWORD", value: "…"}` (Kubernetes env, HAR headers, AWS `{Name, Value}`): the members that hold the name and the value. */
const NAME_KEYS: ReadonlySet<string> = new Set(['name', 'Name', 'NAME', 'key', 'Key', 'KEY']);
const VALUE_KEYS: ReadonlySet<string> = new Set(['value', 'Value', 'VALUE']);
/** An argument vector's command whose options carry passwords: `mysql -pPASSWORD`, `curl -u user:password` (any path, `.exe`). */
const CLI_COMMAND = /^(?:.*[/\\])?(curl|mysql[a-z]*|mariadb[a-z-]*)(?:\.exe)?$/;
/** A long flag as one element of an argument vector (`--api-key`), whose value is the next element. */
const SECRET_FLAG = /^--([A-Za-z][A-Za-z0-9_.-]{0,63})$/;
/** curl's `-uuser:password` or `--user=user:password` as one element: group 1 is kept. */
const CURL_USER_ELEMENT = /^((?:-u|--user=)[^:]*:)(?!$)/;
const CLI_REDACTED = '[REDACTED:cli-password]';

/**
 * Command lines in text: a `curl` or `mysql`-family command word (any path, `.exe`), up to the end
 * of its command (a line break, `;`, `|` or `&&`). Within one, `-pPASSWORD` (mysql: `-p` with the
 * value attached; `-p` alone prompts, `-P` is the port) and the password of `-u user:password`,
 * `-uuser:password`, `--user user:password` or `--user=user:password` (curl) are redacted.
 */
const COMMAND_HINT = /curl|mysql|mariadb/;
// A path before the word (`/usr/bin/curl`) ends in a separator, which the look-behind allows.
const COMMAND_AT = /(?<![\w.-])(curl|mysql[a-z]*|mariadb[a-z-]*)(?:\.exe)?(?![\w.-])/g;
const COMMAND_END = /[\r\n;|]|&&/g;
const MYSQL_PASSWORD = /(^|\s)-p('[^']*'|"[^"]*"|[^\s'"]+)/g;
const CURL_PASSWORD = /(^|\s)(-u|--user(?![\w-]))([ \t]*=?[ \t]*['"]?[^\s:'"]*:)([^\s'"]+)/g;

/** `named`: a key the caller listed, blanked whatever it holds; `secret`: blanked when a non-empty string, a number or an array; `search`: searched. */
export type KeyRule = 'named' | 'secret' | 'search';

interface TextHost {
  redactText(s: string, depth: number): string;
  keyRule(key: string): KeyRule;
  nameRule(name: string | undefined): KeyRule;
  listEdits(elems: readonly Element[], inList: boolean): Array<[number, string]>;
}

/** The last word of a key: after the last separator or lower-to-upper case change (`userPin` → `Pin`). */
const LAST_WORD = /(?:[A-Z]?[a-z0-9]+|[A-Z0-9]+)$/;

function normaliseKey(k: string): string {
  return k.toLowerCase().replace(/[^a-z0-9]/g, '');
}

export class Redactor {
  private readonly builtinPatterns: BuiltinRule[];
  private readonly customPatterns: RedactionRule[];
  private readonly fragments: string[];
  /** keyRule per key as written: keys repeat (every row of a result has the same ones). */
  private readonly keyRules = new Map<string, KeyRule>();
  private readonly exactKeys: Set<string>;
  /** The built-in key rules (fragments, `…token`, query-only names) are on. */
  private readonly builtinKeys: boolean;
  private readonly builtinExact: Set<string>;
  /** Header strings that redaction leaves as they are (see headerString). */
  private readonly cleanHeaderText = new Set<string>();

  constructor(config: RedactionConfig = {}) {
    const builtins = config.builtins ?? true;
    const compile = (r: BuiltinRule): BuiltinRule => ({
      name: r.name,
      pattern: new RegExp(r.pattern.source, r.pattern.flags.includes('g') ? r.pattern.flags : `${r.pattern.flags}g`),
      ...(r.accept === undefined ? {} : { accept: r.accept }),
    });
    this.builtinPatterns = builtins ? BUILTIN_PATTERNS.map(compile) : [];
    this.customPatterns = (config.patterns ?? []).map(compile);
    this.fragments = builtins ? BUILTIN_SECRET_KEYS.map(normaliseKey) : [];
    this.exactKeys = new Set((config.keys ?? []).map(normaliseKey));
    this.builtinExact = new Set(builtins ? BUILTIN_EXACT_KEYS : []);
    this.builtinKeys = builtins;
  }

  isSecretKey(key: string): boolean {
    const k = normaliseKey(key);
    if (this.exactKeys.has(k) || this.builtinExact.has(k)) return true;
    if (this.builtinExact.size > 0) {
      // `db_pass`, `x-auth`, `userPin`: a short name as the key's last word.
      const last = LAST_WORD.exec(key)?.[0].toLowerCase();
      if (last !== undefined && this.builtinExact.has(last)) return true;
    }
    if (this.builtinKeys && k.endsWith('token') && !NON_SECRET_TOKEN_KEYS.some((t) => k.endsWith(t))) return true;
    for (const f of this.fragments) if (k.includes(f)) return true;
    return false;
  }

  /** Returns a redacted copy; the input is never mutated. Non-JSON values pass through for the validator to name. */
  redact<T>(value: T): T {
    return this.walk(value, new WeakSet()) as T;
  }

  /** Redacts one string: as JSON text when it is JSON, else as free text (see the module comment). */
  redactString(s: string): string {
    return this.redactText(s, 0);
  }

  /**
   * A copy of an event's header fields with every caller-written text field (`HEADER_TEXT_FIELDS`)
   * redacted as a string; the input is never mutated. The header is hashed and is all an export
   * that withholds payloads still shows, so a secret there is as permanent as one in `data`.
   */
  redactHeader<T extends object>(fields: T): T {
    return this.redactHeaderOf({ ...(fields as Record<string, unknown>) }) as T;
  }

  /**
   * redactHeader on a top-level object the caller has just built and owns (the recorder's own
   * header literal), redacted in place instead of copied once more. Nested objects (`agent`,
   * `policy`, …) are still the caller's: they are copied, and only when a member changes.
   */
  redactOwnHeader(fields: Record<string, unknown>): Record<string, unknown> {
    return this.redactHeaderOf(fields);
  }

  private redactHeaderOf(out: Record<string, unknown>): Record<string, unknown> {
    // Runs once per event: a table read once and methods, not closures made per call.
    for (let i = 0; i < HEADER_TEXT_ENTRIES.length; i++) {
      const [field, names] = HEADER_TEXT_ENTRIES[i]!;
      if (!Object.hasOwn(out, field)) continue;
      const v = out[field];
      out[field] = names === true ? this.headerText(v) : Array.isArray(v) ? v.map((x) => this.headerMembers(x, names)) : this.headerMembers(v, names);
    }
    return out;
  }

  private headerText(v: unknown): unknown {
    return typeof v === 'string' ? this.headerString(v) : Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? this.headerString(x) : x)) : v;
  }

  /**
   * Header strings repeat from event to event (agent ids, versions, host, resource, action), and
   * most hold no secret: those are remembered, so the next event's copy costs a set lookup instead
   * of a dozen scans (redaction is a function of the string alone). Only strings that came out
   * unchanged are kept, so no secret is held here longer than the caller holds it.
   */
  private headerString(s: string): string {
    if (this.cleanHeaderText.has(s)) return s;
    const out = this.redactText(s, 0);
    if (out === s && s.length <= MAX_CACHED_HEADER_CHARS) {
      if (this.cleanHeaderText.size >= MAX_CACHED_HEADER_STRINGS) this.cleanHeaderText.clear();
      this.cleanHeaderText.add(s);
    }
    return out;
  }

  private headerMembers(v: unknown, names: readonly string[]): unknown {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const src = v as Record<string, unknown>;
    // Still a copy, though nothing may change: the caller keeps the object and could alter it.
    const copy: Record<string, unknown> = { ...src };
    for (const n of names) if (Object.hasOwn(copy, n)) copy[n] = this.headerText(copy[n]);
    return copy;
  }

  /** What a JsonText needs from its redactor. */
  private readonly host: TextHost = {
    redactText: (s, depth) => this.redactText(s, depth),
    keyRule: (k) => this.keyRule(k),
    nameRule: (n) => this.nameRule(n),
    listEdits: (elems, inList) => this.listEdits(elems, inList),
  };

  /** `depth` counts the JSON texts this string is nested in. */
  private redactText(s: string, depth: number): string {
    if (depth < MAX_TEXT_DEPTH && s.length <= MAX_JSON_TEXT_CHARS && LOOKS_LIKE_JSON.test(s)) {
      const rewritten = new JsonText(s, this.host, depth).redact();
      if (rewritten !== undefined) return rewritten;
    }
    return this.redactFreeText(s);
  }

  /** How a member's value is treated: blanked whatever it holds, blanked when scalar or array, or searched. */
  keyRule(key: string): KeyRule {
    let rule = this.keyRules.get(key);
    if (rule === undefined) {
      rule = this.exactKeys.has(normaliseKey(key)) ? 'named' : this.isSecretKey(key) ? 'secret' : 'search';
      if (this.keyRules.size >= 4096) this.keyRules.clear();
      this.keyRules.set(key, rule);
    }
    return rule;
  }

  private redactFreeText(s: string): string {
    let out = s;
    if (this.builtinPatterns.length > 0 && (BUILTIN_HINT.test(out) || BUILTIN_HINT_CASED.test(out))) out = applyPatterns(out, this.builtinPatterns);
    if (this.builtinKeys && COMMAND_HINT.test(out)) out = redactCommandLines(out);
    if (this.customPatterns.length > 0) out = applyPatterns(out, this.customPatterns);
    // Custom keys are matched after normalising, which no first look on the raw text can predict.
    // Text with no `=`, `:` or `--` has no assignment (redactAssignments returns it as is): looked
    // for first, since searching for a character is cheaper than KEY_HINT's case-insensitive scan.
    if (this.exactKeys.size === 0 && (!this.builtinKeys || !mayAssign(out) || !KEY_HINT.test(out))) return out;
    return this.redactAssignments(out);
  }

  /** `key=value`, `key: value`, `"key": "value"`, `?key=value&…` and header lines whose key names a secret. */
  private redactAssignments(s: string): string {
    if (!mayAssign(s)) return s;
    const re = ASSIGNMENT;
    re.lastIndex = 0;
    const parts: string[] = [];
    let last = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(s)) !== null) {
      const flag = m[1] !== undefined;
      const key = m[1] ?? m[3]!;
      const quote = m[2] ?? '';
      const before = m.index > 0 ? s[m.index - 1] : '';
      const query = !flag && quote === '' && (before === '?' || before === '&');
      const norm = normaliseKey(key);
      if (this.keyRule(key) === 'search' && !(query && this.builtinKeys && QUERY_ONLY_KEYS.has(norm))) continue;
      const at = m.index + m[0].length;
      // `--password --verbose`: the flag has no value here.
      if (flag && s[at] === '-') continue;
      const header = !flag && m[0].trimEnd().endsWith(':') && WHOLE_LINE_KEYS.has(norm);
      const span = valueSpan(s, at, header ? (quote === '' && (before === '"' || before === "'") ? 'quoted-line' : 'line') : 'bare');
      if (span === undefined) continue;
      parts.push(s.slice(last, span.start), `[REDACTED:${query ? 'query-secret' : 'assigned-secret'}]`);
      last = span.end;
      if (re.lastIndex < span.end) re.lastIndex = span.end;
    }
    if (parts.length === 0) return s;
    parts.push(s.slice(last));
    return parts.join('');
  }

  private walk(v: unknown, seen: WeakSet<object>, inList = false): unknown {
    if (typeof v === 'string') return this.redactText(v, 0);
    if (typeof v !== 'object' || v === null) return v;
    // Cycles are left for the canonicaliser, which names them precisely.
    if (seen.has(v)) return v;
    if (Array.isArray(v)) {
      seen.add(v);
      const out = v.map((x) => this.walk(x, seen, true));
      seen.delete(v);
      if (typeof v[0] === 'string' && mayNeedListEdits(v, inList)) for (const [i, rep] of this.listEdits(v.map(elementOf), inList)) out[i] = rep;
      return out;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) return v;
    seen.add(v);
    const rec = v as Record<string, unknown>;
    // `{name: "DB_PASSWORD", value: "…"}`: the value is treated as if the name were its key.
    const valueRule = rec['value'] !== undefined || rec['Value'] !== undefined || rec['VALUE'] !== undefined ? this.siblingNameRule(rec) : 'search';
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(rec)) {
      // A key the caller named is blanked whatever it holds; a container that merely looks secret
      // (`credentials: {user, password}`) is searched instead, so the record keeps what is not.
      // Arrays of values (`X-Api-Key: ['k-1']`) are blanked like scalars; only objects are searched.
      let rule = this.keyRule(k);
      if (rule === 'search' && valueRule !== 'search' && VALUE_KEYS.has(k)) rule = valueRule;
      setMember(out, k, rule !== 'search' && blanks(rule, elementOf(x)) ? '[REDACTED:key]' : this.walk(x, seen));
    }
    seen.delete(v);
    return out;
  }

  /**
   * `redact(toJsonValue(value))` in one walk, for the common value that is plain JSON already:
   * plain objects and arrays (no `toJSON`, no holes), well-formed strings, finite numbers within
   * 2^53, booleans and null, nested less than `PLAIN_MAX_DEPTH` deep. For those toJsonValue only
   * copies (dropping undefined members, turning -0 into 0, putting members in JCS order), so the
   * result is the same but for member order, which canonical encoding sorts anyway. Anything else
   * (a Date, a class instance, a cycle, a value toJsonValue refuses) returns `NOT_PLAIN` before any
   * conversion, and the caller takes the two walks, so every conversion and error stays
   * toJsonValue's. Each member and element is read once, as toJsonValue reads it.
   */
  redactPlainJson(value: unknown): unknown {
    if (value === undefined) return NOT_PLAIN;
    try {
      return this.plainWalk(value, 0, false);
    } catch (e) {
      if (e === NOT_PLAIN) return NOT_PLAIN;
      throw e;
    }
  }

  /** See redactPlainJson; throws NOT_PLAIN. The rules are walk's, applied to what toJsonValue would copy. */
  private plainWalk(v: unknown, depth: number, inList: boolean): unknown {
    switch (typeof v) {
      case 'string':
        if (!isWellFormedString(v)) throw NOT_PLAIN;
        return this.redactText(v, 0);
      case 'number':
        // What toJsonValue refuses: not finite, or an integer JCS would write beyond 2^53.
        if (!Number.isFinite(v) || (Number.isInteger(v) && !Number.isSafeInteger(v) && Math.abs(v) < 1e21)) throw NOT_PLAIN;
        return v === 0 ? 0 : v;
      case 'boolean':
        return v;
      case 'object':
        if (v === null) return null;
        // Also what ends a cycle here: toJsonValue then names it.
        if (depth >= PLAIN_MAX_DEPTH) throw NOT_PLAIN;
        return Array.isArray(v) ? this.plainArray(v, depth, inList) : this.plainObject(v, depth);
      default:
        throw NOT_PLAIN;
    }
  }

  private plainArray(v: readonly unknown[], depth: number, inList: boolean): unknown[] {
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') throw NOT_PLAIN;
    // Read once: the list rules below look at the elements as they were.
    const src = v.slice();
    const n = src.length;
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      const x = src[i];
      if (x === undefined) throw NOT_PLAIN;
      out[i] = this.plainWalk(x, depth + 1, true);
    }
    if (typeof src[0] === 'string' && mayNeedListEdits(src, inList)) for (const [i, rep] of this.listEdits(src.map(elementOf), inList)) out[i] = rep;
    return out;
  }

  private plainObject(v: object, depth: number): Record<string, unknown> {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) throw NOT_PLAIN;
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') throw NOT_PLAIN;
    const rec = v as Record<string, unknown>;
    const keys = Object.keys(rec);
    const n = keys.length;
    const vals = new Array<unknown>(n);
    let hasValue = false;
    let sorted = true;
    for (let i = 0; i < n; i++) {
      const k = keys[i]!;
      if (!isWellFormedString(k)) throw NOT_PLAIN;
      const x = rec[k];
      vals[i] = x;
      if (x !== undefined && VALUE_KEYS.has(k)) hasValue = true;
      if (i > 0 && k < keys[i - 1]!) sorted = false;
    }
    // `{name: "DB_PASSWORD", value: "…"}`: as siblingNameRule decides it on toJsonValue's copy.
    let valueRule: KeyRule = 'search';
    if (hasValue) {
      for (const nk of NAME_KEYS) {
        const at = keys.indexOf(nk);
        const name = at === -1 ? undefined : vals[at];
        if (typeof name !== 'string') continue;
        const rule = this.nameRule(name);
        if (rule !== 'search') {
          valueRule = rule;
          break;
        }
      }
    }
    // The copy is built in JCS order, as toJsonValue builds it, so that encoding it next
    // (prepareEvent) finds it in order instead of sorting and copying it once more.
    const order = sorted ? undefined : keys.map((_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : 1));
    const out: Record<string, unknown> = {};
    for (let j = 0; j < n; j++) {
      const i = order === undefined ? j : order[j]!;
      const x = vals[i];
      if (x === undefined) continue;
      const k = keys[i]!;
      let rule = this.keyRule(k);
      if (rule === 'search' && valueRule !== 'search' && VALUE_KEYS.has(k)) rule = valueRule;
      // Walked even when blanked: toJsonValue would refuse what is inside a secret too.
      const walked = this.plainWalk(x, depth + 1, false);
      setMember(out, k, rule !== 'search' && blanks(rule, elementOf(x)) ? '[REDACTED:key]' : walked);
    }
    return out;
  }

  /** The rule a name gives the value beside it (`{name, value}`, `[name, value]`); `search` unless it names a secret. */
  nameRule(name: string | undefined): KeyRule {
    return name !== undefined && NAME_LIKE.test(name) ? this.keyRule(name) : 'search';
  }

  private siblingNameRule(rec: Record<string, unknown>): KeyRule {
    for (const k of NAME_KEYS) {
      const n = rec[k];
      if (typeof n === 'string' && Object.hasOwn(rec, k)) {
        const rule = this.nameRule(n);
        if (rule !== 'search') return rule;
      }
    }
    return 'search';
  }

  /**
   * Replacements (index → new string) for a list whose first element is a string: the second of a
   * `[name, value]` pair inside a list (`[["X-Api-Key", "…"]]`) when the name is a secret's; in an
   * argument vector, the element after a flag naming a secret (`--api-key`, `…`), and, after a
   * `mysql`-family command, `-pPASSWORD`, after `curl`, the password of `-u user:password`.
   */
  listEdits(elems: readonly Element[], inList: boolean): Array<[number, string]> {
    const out: Array<[number, string]> = [];
    if (inList && elems.length === 2 && blanks(this.nameRule(elems[0]!.str), elems[1]!)) out.push([1, '[REDACTED:key]']);
    let cmd: string | undefined;
    for (let i = 0; i < elems.length; i++) {
      const s = elems[i]!.str;
      if (s === undefined) continue;
      const c = this.builtinKeys ? CLI_COMMAND.exec(s) : null;
      if (c !== null) {
        cmd = c[1] === 'curl' ? 'curl' : 'mysql';
        continue;
      }
      const next = elems[i + 1]?.str;
      const flag = SECRET_FLAG.exec(s);
      if (flag !== null && next !== undefined && next !== '' && !next.startsWith('-') && this.keyRule(flag[1]!) !== 'search') {
        out.push([++i, '[REDACTED:key]']);
      } else if (cmd === 'mysql' && s.length > 2 && s.startsWith('-p')) {
        out.push([i, `-p${CLI_REDACTED}`]);
      } else if (cmd === 'curl' && (s === '-u' || s === '--user') && next !== undefined) {
        const colon = next.indexOf(':');
        if (colon !== -1 && colon < next.length - 1) out.push([++i, `${next.slice(0, colon + 1)}${CLI_REDACTED}`]);
      } else if (cmd === 'curl') {
        const m = CURL_USER_ELEMENT.exec(s);
        if (m !== null) out.push([i, `${m[1]}${CLI_REDACTED}`]);
      }
    }
    return out;
  }
}

/** What the list and name/value rules need to know of a value: its type, and its text if a string. */
export interface Element {
  type: 'string' | 'number' | 'boolean' | 'null' | 'array' | 'object' | 'none';
  str?: string;
}

/**
 * Whether a list that starts with a string can get an edit from Redactor.listEdits: it is a pair in
 * a list, or holds an option (every argument-vector rule acts at a string starting with `-`).
 */
function mayNeedListEdits(v: readonly unknown[], inList: boolean): boolean {
  if (inList && v.length === 2) return true;
  for (const x of v) if (typeof x === 'string' && x.charCodeAt(0) === 0x2d) return true;
  return false;
}

function elementOf(x: unknown): Element {
  if (typeof x === 'string') return { type: 'string', str: x };
  if (x === null || x === undefined) return { type: 'null' };
  if (Array.isArray(x)) return { type: 'array' };
  const t = typeof x;
  return { type: t === 'number' ? 'number' : t === 'boolean' ? 'boolean' : 'object' };
}

/** `named`: blanked unless null; `secret`: blanked when a non-empty string, a number or a list; `search`: never. */
function blanks(rule: KeyRule, e: Element): boolean {
  if (rule === 'named') return e.type !== 'null' && e.type !== 'none';
  if (rule === 'secret') return (e.type === 'string' && e.str !== '') || e.type === 'number' || e.type === 'array';
  return false;
}

/**
 * `out[k] = v` with k = "__proto__" sets the copy's prototype instead of adding a member: a string
 * value would vanish from the record (though it was forwarded), an object value would make the
 * copy unrecordable. JSON gives that name no meaning, so it is defined as an ordinary member.
 */
function setMember(out: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  else out[k] = v;
}

/** Whether `s` has what every assignment ASSIGNMENT finds needs: `=`, `:` or `--`. */
function mayAssign(s: string): boolean {
  return s.indexOf('=') !== -1 || s.indexOf(':') !== -1 || s.indexOf('--') !== -1;
}

/** See COMMAND_AT: each command is read once, to its end, so the work is linear in the text. */
function redactCommandLines(s: string): string {
  COMMAND_AT.lastIndex = 0;
  const parts: string[] = [];
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = COMMAND_AT.exec(s)) !== null) {
    const from = m.index + m[0].length;
    COMMAND_END.lastIndex = from;
    const end = COMMAND_END.exec(s)?.index ?? s.length;
    const args = s.slice(from, end);
    const redacted = m[1] === 'curl' ? args.replace(CURL_PASSWORD, `$1$2$3${CLI_REDACTED}`) : args.replace(MYSQL_PASSWORD, `$1-p${CLI_REDACTED}`);
    if (redacted !== args) {
      parts.push(s.slice(last, from), redacted);
      last = end;
    }
    COMMAND_AT.lastIndex = end;
  }
  if (parts.length === 0) return s;
  parts.push(s.slice(last));
  return parts.join('');
}

function applyPatterns(s: string, rules: readonly BuiltinRule[]): string {
  let out = s;
  for (const { name, pattern, accept } of rules) {
    pattern.lastIndex = 0;
    if (!pattern.test(out)) continue;
    pattern.lastIndex = 0;
    out = accept === undefined ? out.replace(pattern, `[REDACTED:${name}]`) : out.replace(pattern, (m) => (accept(m) ? `[REDACTED:${name}]` : m));
  }
  return out;
}

/**
 * Where the value after `key=` / `key:` starts and ends: a quoted string (to its closing quote, or
 * the end of a cut-off text), the rest of the line for whole-line headers, else one bare token.
 * Undefined when there is nothing to redact (empty, or already redacted).
 */
function valueSpan(s: string, at: number, extent: 'bare' | 'line' | 'quoted-line'): { start: number; end: number } | undefined {
  if (s.startsWith(REDACTED, at)) return undefined;
  QUOTE_AT.lastIndex = at;
  const q = QUOTE_AT.exec(s);
  if (q !== null) {
    const open = q[0];
    const start = at + open.length;
    let end: number;
    if (q[1] === '') {
      let i = start;
      while (i < s.length && s[i] !== q[2]) i += s[i] === '\\' ? 2 : 1;
      end = Math.min(i, s.length);
    } else {
      // Quotes escaped once or more (JSON inside a JSON string): the value ends at the same escaped quote.
      const i = s.indexOf(open, start);
      end = i === -1 ? s.length : i;
    }
    if (end <= start || s.startsWith(REDACTED, start)) return undefined;
    return { start, end };
  }
  const re = extent === 'bare' ? BARE_VALUE_AT : extent === 'line' ? LINE_VALUE_AT : QUOTED_LINE_VALUE_AT;
  re.lastIndex = at;
  const v = re.exec(s);
  if (v === null) return undefined;
  const end = at + v[0].trimEnd().length;
  return end > at ? { start: at, end } : undefined;
}

/** A `{name, value}` object as JsonText reads it: the rule the name gives, and where the value is. */
interface Pair {
  rule: KeyRule;
  value?: { start: number; end: number; element: Element };
}

/** Raised inside JsonText when the text is not JSON after all; the caller then treats it as free text. */
const NOT_JSON = Symbol('not JSON');

/**
 * One JSON text (or several, newline-delimited), read once with a small recursive-descent scanner
 * that records edits instead of building values: unchanged bytes are copied, so numbers beyond
 * 2^53, spacing and key order survive exactly. Reaching the end of the text mid-value is not an
 * error (the text was cut off); anything else that is not JSON makes the caller fall back.
 */
class JsonText {
  private i = 0;
  private readonly n: number;
  /** Replacements [start, end, text]: in order of start, never overlapping. */
  private readonly edits: Array<[number, number, string]> = [];
  /** Inside a value that is being blanked as a whole: scanned for its end, not searched. */
  private quiet = 0;
  /** The text of the last string value scanned, and whether the text ran out inside it. */
  private text = '';
  private complete = true;

  constructor(
    private readonly s: string,
    private readonly redactor: TextHost,
    private readonly depth: number,
  ) {
    this.n = s.length;
  }

  redact(): string | undefined {
    try {
      this.ws();
      while (this.i < this.n) {
        const c = this.s[this.i];
        if (c !== '{' && c !== '[') throw NOT_JSON;
        this.value(0, false);
        this.ws();
      }
    } catch (e) {
      if (e === NOT_JSON) return undefined;
      throw e;
    }
    if (this.edits.length === 0) return this.s;
    const parts: string[] = [];
    let last = 0;
    for (const [start, end, text] of this.edits) {
      parts.push(this.s.slice(last, start), text);
      last = end;
    }
    parts.push(this.s.slice(last));
    return parts.join('');
  }

  private edit(start: number, end: number, replacement: string): void {
    this.edits.push([start, end, replacement]);
  }

  /**
   * Replaces a value scanned earlier (a sibling decided it is a secret), dropping the edits made
   * inside it. Those are at the end of the list but for the few of later siblings, so each edit is
   * looked at about once: linear, even for a list of 100,000 pairs.
   */
  private replace(start: number, end: number, replacement: string): void {
    const e = this.edits;
    let after = e.length;
    while (after > 0 && e[after - 1]![0] >= end) after--;
    let inside = after;
    while (inside > 0 && e[inside - 1]![0] >= start) inside--;
    e.splice(inside, after - inside, [start, end, replacement]);
  }

  private ws(): void {
    const s = this.s;
    while (this.i < this.n) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.i++;
    }
  }

  private get eof(): boolean {
    return this.i >= this.n;
  }

  /** Scans one value (`inList`: it is an element of an array) and says what it was; a string's text is left in `text`. */
  private value(nesting: number, inList: boolean): Element['type'] {
    if (this.eof) return 'none';
    const c = this.s[this.i]!;
    if (c === '{') {
      this.object(nesting + 1);
      return 'object';
    }
    if (c === '[') {
      this.array(nesting + 1, inList);
      return 'array';
    }
    if (c === '"') {
      this.stringValue();
      return 'string';
    }
    if (c === 't' || c === 'f') {
      this.literal(c === 't' ? 'true' : 'false');
      return 'boolean';
    }
    if (c === 'n') {
      this.literal('null');
      return 'null';
    }
    NUMBER_AT.lastIndex = this.i;
    const m = NUMBER_AT.exec(this.s);
    if (m === null) throw NOT_JSON;
    this.i += m[0].length;
    return 'number';
  }

  private literal(word: string): void {
    const rest = this.s.slice(this.i, this.i + word.length);
    if (rest === word) this.i += word.length;
    else if (this.i + rest.length === this.n && word.startsWith(rest)) this.i = this.n;
    else throw NOT_JSON;
  }

  private object(nesting: number): void {
    if (nesting > MAX_JSON_NESTING) throw NOT_JSON;
    // `{"name": "DB_PASSWORD", "value": "…"}`, in either order: decided once both are read.
    const pair: Pair = { rule: 'search' };
    this.members(nesting, pair);
    if (pair.value !== undefined && this.quiet === 0 && blanks(pair.rule, pair.value.element)) this.replace(pair.value.start, pair.value.end, REDACTED_KEY_JSON);
  }

  private members(nesting: number, pair: Pair): void {
    this.i++;
    this.ws();
    if (this.eof) return;
    if (this.s[this.i] === '}') {
      this.i++;
      return;
    }
    for (;;) {
      if (this.s[this.i] !== '"') throw NOT_JSON;
      const key = this.string();
      if (!key.complete) return;
      this.ws();
      if (this.eof) return;
      if (this.s[this.i] !== ':') throw NOT_JSON;
      this.i++;
      this.ws();
      if (this.eof) return;
      const start = this.i;
      const type = this.member(key.text, nesting);
      if (VALUE_KEYS.has(key.text)) pair.value = { start, end: this.i, element: type === 'string' ? { type, str: this.text } : { type } };
      else if (type === 'string' && this.complete && pair.rule === 'search' && NAME_KEYS.has(key.text)) pair.rule = this.redactor.nameRule(this.text);
      this.ws();
      if (this.eof) return;
      const c = this.s[this.i];
      this.i++;
      if (c === '}') return;
      if (c !== ',') throw NOT_JSON;
      this.ws();
      if (this.eof) return;
    }
  }

  /** A member's value, blanked as the object walk would blank it. */
  private member(key: string, nesting: number): Element['type'] {
    if (this.quiet > 0) return this.value(nesting, false);
    const rule = this.redactor.keyRule(key);
    const c = this.s[this.i];
    const blank = rule === 'named' ? c !== 'n' : rule === 'secret' && (c === '[' || c === '-' || (c !== undefined && c >= '0' && c <= '9') || (c === '"' && this.s[this.i + 1] !== '"'));
    if (!blank) return this.value(nesting, false);
    const start = this.i;
    let type: Element['type'];
    this.quiet++;
    try {
      type = this.value(nesting, false);
    } finally {
      this.quiet--;
    }
    this.edit(start, this.i, REDACTED_KEY_JSON);
    return type;
  }

  private array(nesting: number, inList: boolean): void {
    if (nesting > MAX_JSON_NESTING) throw NOT_JSON;
    // A list that starts with a string (an argument vector, a pair) keeps where its elements are and
    // what they hold, for Redactor.listEdits; flat arrays, so a long list costs no object per element.
    let track = this.quiet === 0;
    const spans: number[] = [];
    const elements: Element[] = [];
    let complete = true;
    let option = false;
    this.i++;
    this.ws();
    if (!this.eof && this.s[this.i] === ']') {
      this.i++;
      return;
    }
    while (!this.eof) {
      const start = this.i;
      const type = this.value(nesting, true);
      if (track) {
        if (elements.length === 0 && type !== 'string') track = false;
        else {
          spans.push(start, this.i);
          elements.push(type === 'string' ? { type, str: this.text } : { type });
          if (type === 'string') {
            complete = this.complete;
            if (this.text.charCodeAt(0) === 0x2d) option = true;
          }
        }
      }
      this.ws();
      if (this.eof) break;
      const c = this.s[this.i];
      this.i++;
      if (c === ']') break;
      if (c !== ',') throw NOT_JSON;
      this.ws();
    }
    if (!track || elements.length === 0 || !(option || (inList && elements.length === 2))) return;
    for (const [k, replacement] of this.redactor.listEdits(elements, inList)) {
      const json = JSON.stringify(replacement);
      // Only the last element can have been cut off by the end of the text.
      const cut = k === elements.length - 1 && !complete;
      this.replace(spans[2 * k]!, spans[2 * k + 1]!, cut ? json.slice(0, -1) : json);
    }
  }

  private stringValue(): void {
    const start = this.i;
    const str = this.string();
    this.text = str.text;
    this.complete = str.complete;
    if (this.quiet > 0) return;
    const redacted = this.redactor.redactText(str.text, this.depth + 1);
    if (redacted === str.text) return;
    const json = JSON.stringify(redacted);
    // A cut-off string stays visibly cut off: no closing quote is invented.
    this.edit(start, this.i, str.complete ? json : json.slice(0, -1));
  }

  /** Reads the string token at `i` and returns its decoded text; one cut off is decoded as far as it goes. */
  private string(): { text: string; complete: boolean } {
    const s = this.s;
    const start = ++this.i;
    let escaped = false;
    while (this.i < this.n) {
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        const raw = s.slice(start, this.i);
        this.i++;
        return { text: escaped ? (JSON.parse(`"${raw}"`) as string) : raw, complete: true };
      }
      if (c < 0x20) throw NOT_JSON;
      if (c === 0x5c) {
        escaped = true;
        const e = s[this.i + 1];
        if (e === undefined) break;
        if (e === 'u') {
          const hex = s.slice(this.i + 2, this.i + 6);
          if (!/^[0-9a-fA-F]*$/.test(hex)) throw NOT_JSON;
          if (hex.length < 4) break;
          this.i += 6;
          continue;
        }
        if (!'"\\/bfnrt'.includes(e)) throw NOT_JSON;
        this.i += 2;
        continue;
      }
      this.i++;
    }
    // Cut off (the loop stops before an escape that lost its end): decode what is there.
    const raw = s.slice(start, this.i);
    this.i = this.n;
    return { text: escaped ? (JSON.parse(`"${raw}"`) as string) : raw, complete: false };
  }
}
