import type { StoredEvent } from '../core/index.js';
import { Redactor } from '../recorder/index.js';

/**
 * What a developer sees: personal data masked, secrets never shown. Applied at read time to a
 * copy; the ledger keeps what was recorded. The rules, documented in the README ("Server"):
 *
 * 1. Secrets: the recorder's redaction (the one applied at write time) runs again on the payload
 *    and header text, in case a rule was added since the event was written.
 * 2. In every string of the payload and of `user`, `subject` and `principal.id`: e-mail addresses,
 *    payment card numbers (13-19 digits passing the Luhn check) and phone numbers (9-15 digits
 *    with a leading + or separators, not a date) become `[MASKED:email]`, `[MASKED:card]`,
 *    `[MASKED:phone]`.
 * 3. The whole value of a member whose key names personal data (PERSONAL_KEYS, compared without
 *    case and separators) becomes `[MASKED:<key>]`; a bare `name` is not one, since tools and
 *    models are named by it.
 * 4. The salt is withheld: with it, a masked value could be confirmed by hashing guesses against
 *    the payload digest. The event carries `masked: true`.
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

function maskValue(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return maskText(v);
  if (depth > 64 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => maskValue(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const value = PERSONAL_KEYS.has(normalise(k)) && x !== null && x !== undefined && typeof x !== 'boolean' ? `[MASKED:${k}]` : maskValue(x, depth + 1);
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const redactor = new Redactor();

/** A developer's copy of an event (see the rules above). */
export function maskEvent<E extends StoredEvent>(e: E): E & { masked: true } {
  const header = redactor.redactHeader({ ...e, data: null });
  const data = e.data === null ? null : (maskValue(redactor.redact(e.data), 0) as Record<string, unknown>);
  const out: Record<string, unknown> = { ...header, data, salt: null, masked: true };
  if (typeof e.user === 'string') out['user'] = maskText(e.user);
  if (typeof e.subject === 'string') out['subject'] = maskText(e.subject);
  if (e.principal !== undefined) out['principal'] = { ...e.principal, id: maskText(e.principal.id) };
  return out as E & { masked: true };
}
