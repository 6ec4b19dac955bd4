import type { StoredEvent } from '../core/index.js';
import { Redactor } from '../recorder/index.js';
import { SYSTEM_STREAM_PREFIX } from './keys.js';

/**
 * What a developer sees: personal data masked, secrets never shown. Applied at read time to a
 * copy; the ledger keeps what was recorded. The rules, documented in the README ("Server"):
 *
 * 1. Secrets: the recorder's redaction (the one applied at write time) runs again on the payload
 *    and header text, in case a rule was added since the event was written.
 * 2. In every string of the payload and of the header (all but the fields Witness writes itself,
 *    HEADER_KEPT below): e-mail addresses,
 *    payment card numbers (13-19 digits passing the Luhn check) and phone numbers (9-15 digits
 *    with a leading + or separators, not a date) become `[MASKED:email]`, `[MASKED:card]`,
 *    `[MASKED:phone]`.
 * 3. The whole value of a member whose key names personal data (PERSONAL_KEYS, compared without
 *    case and separators, and any key naming a birth date: `birthday`, `born`, `*_dob`) becomes
 *    `[MASKED:<key>]`. In the header, an approver (`policy.approver`, `approvals[].approver`) is a
 *    person too. A bare `name` is not personal by itself, since tools (MCP `params.name`), models
 *    and clients are named by it; it is masked (as `name`, `username`, `login`, `nickname`) when
 *    a. its object is a person's record: it has a member of rule 3 beside it, or it sits under a
 *       key naming a person (PERSON_KEYS: `customer`, `patient`, `user`, `contact`, `holder`,
 *       `recipient`, …, also plural or as `customer_record`, `patient_info`, …), or
 *    b. its text reads as a person's name (PERSON_NAME: two to five capitalised words or
 *       initials, `Jordan Doe`, `M. Garcia`; MCP tool names cannot contain spaces), unless its
 *       object is software's (under `clientInfo`, `serverInfo`, `model`, `tool`, … SOFTWARE_KEYS).
 *    c. In an object whose `field` / `key` / `attribute` / `property` / `column` / `name` member
 *       names a personal field (`date_of_birth`, `patient.email`, `name`), the members carrying that
 *       field's value (`value`, `previous`, `old`, `new`, `before`, `after`, … FIELD_VALUE_KEYS)
 *       are masked whole.
 *    d. On an object that is itself a person's record (rule 3a's person keys), a bare calendar
 *       date (`1984-03-13`, `13/03/1984`; not a time-stamp) is masked: most often a birth date.
 *       A date beside a personal member elsewhere (a refund's order date) is kept.
 * 4. A string that is JSON text (first non-space character `{` or `[`, as the recorder's redactor
 *    reads them: an OpenAI tool call's `arguments`) is parsed and masked by these rules inside,
 *    then written back as JSON text (up to 3 levels of JSON in a string, 1 MB each; past that, or
 *    when it does not parse, it is masked as plain text).
 * 5. Nested deeper than 64 levels, the value is replaced by `[MASKED:depth]`, never returned as is.
 * 6. Salts are withheld: the event's `salt`, and in the payload every `*_salt` member and
 *    `arguments_digest` (salted by `arguments_salt`); with a salt a masked value could be
 *    confirmed by hashing guesses against its digest. The event carries `masked: true`.
 * 7. Witness's own system streams (`witness.keys`, `witness.audit-access`, …: key hashes, who read
 *    what and the search terms they used) are not a developer's to read: their payload is
 *    withheld whole (`data: null`).
 * 8. Every value rule 3 masked (3 characters or more) is masked too wherever the same event
 *    repeats it in other text, as whole words (`the insurance card shows 1984-03-13` beside
 *    `value: "1984-03-13"`), with the same `[MASKED:<key>]`.
 * 9. A capture's page `text` is the screenshot in words, free text no rule can read names out of;
 *    developers get no screenshots, and it becomes `[MASKED:text]` (the title and URL are masked
 *    as text).
 * 10. In a JSON Schema's `properties` whose members all read as schemas (objects with `type`,
 *    `$ref`, `enum`, `anyOf`, … : an MCP tool's `inputSchema`), the members are schemas named after
 *    fields, not values: rule 3 does not mask them by name (inside, every rule still applies).
 */
const PERSONAL_KEYS: ReadonlySet<string> = new Set(
  [
    'email',
    'emailaddress',
    'phone',
    'phonenumber',
    'mobile',
    'telephone',
    'fullname',
    'firstname',
    'lastname',
    'givenname',
    'familyname',
    'surname',
    'customername',
    'patientname',
    'displayname',
    'address',
    'streetaddress',
    'street',
    'postcode',
    'postalcode',
    'zip',
    'zipcode',
    'ssn',
    'socialsecuritynumber',
    'nationalid',
    'passport',
    'passportnumber',
    'dob',
    'dateofbirth',
    'birthdate',
    'iban',
    'cardnumber',
    'creditcard',
    'pan',
    'ipaddress',
  ].map((k) => k),
);

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
const CARD = /(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.])/g;
const PHONE = /(?<![\w.+-])\+?\(?\d[\d ().-]{7,20}\d(?![\w.-])/g;

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export function maskText(s: string): string {
  let out = s.replace(EMAIL, '[MASKED:email]');
  out = out.replace(CARD, (m) => {
    const d = m.replace(/\D/g, '');
    return d.length >= 13 && d.length <= 19 && luhn(d) ? '[MASKED:card]' : m;
  });
  out = out.replace(PHONE, (m) => {
    const d = m.replace(/\D/g, '');
    if (d.length < 9 || d.length > 15) return m;
    if (/^\d{4}-\d{2}-\d{2}/.test(m)) return m;
    // A bare run of digits is an id or an amount as often as a phone number: only a leading + or separators mark one.
    if (!m.startsWith('+') && !/[ ().-]/.test(m)) return m;
    return '[MASKED:phone]';
  });
  return out;
}

const normalise = (k: string) => k.toLowerCase().replace(/[^a-z0-9]/g, '');

const MAX_DEPTH = 64;
const MAX_JSON_TEXT_LEVELS = 3;
const MAX_JSON_TEXT_CHARS = 1024 * 1024;

/** Members withheld from a developer's payload: salts, and the digest `arguments_salt` salts. */
function withheldKey(k: string): boolean {
  return k.endsWith('_salt') || k === 'arguments_digest';
}

interface Walk {
  /** Keys masked whole (normalised). */
  personal: ReadonlySet<string>;
  /** Remove salts and salted digests (the payload) or keep every member (the header). */
  withhold: boolean;
}

const DATA_WALK: Walk = { personal: PERSONAL_KEYS, withhold: true };
const HEADER_WALK: Walk = { personal: new Set([...PERSONAL_KEYS, 'approver']), withhold: false };

/** Keys whose object (or whose array's objects) is a person's record: a `name` there is a person's. */
const PERSON_KEYS: ReadonlySet<string> = new Set([
  'customer',
  'patient',
  'user',
  'person',
  'people',
  'contact',
  'holder',
  'cardholder',
  'accountholder',
  'recipient',
  'member',
  'employee',
  'owner',
  'sender',
  'beneficiary',
  'applicant',
  'subscriber',
  'guest',
  'passenger',
  'student',
  'payer',
  'payee',
  'insured',
  'guarantor',
  'principal',
]);
const PERSON_KEY_SUFFIXES = ['', 's', 'record', 'records', 'info', 'details', 'profile', 'data'];

/** Members masked as a name in a person's record (rule 3a). */
const NAME_KEYS: ReadonlySet<string> = new Set(['name', 'username', 'login', 'nickname']);

/** Parents whose `name` is software's (MCP's clientInfo / serverInfo, a model, a tool), never read as a person's (rule 3b). */
const SOFTWARE_KEYS: ReadonlySet<string> = new Set([
  'clientinfo',
  'serverinfo',
  'implementation',
  'client',
  'server',
  'model',
  'tool',
  'tools',
  'function',
  'prompt',
  'prompts',
  'resource',
  'resources',
  'agent',
  'recorder',
  'app',
  'application',
  'service',
]);

/** Members that name a field (`{ "field": "date_of_birth", "value": … }`) and members that carry its value (rule 3c). */
const FIELD_NAMING_KEYS: ReadonlySet<string> = new Set(['field', 'key', 'attribute', 'property', 'column', 'name', 'fieldname']);
const FIELD_VALUE_KEYS: ReadonlySet<string> = new Set([
  'value',
  'values',
  'previous',
  'previousvalue',
  'old',
  'oldvalue',
  'new',
  'newvalue',
  'current',
  'currentvalue',
  'before',
  'after',
  'from',
  'to',
  'original',
  'corrected',
  'expected',
  'actual',
]);

/** A person's name as people write it: two to five capitalised words or initials, maybe a note in parentheses. Tool names (MCP: letters, digits, `_ - .`) never match. */
const PERSON_NAME = /^\p{Lu}(?:[\p{L}'’-]*|\.)(?:\s+\p{Lu}(?:[\p{L}'’-]*|\.)){1,4}(?:\s+\(.*\))?$/u;
/** A calendar date without a time (a time-stamp is an event's, a bare date on a person's record is most often their birth date). */
const BARE_DATE = /^(?:\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{4})$/;

function isPersonKey(k: string | undefined): boolean {
  if (k === undefined) return false;
  return [...PERSON_KEYS].some((p) => k.startsWith(p) && PERSON_KEY_SUFFIXES.includes(k.slice(p.length)));
}

/** `birthday`, `patient_birth_date`, `born`: a birth date however a writer spells it. */
function isBirthKey(k: string): boolean {
  return k.includes('birth') || k === 'born' || k.endsWith('dob');
}

/** A field name (`date_of_birth`, `patient.dob`, `/customer/email`) that names personal data or a person's name. */
function namesPersonalField(v: unknown): boolean {
  if (typeof v !== 'string' || v.length > 200) return false;
  const last = normalise(
    v
      .split(/[./:[\]]/)
      .filter((s) => s !== '')
      .pop() ?? '',
  );
  return PERSONAL_KEYS.has(last) || NAME_KEYS.has(last) || isBirthKey(last);
}

/** Values masked so far in this event, by what masked them: rule 8 masks them wherever else the event repeats them. */
type Known = Map<string, string>;

/** Minimum length of a masked value sought elsewhere in the event: shorter ones would mask common words and numbers. */
const MIN_KNOWN_CHARS = 3;
/** Bounds on the search for repeats, so a hostile payload cannot make one pattern of megabytes: a longer or later value is masked where it stands, not sought elsewhere. */
const MAX_KNOWN_CHARS = 256;
const MAX_KNOWN = 200;

function remember(v: unknown, label: string, known: Known, depth = 0): void {
  if (typeof v === 'string') {
    const t = v.trim();
    if (t.length >= MIN_KNOWN_CHARS && t.length <= MAX_KNOWN_CHARS && known.size < MAX_KNOWN && !known.has(t)) known.set(t, label);
  } else if (typeof v === 'number') {
    remember(String(v), label, known, depth);
  } else if (v !== null && typeof v === 'object' && depth < MAX_DEPTH) {
    for (const x of Object.values(v as Record<string, unknown>)) remember(x, label, known, depth + 1);
  }
}

function maskWhole(k: string, x: unknown, known: Known): string {
  remember(x, `[MASKED:${k}]`, known);
  return `[MASKED:${k}]`;
}

function maskString(s: string, w: Walk, textLevel: number, known: Known): string {
  const first = /\S/.exec(s)?.[0];
  if ((first === '{' || first === '[') && textLevel < MAX_JSON_TEXT_LEVELS && s.length <= MAX_JSON_TEXT_CHARS) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(s);
    } catch {
      return maskText(s);
    }
    if (parsed !== null && typeof parsed === 'object') return JSON.stringify(maskValue(parsed, 0, w, known, textLevel + 1));
  }
  return maskText(s);
}

const maskable = (x: unknown) => x !== null && x !== undefined && typeof x !== 'boolean';

function maskValue(v: unknown, depth: number, w: Walk, known: Known, textLevel = 0, parentKey?: string): unknown {
  if (typeof v === 'string') return maskString(v, w, textLevel, known);
  if (v === null || typeof v !== 'object') return v;
  // Deeper than this is hostile or pathological: masked whole, never handed back unread.
  if (depth > MAX_DEPTH) return '[MASKED:depth]';
  if (Array.isArray(v)) return v.map((x) => maskValue(x, depth + 1, w, known, textLevel, parentKey));
  const entries = Object.entries(v as Record<string, unknown>);
  // A JSON Schema's `properties` (an MCP tool's inputSchema) maps field names to schemas, not to values: its members are read as schemas, not masked by name.
  if (parentKey === 'properties' && entries.length > 0 && entries.every(([, x]) => isSchema(x))) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of entries) Object.defineProperty(out, k, { value: maskValue(x, depth + 1, w, known, textLevel, undefined), enumerable: true, writable: true, configurable: true });
    return out;
  }
  const keys = entries.map(([k]) => normalise(k));
  const software = parentKey !== undefined && SOFTWARE_KEYS.has(parentKey);
  // Rule 3a/3b: whether this object is a person's record decides what its `name` and bare dates are.
  const personLike =
    !software &&
    (isPersonKey(parentKey) ||
      entries.some(([, x], i) => w.personal.has(keys[i]!) && maskable(x)) ||
      entries.some(([, x], i) => NAME_KEYS.has(keys[i]!) && typeof x === 'string' && PERSON_NAME.test(x.trim())));
  // Rule 3d: a bare date is a birth date as often as not on a record that is itself a person's (under a person key), not on one that merely mentions a person (a refund's arguments).
  const personRecord = !software && isPersonKey(parentKey);
  // Rule 3c: a member naming a personal field makes its value members personal.
  const personalField = entries.some(([, x], i) => FIELD_NAMING_KEYS.has(keys[i]!) && namesPersonalField(x));
  const out: Record<string, unknown> = {};
  entries.forEach(([k, x], i) => {
    if (w.withhold && withheldKey(k)) return;
    const nk = keys[i]!;
    let value: unknown;
    if (maskable(x) && (w.personal.has(nk) || isBirthKey(nk))) value = maskWhole(k, x, known);
    else if (maskable(x) && personLike && NAME_KEYS.has(nk)) value = maskWhole(k, x, known);
    else if (maskable(x) && personalField && FIELD_VALUE_KEYS.has(nk)) value = maskWhole(k, x, known);
    else if (personRecord && typeof x === 'string' && BARE_DATE.test(x.trim())) value = maskWhole(k, x, known);
    else value = maskValue(x, depth + 1, w, known, textLevel, nk);
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  });
  return out;
}

const SCHEMA_KEYS = ['type', '$ref', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', 'items', 'properties'];

/** An object that reads as a JSON Schema (rule 10). */
function isSchema(x: unknown): boolean {
  return x !== null && typeof x === 'object' && !Array.isArray(x) && SCHEMA_KEYS.some((k) => Object.hasOwn(x, k));
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Rule 8: every value masked somewhere in the event, masked too where the event repeats it in other text. */
function maskKnown(v: unknown, known: Known, depth = 0): unknown {
  if (known.size === 0) return v;
  const values = [...known.keys()].sort((a, b) => b.length - a.length);
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${values.map(escapeRegExp).join('|')})(?![\\p{L}\\p{N}])`, 'gu');
  const walk = (x: unknown, d: number): unknown => {
    if (typeof x === 'string') return x.replace(re, (m) => known.get(m) ?? m);
    if (x === null || typeof x !== 'object' || d > MAX_DEPTH) return x;
    if (Array.isArray(x)) return x.map((y) => walk(y, d + 1));
    const out: Record<string, unknown> = {};
    for (const [k, y] of Object.entries(x as Record<string, unknown>)) Object.defineProperty(out, k, { value: walk(y, d + 1), enumerable: true, writable: true, configurable: true });
    return out;
  };
  return walk(v, depth);
}

/**
 * Header fields Witness itself writes, or whose format holds no personal data: shown as stored.
 * Every other header field (resource, action, user, subject, principal, policy, approvals,
 * source, delegation, env, tenant, …) is masked like the payload, so a field added later is
 * masked until someone decides otherwise.
 */
const HEADER_KEPT: ReadonlySet<string> = new Set([
  'v',
  'id',
  'stream',
  'seq',
  'pos',
  'ts',
  'received_ts',
  'agent',
  'kind',
  'parent',
  'outcome',
  'recorder',
  'payload_digest',
  'prev',
  'hash',
  'artifacts',
  'record_class',
  'data_categories',
  'data',
  'salt',
]);

/** A stream that is Witness's own (core's SYSTEM_STREAMS all start so, and agents may not write there), which a developer does not read (rule 7). */
export function isSystemStream(stream: string): boolean {
  return stream.startsWith(SYSTEM_STREAM_PREFIX);
}

const redactor = new Redactor();

/** A developer's copy of an event (see the rules above). */
export function maskEvent<E extends StoredEvent>(e: E): E & { masked: true } {
  const known: Known = new Map();
  const header = redactor.redactHeader({ ...e, data: null }) as Record<string, unknown>;
  const system = isSystemStream(e.stream);
  let data = e.data === null || system ? null : (maskValue(redactor.redact(e.data), 0, DATA_WALK, known) as Record<string, unknown>);
  // Rule 9: a screenshot's page text is the screenshot in words, and developers get no screenshots.
  if (data !== null && e.kind === 'capture' && typeof data['text'] === 'string') data = { ...data, text: '[MASKED:text]' };
  const out: Record<string, unknown> = {};
  const walked: string[] = [];
  for (const [k, v] of Object.entries(header)) {
    let value = v;
    if (!HEADER_KEPT.has(k) && v !== undefined) {
      value = HEADER_WALK.personal.has(normalise(k)) ? maskWhole(k, v, known) : maskValue(v, 1, HEADER_WALK, known, 0, normalise(k));
      walked.push(k);
    }
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  for (const k of walked) out[k] = maskKnown(out[k], known);
  out['data'] = maskKnown(data, known);
  out['salt'] = null;
  out['masked'] = true;
  return out as E & { masked: true };
}
