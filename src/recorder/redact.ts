/**
 * Secrets are removed before anything is hashed or written: once in a hash-chained ledger they
 * could never be taken out again without breaking verification.
 */

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

export const BUILTIN_PATTERNS: readonly RedactionRule[] = [
  { name: 'private-key', pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g },
  { name: 'bearer', pattern: /\bBearer\s+[A-Za-z0-9._~+/-]{8,}=*/gi },
  { name: 'basic-auth', pattern: /\bBasic\s+[A-Za-z0-9+/]{8,}={0,2}/g },
  // The password of scheme://user:password@host; the user and host stay readable.
  { name: 'url-credentials', pattern: /(?<=\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s/@]+(?=@)/gi },
  // `password=…`, `api_key: …` written into free text (log lines, error messages, connection strings).
  { name: 'assigned-secret', pattern: /(?<=\b(?:password|passwd|pwd|secret|client_secret|api[_-]?key|access[_-]?token|auth[_-]?token)\s*[=:]\s*)[^\s&#,;"']+/gi },
  { name: 'query-secret', pattern: /(?<=[?&](?:access_token|api_key|apikey|key|token|sig|signature|password|secret)=)[^&#\s]+/gi },
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
 * its normalised name contains one of these fragments, or ends in `token` (but not `tokens`, so
 * LLM usage counts such as `input_tokens` are kept).
 */
export const BUILTIN_SECRET_KEYS: readonly string[] = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'apikey',
  'accesskey',
  'privatekey',
  'authorization',
  'cookie',
  'credential',
  'signature',
  'pwd',
];

/** Short names that mean a secret only as a whole key (`pass`, but not `passenger`; `auth`, not `author`). */
const BUILTIN_EXACT_KEYS: readonly string[] = ['pass', 'auth', 'authkey', 'tokenvalue'];

function normaliseKey(k: string): string {
  return k.toLowerCase().replace(/[^a-z0-9]/g, '');
}

export class Redactor {
  private readonly patterns: RedactionRule[];
  private readonly fragments: string[];
  private readonly exactKeys: Set<string>;

  constructor(config: RedactionConfig = {}) {
    const builtins = config.builtins ?? true;
    this.patterns = [...(builtins ? BUILTIN_PATTERNS : []), ...(config.patterns ?? [])].map((r) => ({
      name: r.name,
      pattern: new RegExp(r.pattern.source, r.pattern.flags.includes('g') ? r.pattern.flags : `${r.pattern.flags}g`),
    }));
    this.fragments = builtins ? BUILTIN_SECRET_KEYS.map(normaliseKey) : [];
    this.exactKeys = new Set((config.keys ?? []).map(normaliseKey));
    this.builtinExact = new Set(builtins ? BUILTIN_EXACT_KEYS : []);
    this.tokenSuffix = builtins;
  }

  private readonly tokenSuffix: boolean;
  private readonly builtinExact: Set<string>;

  isSecretKey(key: string): boolean {
    const k = normaliseKey(key);
    if (this.exactKeys.has(k) || this.builtinExact.has(k)) return true;
    if (this.tokenSuffix && k.endsWith('token')) return true;
    for (const f of this.fragments) if (k.includes(f)) return true;
    return false;
  }

  /** Returns a redacted copy; the input is never mutated. Non-JSON values pass through for the validator to name. */
  redact<T>(value: T): T {
    return this.walk(value, new WeakSet()) as T;
  }

  redactString(s: string): string {
    let out = s;
    for (const { name, pattern } of this.patterns) {
      pattern.lastIndex = 0;
      if (pattern.test(out)) {
        pattern.lastIndex = 0;
        out = out.replace(pattern, `[REDACTED:${name}]`);
      }
    }
    return out;
  }

  private walk(v: unknown, seen: WeakSet<object>): unknown {
    if (typeof v === 'string') return this.redactString(v);
    if (typeof v !== 'object' || v === null) return v;
    // Cycles are left for the canonicaliser, which names them precisely.
    if (seen.has(v)) return v;
    if (Array.isArray(v)) {
      seen.add(v);
      const out = v.map((x) => this.walk(x, seen));
      seen.delete(v);
      return out;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) return v;
    seen.add(v);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      // A key the caller named is blanked whatever it holds; a container that merely looks secret
      // (`credentials: {user, password}`) is searched instead, so the record keeps what is not.
      // Arrays of values (`X-Api-Key: ['k-1']`) are blanked like scalars; only objects are searched.
      const blankable = typeof x === 'string' || typeof x === 'number' || Array.isArray(x);
      const named = x !== null && x !== undefined && this.exactKeys.has(normaliseKey(k));
      out[k] = named || (blankable && x !== '' && this.isSecretKey(k)) ? '[REDACTED:key]' : this.walk(x, seen);
    }
    seen.delete(v);
    return out;
  }
}
