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
 *    case and separators) becomes `[MASKED:<key>]`; a bare `name` is not one, since tools and
 *    models are named by it. In the header, an approver (`policy.approver`,
 *    `approvals[].approver`) is a person too.
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

function maskString(s: string, w: Walk, textLevel: number): string {
  const first = /\S/.exec(s)?.[0];
  if ((first === '{' || first === '[') && textLevel < MAX_JSON_TEXT_LEVELS && s.length <= MAX_JSON_TEXT_CHARS) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(s);
    } catch {
      return maskText(s);
    }
    if (parsed !== null && typeof parsed === 'object') return JSON.stringify(maskValue(parsed, 0, w, textLevel + 1));
  }
  return maskText(s);
}

function maskValue(v: unknown, depth: number, w: Walk, textLevel = 0): unknown {
  if (typeof v === 'string') return maskString(v, w, textLevel);
  if (v === null || typeof v !== 'object') return v;
  // Deeper than this is hostile or pathological: masked whole, never handed back unread.
  if (depth > MAX_DEPTH) return '[MASKED:depth]';
  if (Array.isArray(v)) return v.map((x) => maskValue(x, depth + 1, w, textLevel));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (w.withhold && withheldKey(k)) continue;
    const value = w.personal.has(normalise(k)) && x !== null && x !== undefined && typeof x !== 'boolean' ? `[MASKED:${k}]` : maskValue(x, depth + 1, w, textLevel);
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
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
  const header = redactor.redactHeader({ ...e, data: null }) as Record<string, unknown>;
  const system = isSystemStream(e.stream);
  const data = e.data === null || system ? null : (maskValue(redactor.redact(e.data), 0, DATA_WALK) as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(header)) {
    const value = HEADER_KEPT.has(k) || v === undefined ? v : HEADER_WALK.personal.has(normalise(k)) ? `[MASKED:${k}]` : maskValue(v, 1, HEADER_WALK);
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  out['data'] = data;
  out['salt'] = null;
  out['masked'] = true;
  return out as E & { masked: true };
}
