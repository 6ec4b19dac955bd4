/**
 * Prompt-injection indicators: text inside content an agent reads (a tool's result, a fetched
 * page) that addresses the model rather than the reader. Each rule has a stable id that the
 * `anomaly` event names (README "Monitoring and alerts" lists them). They are indicators, never
 * proof and never a block: the patterns are written for instructions aimed at a model, so that
 * ordinary text using the same words ("you are now logged in", "ignore this email") stays quiet
 * (test/monitor/injection.test.ts holds both kinds of sample).
 */

export interface InjectionRule {
  id: string;
  description: string;
}

export interface InjectionHit {
  rule: string;
  /** The matched text (at most 120 characters, invisible characters written as \u escapes). */
  excerpt: string;
}

/**
 * At most this many characters of one event's content are read (strings in document order): a
 * tool can return megabytes, and the monitor must keep up with the ledger. Text past the bound is
 * not examined, which README says.
 */
export const MAX_SCAN_CHARS = 256 * 1024;

const INVISIBLE = /[\u200b-\u200d\u2060\ufeff\u180e]/g;
const TAG_CHARS = /[\u{E0000}-\u{E007F}]+/gu;

const IGNORE = [
  /\b(?:ignore|disregard|forget|override|skip)\s+(?:(?:all|any|the|your|of|these|those)\s+){0,3}(?:previous|prior|above|earlier|preceding|former|original|system)\s+(?:instructions?|prompts?|directions?|rules|guidelines|messages?|context)\b/i,
  /\bforget\s+(?:everything|all(?:\s+of)?\s+(?:that|what))\s+(?:you\s+(?:were|have\s+been)\s+told|above|before)/i,
];
const ROLE = [
  /\byou\s+are\s+now\s+(?:DAN\b|(?:an?|the|in)\s+(?:[\w-]+\s+){0,3}?(?:ai|assistant|model|persona|character|mode|jailbroken|unrestricted|unfiltered|uncensored)\b)/i,
  /\bfrom\s+now\s+on,?\s+you\s+(?:will|must|shall|are\s+to)\s+(?:act|behave|respond|pretend|role-?play)\b/i,
  /\b(?:act|pretend|behave)\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken)\b/i,
];
const FAKE_SYSTEM = [
  /<\|(?:im_start|im_end|system|endoftext)\|>|\[\/?INST\]|<<\/?SYS>>|<\/?system>/i,
  /\[(?:SYSTEM|ADMIN)\][^\n]{0,120}?\b(?:instructions?|assistant|ai|model|you\s+must|ignore)\b/i,
  /^\s*#{1,3}\s*(?:system(?:\s+prompt)?|new\s+instructions)\s*:?\s*$/im,
  /\b(?:system|admin)\s+(?:prompt|override)\s*:/i,
];
const ADDRESSED = [
  /\b(?:note|message|instructions?|attention|important(?:\s+instructions?)?)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?(?:ai|llm|language\s+model|ai\s+assistant|ai\s+agent|assistant|chatbot|gpt|claude)s?\b/i,
  /\bif\s+you\s+are\s+an?\s+(?:ai|llm|large\s+language\s+model|language\s+model|ai\s+assistant|automated\s+agent)\b/i,
];
const EXFIL = [
  /\b(?:send|post|upload|forward|email|e-mail|transmit|exfiltrate|leak|append|include|attach|submit)\b[^.!?\n]{0,80}?\b(?:api[\s_-]?keys?|secrets?|passwords?|passphrases?|credentials?|(?:access|auth|bearer|session)\s+tokens?|private\s+keys?|ssh\s+keys?|environment\s+variables|env\s+vars?|cookies)\b[^.!?\n]{0,80}?(?:https?:\/\/|\b[\w.+-]+@[\w-]+\.[\w.-]+|\bwebhook\b|\bthis\s+(?:url|address|endpoint|link)\b)/i,
  // A markdown image whose URL carries a placeholder to fill in: rendering it sends the data.
  /!\[[^\]]{0,200}\]\(https?:\/\/[^)\s]{0,300}[?&][^)\s=]{1,50}=(?:\{|\$|<|%7B)/i,
];
const HIDDEN_HTML_BODY = /\b(?:ignore|disregard|assistant|ai|llm|model|agent|instructions?|you\s+(?:must|should|will|are)|do\s+not\s+tell|don't\s+tell|system\s*:)\b/i;
const HTML_COMMENT = /<!--([\s\S]{0,2000}?)-->/g;
const HIDDEN_ELEMENT = /<[a-z][^>]{0,300}style\s*=\s*["'][^"']*(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0|opacity\s*:\s*0(?![.\d]))[^"']*["'][^>]{0,300}>([^<]{1,2000})/gi;

export const INJECTION_RULES: readonly InjectionRule[] = [
  { id: 'injection.ignore-instructions', description: 'Tells the reader to ignore, disregard or forget its previous or system instructions.' },
  { id: 'injection.role-override', description: 'Gives the reader a new identity or mode ("you are now DAN", "from now on you will act as…", "act as an unrestricted…").' },
  {
    id: 'injection.fake-system',
    description: 'Chat-template or role markers that pose as the system or the operator (<|im_start|>system, [INST], <<SYS>>, [SYSTEM] … instructions, "system prompt:").',
  },
  { id: 'injection.addressed-to-model', description: 'Text addressed to an AI reader rather than a person ("Note to the AI assistant:", "If you are an AI…").' },
  { id: 'injection.hidden-html', description: 'An HTML comment or an element styled invisible (display:none, font-size:0, …) holding words aimed at a model.' },
  {
    id: 'injection.hidden-text',
    description: 'Text a person cannot see: Unicode tag characters, eight or more zero-width characters, or an instruction that appears only once zero-width characters are removed.',
  },
  {
    id: 'injection.exfiltrate',
    description:
      'Asks to send secrets (API keys, passwords, tokens, credentials, environment variables) to a URL, an e-mail address or a webhook, or a markdown image whose URL is a template to fill with data.',
  },
];

/** Every string in `content` (object values and array items in order, keys ignored), up to MAX_SCAN_CHARS in all. */
export function textOf(content: unknown, budget = MAX_SCAN_CHARS): string {
  const parts: string[] = [];
  let left = budget;
  const walk = (v: unknown, depth: number): void => {
    if (left <= 0 || depth > 32) return;
    if (typeof v === 'string') {
      const piece = v.length > left ? v.slice(0, left) : v;
      parts.push(piece);
      left -= piece.length;
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
    } else if (v !== null && typeof v === 'object') {
      for (const x of Object.values(v as Record<string, unknown>)) walk(x, depth + 1);
    }
  };
  walk(content, 0);
  return parts.join('\n');
}

/** The rules `content` trips, each once, in the order of INJECTION_RULES. */
export function scanForInjection(content: unknown): InjectionHit[] {
  const text = textOf(content);
  if (text === '') return [];
  const hits: InjectionHit[] = [];
  const first = (patterns: readonly RegExp[], s: string): string | undefined => {
    for (const p of patterns) {
      const m = p.exec(s);
      if (m !== null) return m[0];
    }
    return undefined;
  };
  const add = (rule: string, found: string | undefined) => {
    if (found !== undefined) hits.push({ rule, excerpt: excerpt(found) });
  };
  add('injection.ignore-instructions', first(IGNORE, text));
  add('injection.role-override', first(ROLE, text));
  add('injection.fake-system', first(FAKE_SYSTEM, text));
  add('injection.addressed-to-model', first(ADDRESSED, text));
  add('injection.hidden-html', hiddenHtml(text));
  add('injection.hidden-text', hiddenText(text));
  add('injection.exfiltrate', first(EXFIL, text));
  return hits;
}

function hiddenHtml(text: string): string | undefined {
  if (!text.includes('<')) return undefined;
  for (const re of [HTML_COMMENT, HIDDEN_ELEMENT]) {
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (HIDDEN_HTML_BODY.test(m[1] ?? '')) return m[0];
    }
  }
  return undefined;
}

function hiddenText(text: string): string | undefined {
  TAG_CHARS.lastIndex = 0;
  const tags = TAG_CHARS.exec(text);
  if (tags !== null) {
    // Tag characters mirror ASCII at U+E0000: what they spell is what a model may read.
    const spelled = [...tags[0]].map((c) => String.fromCharCode(c.codePointAt(0)! - 0xe0000)).join('');
    return `tag characters spelling ${JSON.stringify(spelled)}`;
  }
  const invisible = text.match(INVISIBLE) ?? [];
  // ZWNJ and ZWJ are ordinary in Persian and Indic scripts and in emoji sequences: only the others count.
  const count = invisible.filter((c) => c !== '\u200c' && c !== '\u200d').length;
  if (count >= 8) return `${count} zero-width characters`;
  if (invisible.length === 0) return undefined;
  const visible = text.replace(INVISIBLE, '');
  for (const patterns of [IGNORE, ROLE, ADDRESSED, EXFIL]) {
    for (const p of patterns) {
      const m = p.exec(visible);
      if (m !== null && !p.test(text)) return `${m[0]} (split by zero-width characters)`;
    }
  }
  return undefined;
}

function excerpt(s: string): string {
  const shown = s.replace(/\s+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2060\ufeff\u180e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return shown.length > 120 ? `${shown.slice(0, 117)}...` : shown;
}
