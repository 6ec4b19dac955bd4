#!/usr/bin/env node
/**
 * The standalone verifier of a Witness evidence bundle (format version 2), shipped inside every
 * bundle as verify.mjs. One file of plain JavaScript that needs Node.js 18 or later and nothing
 * else: no npm install, no Witness, no network. It checks what `witness verify` checks on a v2
 * bundle, from the bytes of the bundle alone:
 *
 *   node verify.mjs [BUNDLE_DIR_OR_ZIP] [--trusted-key KEY]... [--json] [--require-payloads] [--require-cosigner VKEY]... [--tsa-cert FILE]
 *
 * BUNDLE defaults to the directory this file sits in. KEY is a verifier key string
 * (`<name>+<hash>+<base64>`) or a file of them, one per line; without it the keys shipped in
 * keys.json are used, and the verdict says so. Exit code 0: the bundle verifies; 1: it does not;
 * 2: bad usage, or a bundle this verifier cannot read (a v1 bundle).
 *
 * The rules it implements are those of docs/FORMAT.md: RFC 8785 canonical JSON, the event hash
 * chain, RFC 9162 Merkle proofs, C2SP signed-note checkpoints with Ed25519 keys, and the bundle's
 * own bindings (span, export record, scope, populations, file digests). Every file is read once and
 * streamed; events.jsonl is never held whole.
 */
import crypto, { createHash, createPublicKey, verify as ed25519Verify } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

// ---------------------------------------------------------------------------------------------
// Limits: a hostile bundle is refused, never read into memory (the same caps as `witness verify`).

export const LIMITS = {
  manifestBytes: 16 * 1024 * 1024,
  smallFileBytes: 1024 * 1024,
  fileBytes: 512 * 1024 * 1024,
  eventLineBytes: 65 * 1024 * 1024,
  proofLineBytes: 8 * 1024,
  proofSteps: 64,
  checkpointLineBytes: 64 * 1024,
  populationLineBytes: 64 * 1024,
  /** Everything a zip may inflate to, all entries together. */
  zipTotalBytes: 64 * 1024 * 1024 * 1024,
  zipEntries: 1_000_000,
  maxFailures: 100,
};

// ---------------------------------------------------------------------------------------------
// RFC 8785 (JCS) canonical JSON and strict parsing.

/**
 * JCS of a value produced by strictParse: object members sorted by UTF-16 code units (what
 * Array#sort compares by default), strings escaped and numbers written as ECMAScript's
 * JSON.stringify writes them — which RFC 8785 adopts (Number::toString, -0 as 0). Like Witness,
 * it refuses integers beyond 2^53 however they were spelled (1e20 parses, but is not recordable).
 */
export function jcs(v) {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new Error(`the number ${v} has no JSON form`);
      if (Number.isInteger(v) && !Number.isSafeInteger(v) && Math.abs(v) < 1e21) throw new Error(`the integer ${v} is beyond 2^53`);
      return JSON.stringify(v);
    case 'object':
      break;
    default:
      throw new Error(`a ${typeof v} has no JSON form`);
  }
  if (Array.isArray(v)) return `[${v.map(jcs).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(v[k])}`).join(',')}}`;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * RFC 8259 JSON, refusing what JSON.parse lets through ambiguously: duplicate member names, integers
 * beyond ±(2^53−1), numbers that overflow, lone surrogates, a byte order mark. Objects are created
 * without a prototype, so "__proto__" is an ordinary member. Throws Error with a position.
 */
export function strictParse(text, maxDepth = 512) {
  let i = 0;
  const fail = (why) => {
    throw new Error(`${why} at character ${i}`);
  };
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else return;
    }
  };
  const str = () => {
    i++; // opening quote
    let out = '';
    let start = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail('unescaped control character in a string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      const e = text[i + 1];
      if (e === 'u') {
        const hex = text.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape');
        out += String.fromCharCode(Number.parseInt(hex, 16));
        i += 6;
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
        i += 2;
      } else {
        fail('invalid escape');
      }
      start = i;
    }
    out += text.slice(start, i);
    i++;
    if (LONE_SURROGATE.test(out)) fail('lone surrogate in a string');
    return out;
  };
  const num = () => {
    const m = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 4096));
    if (m === null) fail('unexpected character');
    const n = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined) {
      if (!Number.isSafeInteger(n)) fail(`integer ${m[0].slice(0, 40)} is outside ±(2^53−1)`);
    } else if (!Number.isFinite(n)) {
      fail('number too large');
    }
    i += m[0].length;
    return n;
  };
  const value = (depth) => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth >= maxDepth) fail(`nested more than ${maxDepth} levels deep`);
      i++;
      ws();
      if (c === '[') {
        const arr = [];
        if (text[i] === ']') {
          i++;
          return arr;
        }
        for (;;) {
          arr.push(value(depth + 1));
          ws();
          if (text[i] === ',') i++;
          else if (text[i] === ']') {
            i++;
            return arr;
          } else fail("expected ',' or ']'");
        }
      }
      const obj = Object.create(null);
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a property name');
        const k = str();
        if (Object.hasOwn(obj, k)) fail(`duplicate property name ${JSON.stringify(k)}`);
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        obj[k] = value(depth + 1);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return obj;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) return ((i += 4), true);
    if (text.startsWith('false', i)) return ((i += 5), false);
    if (text.startsWith('null', i)) return ((i += 4), null);
    return num();
  };
  if (typeof text !== 'string') throw new Error('expected text');
  if (text.charCodeAt(0) === 0xfeff) fail('byte order mark before the value');
  const v = value(0);
  ws();
  if (i !== text.length) fail('unexpected text after the value');
  return v;
}

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------
// Hashing (docs/FORMAT.md "The event" and "Merkle tree").

// crypto.hash (Node >= 20.12) digests one buffer without a Hash object, several times cheaper for
// the short inputs of Merkle nodes and event hashes; older Node takes createHash.
const oneShot = typeof crypto.hash === 'function' ? crypto.hash : undefined;
const sha256 = (...parts) => {
  if (oneShot !== undefined) return oneShot('sha256', parts.length === 1 ? parts[0] : Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))), 'buffer');
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const EVENT_DOMAIN = Buffer.from('witness/event/v1\n');
const GENESIS_DOMAIN = Buffer.from('witness/genesis/v1\n');

export const genesisHex = (origin, stream) => sha256(GENESIS_DOMAIN, origin, '\n', stream).toString('hex');
export const payloadDigestHex = (saltHex, dataJcs) => sha256(Buffer.from(saltHex, 'hex'), dataJcs).toString('hex');
export const eventHashHex = (prevHex, headerJcs) => sha256(EVENT_DOMAIN, Buffer.from(prevHex, 'hex'), headerJcs).toString('hex');
export const leafHash = (entry) => sha256(Buffer.from([0]), entry);
export const nodeHash = (left, right) => sha256(Buffer.from([1]), left, right);

// ---------------------------------------------------------------------------------------------
// RFC 9162 proofs. Sizes are safe integers; shifts are divisions (no 32-bit bitwise operators).

const half = (n) => Math.floor(n / 2);
const isSize = (n) => Number.isSafeInteger(n) && n >= 0;

/** RFC 9162 2.1.3.2: the root an inclusion proof leads to, or a reason it cannot. Every step is used. */
export function rootFromInclusionProof(leaf, index, size, proof) {
  if (!isSize(index) || !isSize(size) || index >= size) return { reason: `leaf index ${index} is not below tree size ${size}` };
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return { reason: `the proof has ${proof.length} steps, more than leaf ${index} of a tree of size ${size} needs` };
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return { reason: `the proof has ${proof.length} steps, fewer than leaf ${index} of a tree of size ${size} needs` };
  return { root: r };
}

const EMPTY_ROOT = sha256();

/** RFC 9162 2.1.4.2, with the equal-size and empty-tree cases; returns a reason or undefined when consistent. */
export function consistencyProblem(oldSize, newSize, proof, oldRoot, newRoot) {
  if (!isSize(oldSize) || !isSize(newSize) || oldSize > newSize) return `size ${oldSize} cannot precede size ${newSize}`;
  if (oldSize === 0) return proof.length === 0 && oldRoot.equals(EMPTY_ROOT) ? undefined : 'a proof from the empty tree must be empty and start from the empty root';
  if (oldSize === newSize) return proof.length === 0 && oldRoot.equals(newRoot) ? undefined : `two checkpoints of size ${oldSize} have different roots`;
  if (proof.length === 0) return `the consistency proof from size ${oldSize} to ${newSize} is empty`;
  let k = 1;
  while (k < oldSize) k *= 2;
  const nodes = k === oldSize ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = nodes[0];
  let sr = nodes[0];
  for (const c of nodes.slice(1)) {
    if (sn === 0) return `the consistency proof has more steps than sizes ${oldSize} -> ${newSize} need`;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return `the consistency proof has fewer steps than sizes ${oldSize} -> ${newSize} need`;
  if (!fr.equals(oldRoot)) return `the consistency proof does not reproduce the root of size ${oldSize}`;
  if (!sr.equals(newRoot)) return `the consistency proof does not reproduce the root of size ${newSize}`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// C2SP signed notes and tlog checkpoints, Ed25519.

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const KEY_NAME_BAD = /[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000+\u0000-\u001f]/;

/** Canonical standard base64 only: Buffer.from(_, 'base64') skips junk silently. */
function base64Strict(s) {
  if (!BASE64.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : undefined;
}

export function keyHashOf(name, publicKey) {
  return sha256(`${name}\n`, Buffer.from([1]), publicKey).readUInt32BE(0);
}

const hex8 = (n) => n.toString(16).padStart(8, '0');

/** Parses `<name>+<8 hex key hash>+<base64(0x01 ‖ 32-byte Ed25519 key)>`; throws Error saying what is wrong. */
export function parseVerifierKey(vkey) {
  const m = /^([^+]+)\+([0-9a-fA-F]{8})\+(.+)$/.exec(vkey);
  if (m === null) throw new Error('a verifier key has the form <name>+<8 hex digits>+<base64 key>');
  const [, name, hash, b64] = m;
  if (KEY_NAME_BAD.test(name) || LONE_SURROGATE.test(name)) throw new Error('the key name has spaces, plus signs or control characters');
  const raw = base64Strict(b64);
  if (raw === undefined || raw.length !== 33 || raw[0] !== 1) throw new Error('the key is not base64 of 0x01 and a 32-byte Ed25519 public key');
  const publicKey = raw.subarray(1);
  const keyHash = Number.parseInt(hash, 16);
  if (keyHashOf(name, publicKey) !== keyHash) throw new Error('the key hash does not match its name and public key');
  let key;
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
  } catch {
    throw new Error('the key is not a usable Ed25519 public key');
  }
  return { name, keyHash, publicKey, key, fingerprint: `${name}+${hex8(keyHash)}` };
}

/**
 * Opens a signed note (https://c2sp.org/signed-note): the text up to the last blank line, then
 * `— <name> <base64(key hash ‖ signature)>` lines. Signatures by unknown keys are ignored; every
 * signature by a trusted key must verify, and at least one must. Returns { text, verified } or
 * throws Error with `code` 'checkpoint_signature' or 'checkpoint_invalid'.
 */
export function openNote(note, verifiers) {
  const bad = (code, why) => Object.assign(new Error(why), { code });
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note) || LONE_SURROGATE.test(note)) throw bad('checkpoint_invalid', 'the note holds control characters or invalid Unicode');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw bad('checkpoint_invalid', 'the note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block === '' || !block.endsWith('\n')) throw bad('checkpoint_invalid', 'the note must end with signature lines, each ending in a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > 100) throw bad('checkpoint_invalid', 'the note has more than 100 signatures');
  const verified = [];
  for (const line of lines) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    const raw = m === null ? undefined : base64Strict(m[2]);
    if (m === null || raw === undefined || raw.length < 5) throw bad('checkpoint_invalid', 'a signature line is not "— <name> <base64>"');
    const label = `${m[1]}+${hex8(raw.readUInt32BE(0))}`;
    const matches = verifiers.filter((v) => v.fingerprint === label);
    if (matches.length === 0) continue;
    const sig = raw.subarray(4);
    const ok = matches.every((v) => {
      // RFC 8032 requires S < L; S + L would be a second, malleable spelling of one signature.
      if (sig.length !== 64 || BigInt(`0x${Buffer.from(sig.subarray(32)).reverse().toString('hex')}`) >= ED25519_L) return false;
      try {
        return ed25519Verify(null, Buffer.from(text), v.key, sig);
      } catch {
        return false;
      }
    });
    if (!ok) throw bad('checkpoint_signature', `the signature by key ${label} does not verify`);
    if (!verified.some((v) => v.fingerprint === label)) verified.push(matches[0]);
  }
  if (verified.length === 0) throw bad('checkpoint_signature', 'the note has no signature from a trusted key');
  return { text, verified };
}

/** The body of a C2SP tlog-checkpoint: origin, decimal size, base64 root, extension lines. */
export function parseCheckpoint(text) {
  const bad = (why) => Object.assign(new Error(why), { code: 'checkpoint_invalid' });
  const lines = text.slice(0, -1).split('\n');
  if (!text.endsWith('\n') || lines.length < 3) throw bad('the checkpoint needs origin, size and root lines');
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (origin === '' || !/^(?:0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw bad('the checkpoint size is not a plain decimal number');
  const root = base64Strict(rootText);
  if (root === undefined || root.length !== 32) throw bad('the checkpoint root is not base64 of 32 bytes');
  if (extensions.some((e) => e === '')) throw bad('a checkpoint extension line is empty');
  return { origin, size: Number(sizeText), root, extensions };
}

// ---------------------------------------------------------------------------------------------
// The event header's schema (docs/FORMAT.md "The event"), as data.

export const EVENT_KINDS = [
  'session.start',
  'session.end',
  'llm.call',
  'tool.call',
  'tool.result',
  'policy.decision',
  'approval.request',
  'approval.decision',
  'capture',
  'error',
  'note',
  'config.change',
  'review',
  'human.override',
  'human.halt',
  'human.resume',
  'audit.access',
  'alert',
  'anomaly',
  'key.rotated',
  'retention.purge',
  'hold.placed',
  'hold.released',
];
const OUTCOMES = ['success', 'error', 'denied', 'pending', 'expired'];
const SYSTEM_STREAMS = new Set(['witness.approvals', 'witness.gateway', 'witness.evidence', 'witness.audit-access', 'witness.keys', 'witness.monitor']);

const T = {
  /** Lengths in code points (docs/FORMAT.md 1), as the recorder's schema counts them: an emoji counts 1. */
  // (Every minimum is 0 or 1, where code points and UTF-16 units agree; a surrogate pair is counted once.)
  text: (min, max) => (v) => typeof v === 'string' && v.length >= min && (v.length <= max || v.length - surrogatePairs(v) <= max),
  re: (re) => (v) => typeof v === 'string' && re.test(v),
  oneOf: (list) => (v) => list.includes(v),
  count: (v) => Number.isSafeInteger(v) && v >= 0,
  array: (item, max) => (v) => Array.isArray(v) && v.length <= max && v.every(item),
  /** A strict object: `spec` maps each allowed key to [check, required]. */
  object: (spec) => (v) => isObject(v) && Object.keys(v).every((k) => Object.hasOwn(spec, k) && spec[k][0](v[k])) && Object.entries(spec).every(([k, [, req]]) => !req || Object.hasOwn(v, k)),
};
/** How many surrogate pairs `s` holds: its UTF-16 length less this is its length in code points. */
function surrogatePairs(s) {
  let n = 0;
  for (let i = 0; i + 1 < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n++;
        i++;
      }
    }
  }
  return n;
}
const NAME = T.text(1, 512);
const LABEL = T.text(0, 4096);
const HEX64 = T.re(/^[0-9a-f]{64}$/);
const ISO = T.re(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
const UUID = T.re(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
const opt = (f) => [f, false];
const req = (f) => [f, true];

const HEADER = {
  id: req(UUID),
  ts: req(ISO),
  received_ts: opt(ISO),
  agent: req(T.object({ id: req(NAME), version: opt(LABEL), credential: opt(LABEL) })),
  user: opt(LABEL),
  principal: opt(T.object({ id: req(NAME), kind: opt(T.oneOf(['human', 'service'])) })),
  delegation: opt(T.object({ id: req(LABEL), issuer: opt(LABEL), scopes: opt(T.array(LABEL, 256)), expires: opt(ISO) })),
  subject: opt(LABEL),
  recorder: opt(T.object({ id: opt(LABEL), kind: req(T.oneOf(['sdk', 'gateway', 'server', 'otlp', 'cli'])), version: opt(LABEL) })),
  source: opt(T.object({ host: opt(LABEL), process: opt(LABEL) })),
  env: opt(LABEL),
  tenant: opt(LABEL),
  parent: opt(UUID),
  resource: opt(LABEL),
  action: opt(LABEL),
  outcome: opt(T.oneOf(OUTCOMES)),
  policy: opt(
    T.object({
      decision: req(T.oneOf(['allow', 'deny', 'review'])),
      rule: opt(LABEL),
      version: opt(HEX64),
      reason_code: opt(LABEL),
      mode: opt(T.oneOf(['enforce', 'shadow'])),
      approver: opt(LABEL),
    }),
  ),
  approvals: opt(
    T.array(
      T.object({
        approver: req(NAME),
        role: opt(LABEL),
        decision: req(T.oneOf(['approved', 'denied'])),
        reason: opt(LABEL),
        meaning: opt(LABEL),
        args_digest: opt(HEX64),
        ts: req(ISO),
      }),
      64,
    ),
  ),
  record_class: opt(LABEL),
  data_categories: opt(T.array(LABEL, 64)),
  artifacts: opt(T.array(T.object({ sha256: req(HEX64), mime: req(T.text(1, 255)), bytes: req(T.count), role: opt(LABEL), name: opt(LABEL) }), 1024)),
  v: req((v) => v === 1),
  stream: req(NAME),
  seq: req(T.count),
  kind: req(T.oneOf(EVENT_KINDS)),
  payload_digest: req(HEX64),
  prev: req(HEX64),
};

/** The first header field that breaks the schema, or undefined. */
/** Whether two parsed JSON values are equal (their JCS texts); a value that cannot be canonicalised equals nothing. */
function sameJson(a, b) {
  try {
    return jcs(a) === jcs(b);
  } catch {
    return false;
  }
}

/** Whether a header (one that failed the schema) has the fields ScopeTracker reads, with their types. */
function scopable(h) {
  return (
    ['id', 'stream', 'kind', 'ts'].every((k) => typeof h[k] === 'string') &&
    typeof h.seq === 'number' &&
    isObject(h.agent) &&
    typeof h.agent.id === 'string' &&
    [h.resource, h.parent].every((v) => v === undefined || typeof v === 'string')
  );
}

export function headerProblem(h) {
  for (const k of Object.keys(h)) if (!Object.hasOwn(HEADER, k)) return `${k} is not a header field`;
  for (const [k, [check, required]] of Object.entries(HEADER)) {
    if (!Object.hasOwn(h, k)) {
      if (required) return `${k} is missing`;
    } else if (!check(h[k])) return `${k} is invalid`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Scope and populations (docs/FORMAT.md "Scope" and "Populations").

/**
 * Decides, in leaf order, which events of the span are in the export's scope: `since <= ts <
 * until` (as instants); the stream is one of `sessions` and the agent one of `agents` (each when
 * given); an event of a system stream that fails that filter is still in scope when its `resource`
 * names an in-scope session or its `parent` is an event already in scope.
 */
export class ScopeTracker {
  constructor(scope) {
    this.ids = new Set();
    this.sessions = scope.sessions === null ? null : new Set(scope.sessions);
    this.agents = scope.agents === null ? null : new Set(scope.agents);
    // Compared as strings, as populations.ts does (FORMAT.md 7.11): the scope holds since/until as
    // YYYY-MM-DDTHH:MM:SS.mmmZ, the form every recorded ts has, and a ts that is no real instant
    // (11-31, T24:00) lands where its text sorts, the same in every verifier.
    this.since = scope.since;
    this.until = scope.until;
  }

  inScope(e) {
    if (this.since !== null && !(e.ts >= this.since)) return false;
    if (this.until !== null && !(e.ts < this.until)) return false;
    let ok = (this.sessions === null || this.sessions.has(e.stream)) && (this.agents === null || this.agents.has(e.agent.id));
    if (!ok && SYSTEM_STREAMS.has(e.stream)) {
      ok = (e.resource !== undefined && this.sessions?.has(e.resource) === true) || (e.parent !== undefined && this.ids.has(e.parent));
    }
    // A copy, not the parsed slice: V8 keeps a sliced string's whole events.jsonl line alive (~760 bytes an event).
    if (ok) this.ids.add(Buffer.from(e.id, 'utf8').toString('utf8'));
    return ok;
  }
}

export const POPULATIONS = [
  {
    name: 'approvals',
    title: 'Human approvals requested and decided',
    query: 'witness query --kind approval.request,approval.decision',
    predicate: { kinds: ['approval.request', 'approval.decision'] },
  },
  { name: 'denials', title: 'Actions denied (by policy, a person or the gateway)', query: 'witness query --outcome denied', predicate: { outcomes: ['denied'], policy_decisions: ['deny'] } },
  {
    name: 'overrides-and-halts',
    title: 'Human overrides, halts and resumes',
    query: 'witness query --kind human.override,human.halt,human.resume',
    predicate: { kinds: ['human.override', 'human.halt', 'human.resume'] },
  },
  {
    name: 'configuration-changes',
    title: 'Configuration changes (models, prompts, policies, tool scopes, retention, keys)',
    query: 'witness query --kind config.change',
    predicate: { kinds: ['config.change'] },
  },
  { name: 'reviews', title: 'Reviews of populations performed by people', query: 'witness query --kind review', predicate: { kinds: ['review'] } },
  { name: 'audit-access', title: 'Access to audit data (reads, searches, exports, verifications)', query: 'witness query --kind audit.access', predicate: { kinds: ['audit.access'] } },
  {
    name: 'errors-and-gaps',
    title: 'Errors, alerts and recording gaps',
    query: 'witness query --kind error,alert; witness query --outcome error',
    predicate: { kinds: ['error', 'alert'], outcomes: ['error'] },
  },
];

/** A predicate's lists are alternatives: any match puts the event in the population. */
export function inPopulation(p, e) {
  const pr = p.predicate;
  return (
    pr.kinds?.includes(e.kind) === true ||
    (e.outcome !== undefined && pr.outcomes?.includes(e.outcome) === true) ||
    (e.policy !== undefined && pr.policy_decisions?.includes(e.policy.decision) === true)
  );
}

/** The line an event contributes to populations/<name>.jsonl: these keys in this order, then LF. */
export function populationLine(leaf, e, hash) {
  return `${JSON.stringify({ leaf, id: e.id, stream: e.stream, seq: e.seq, kind: e.kind, ts: e.ts, outcome: e.outcome ?? null, hash })}\n`;
}

const ARTIFACT_EXTENSIONS = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/svg+xml': 'svg.txt',
  'video/mp4': 'mp4',
  'video/webm': 'webm',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'text/vtt': 'vtt',
  'text/plain': 'txt',
  'text/html': 'html.txt',
  'text/csv': 'csv',
  'application/json': 'json',
  'application/pdf': 'pdf',
};

export function artifactExtension(mime) {
  const base = mime.split(';')[0].trim().toLowerCase();
  return Object.hasOwn(ARTIFACT_EXTENSIONS, base) ? ARTIFACT_EXTENSIONS[base] : 'bin';
}

// ---------------------------------------------------------------------------------------------
// Reading a bundle: a directory, or a zip read here with node:zlib.

/** The bundle as a whole is refused: one bundle_invalid failure, whatever else was found. */
class Refusal extends Error {}

/** A line of only JSON whitespace (FORMAT.md 2.1: skipped, as every verifier does). */
const BLANK = /^[ \t\r]*$/;

/** A bundle this verifier cannot read at all (exit 2): not evidence of tampering. */
class Unreadable extends Error {}

const ARTIFACT_NAME = /^artifacts\/([0-9a-f]{64})\.([a-z0-9]{1,8}(?:\.[a-z0-9]{1,8})?)$/;
const POPULATION_NAME = /^populations\/([a-z0-9][a-z0-9-]{0,63})\.jsonl$/;

/** The cap of each name a v2 bundle holds (docs/FORMAT.md 7.1), or undefined for a name it never has. */
function capOfName(name) {
  switch (name) {
    case 'manifest.json':
    case 'system.json':
    case 'verify.mjs':
      return LIMITS.manifestBytes;
    case 'checkpoint.txt':
    case 'keys.json':
    case 'README.txt':
    case 'populations/index.json':
      return LIMITS.smallFileBytes;
    case 'events.jsonl':
    case 'proofs.jsonl':
    case 'checkpoints.jsonl':
    case 'purges.jsonl':
    case 'purge-proofs.jsonl':
    case 'anchors.jsonl':
    case 'report.html':
      return LIMITS.fileBytes;
    default:
      return ARTIFACT_NAME.test(name) || POPULATION_NAME.test(name) ? LIMITS.fileBytes : undefined;
  }
}

/** A directory bundle: files opened without following links, regular files only, within caps. */
class DirectorySource {
  constructor(dir) {
    this.dir = dir;
  }

  /** { size, chunks() } or { missing } / { problem }. */
  open(name, cap) {
    let fd;
    try {
      fd = fs.openSync(path.join(this.dir, name), fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
    } catch (e) {
      if (e.code === 'ENOENT') return { missing: true };
      return { problem: `${name} cannot be opened (${e.code ?? 'error'}; a link is not followed)` };
    }
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      fs.closeSync(fd);
      return { problem: `${name} is not a regular file` };
    }
    if (st.size > cap) {
      fs.closeSync(fd);
      return { problem: `${name} is ${st.size} bytes, more than the ${cap} it may have`, tooLarge: true };
    }
    return { size: st.size, chunks: () => fs.createReadStream('', { fd, highWaterMark: 1024 * 1024 }) };
  }

  /** The names of the files in the bundle, `/`-separated: the top level and its two folders. */
  names() {
    const out = [];
    for (const d of fs.readdirSync(this.dir, { withFileTypes: true })) {
      if (d.isDirectory() && (d.name === 'artifacts' || d.name === 'populations')) {
        for (const f of fs.readdirSync(path.join(this.dir, d.name))) out.push(`${d.name}/${f}`);
      } else out.push(d.name);
    }
    return out;
  }
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 (zlib.crc32 where Node has it: 20.15 and 22.2 on; the table otherwise). */
const crc32 = typeof zlib.crc32 === 'function' ? (crc, buf) => zlib.crc32(buf, crc) : crc32Table;

/** CRC-32 from the table, for Node versions without zlib.crc32. */
export function crc32Table(crc, buf) {
  let c = ~crc;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * The extra-field blocks a bundle's writers write (FORMAT.md 7.1): ZIP64 (0x0001: yazl past 4 GiB,
 * `zip -fz`), Info-ZIP zip's extended timestamp (0x5455) and Unix UID/GID (0x7875). Any other is
 * refused: the Unicode path block (0x7075) gives an entry another name in the readers that honour it.
 */
const EXTRA_IDS = new Set([0x0001, 0x5455, 0x7875]);

/**
 * The data of the ZIP64 block (0x0001) of a header's extra field, or undefined; refused: a block
 * running past the field, a block no bundle's writer adds, two ZIP64 blocks.
 */
function zip64Field(extra, name) {
  let found;
  let i = 0;
  while (i + 4 <= extra.length) {
    const id = extra.readUInt16LE(i);
    const len = extra.readUInt16LE(i + 2);
    if (i + 4 + len > extra.length) throw new Refusal('the zip holds an extra field longer than its record');
    if (!EXTRA_IDS.has(id)) {
      throw new Refusal(
        `the zip entry ${name} has an extra field 0x${id.toString(16).padStart(4, '0')}, which no writer of a bundle adds (only ZIP64 0x0001, timestamp 0x5455 and Unix owner 0x7875 are read) and which can show other readers another name or other bytes`,
      );
    }
    if (id === 0x0001) {
      if (found !== undefined) throw new Refusal('the zip holds an entry with two ZIP64 extra fields, which readers take differently');
      found = extra.subarray(i + 4, i + 4 + len);
    }
    i += 4 + len;
  }
  return found;
}

/**
 * Why entry `e`'s local header (30 bytes `lh`, extra field `extra`) is refused, or undefined: it says
 * what the central record says (FORMAT.md 7.1 step 4), since streaming readers and unzip believe it.
 * The same flags and method; the same version needed, or one of them 45 (ZIP64) and the other less
 * (yazl: local 20, central 45; `zip -fz`: local 45, a directory's central 10); without a data
 * descriptor the same CRC-32 and sizes, all-ones sizes read from a 16-byte ZIP64 block (uncompressed,
 * compressed); with one, CRC-32 and compressed size 0 and an uncompressed size of 0 or the true one.
 */
function localHeaderProblem(lh, extra, e) {
  const z = zip64Field(extra, e.name);
  const version = lh.readUInt16LE(4);
  if (version !== e.version && Math.max(version, e.version) !== 45) {
    return `the zip entry ${e.name} has a local header saying version ${version} is needed to extract it where its central record says ${e.version}, so two readers would see two bundles`;
  }
  const flags = lh.readUInt16LE(6);
  if (flags !== e.flags)
    return `the zip entry ${e.name} has a local header with flags 0x${flags.toString(16)} where its central record has 0x${e.flags.toString(16)}, so two readers would see two bundles`;
  const method = lh.readUInt16LE(8);
  if (method !== e.method)
    return `the zip entry ${e.name} has a local header declaring compression method ${method} where its central record declares ${e.method}, so another reader would extract other bytes`;
  const crc = lh.readUInt32LE(14);
  let csize = lh.readUInt32LE(18);
  let usize = lh.readUInt32LE(22);
  if (z !== undefined || csize === 0xffffffff || usize === 0xffffffff) {
    if (z?.length !== 16 || csize !== 0xffffffff || usize !== 0xffffffff) {
      return `the zip entry ${e.name} has a local header that does not give its ZIP64 sizes as every writer does (both sizes all ones, and both in a 16-byte ZIP64 block), so readers would take different sizes`;
    }
    usize = Number(z.readBigUInt64LE(0));
    csize = Number(z.readBigUInt64LE(8));
  }
  if (flags & 0x08) {
    if (crc !== 0 || csize !== 0 || (usize !== 0 && usize !== e.usize)) {
      return `the zip entry ${e.name} has a data descriptor and a local header declaring a CRC-32 or sizes (${csize} compressed, ${usize} uncompressed) other than zero and its true size, so another reader would extract other bytes`;
    }
    return undefined;
  }
  if (crc !== e.crc)
    return `the zip entry ${e.name} has a local header declaring CRC-32 ${crc.toString(16).padStart(8, '0')} where its central record declares ${e.crc.toString(16).padStart(8, '0')}, so another reader would extract other bytes`;
  if (csize !== e.csize || usize !== e.usize) {
    return `the zip entry ${e.name} has a local header declaring a size of ${csize} compressed and ${usize} uncompressed bytes where its central record declares ${e.csize} and ${e.usize}, so another reader would extract other bytes`;
  }
  return undefined;
}

/**
 * A zip bundle, read from its central directory. Refused (Refusal: one bundle_invalid) for: a name
 * with `..`, a leading `/`, a backslash or a drive letter; a name no bundle has; a name twice; a
 * symbolic link; an encrypted entry; a method other than stored or deflate; an entry declaring more
 * than its name's cap; entries overlapping each other. Entries are inflated as streams and stop the
 * moment they exceed their declared size (a zip bomb is read no further than that size, which is
 * capped); sizes and CRC-32 are checked at the end of each entry. ZIP64 records are read (yazl writes
 * them past 4 GiB, `zip -fz` on any file), as `witness verify` reads them.
 */
class ZipSource {
  constructor(file) {
    this.file = file;
    this.fd = fs.openSync(file, 'r');
    this.size = fs.fstatSync(this.fd).size;
    this.entries = new Map();
    this.readDirectory();
  }

  read(pos, len) {
    const b = Buffer.alloc(len);
    const n = fs.readSync(this.fd, b, 0, len, pos);
    if (n !== len) throw new Refusal('the zip is cut off');
    return b;
  }

  /**
   * The end records and the central directory (FORMAT.md 7.1): the last 22 bytes are the end
   * record, without comment, on one disk; a ZIP64 locator before it points at the 56-byte ZIP64 end
   * record right before the locator, whose values the end record's fields equal or hold as all-ones
   * placeholders; the central directory ends exactly where those records begin and its records are
   * exactly `count`, filling exactly its declared size. Anything else is where one file shows one
   * bundle to one reader and another bundle to the next.
   */
  endRecords() {
    if (this.size < 22) throw new Refusal('the file is not a zip archive (it is shorter than an end record)');
    const end = this.read(this.size - 22, 22);
    if (end.readUInt32LE(0) !== 0x06054b50) {
      const tail = Math.min(this.size, 22 + 0xffff);
      const buf = this.read(this.size - tail, tail);
      for (let i = tail - 22; i >= 0; i--) {
        if (buf.readUInt32LE(i) !== 0x06054b50) continue;
        // One archive, one reading: a comment after the end record could hold a second central
        // directory that another reader follows; the exporter never writes one.
        if (i + 22 + buf.readUInt16LE(i + 20) === tail) throw new Refusal('the zip carries an archive comment, which an evidence bundle never has (it could hide a second bundle)');
        throw new Refusal('the zip has data after its end record, which an evidence bundle never has');
      }
      throw new Refusal('the file is not a zip archive (it does not end with an end-of-central-directory record)');
    }
    if (end.readUInt16LE(20) !== 0) throw new Refusal('the file is not a zip archive (its end record declares a comment the file does not hold)');
    if (end.readUInt16LE(4) !== 0 || end.readUInt16LE(6) !== 0 || end.readUInt16LE(8) !== end.readUInt16LE(10)) throw new Refusal('the zip spans several disks, which an evidence bundle never does');
    let count = end.readUInt16LE(10);
    let cdSize = end.readUInt32LE(12);
    let cdOffset = end.readUInt32LE(16);
    let cdEnd = this.size - 22;
    if (this.size >= 42 && this.read(this.size - 42, 4).readUInt32LE(0) === 0x07064b50) {
      const locator = this.read(this.size - 42, 20);
      if (locator.readUInt32LE(4) !== 0 || locator.readUInt32LE(16) !== 1) throw new Refusal('the zip spans several disks, which an evidence bundle never does');
      const at = this.size - 42 - 56;
      if (at < 0 || locator.readBigUInt64LE(8) !== BigInt(at)) {
        throw new Refusal('the zip has a ZIP64 locator that does not point at a ZIP64 end record right before it, which an evidence bundle never has');
      }
      const record = this.read(at, 56);
      if (record.readUInt32LE(0) !== 0x06064b50 || record.readBigUInt64LE(4) !== 44n) {
        throw new Refusal('the zip has no 56-byte ZIP64 end record where its locator points, which an evidence bundle never has');
      }
      if (record.readUInt32LE(16) !== 0 || record.readUInt32LE(20) !== 0 || record.readBigUInt64LE(24) !== record.readBigUInt64LE(32)) {
        throw new Refusal('the zip spans several disks, which an evidence bundle never does');
      }
      const big = [record.readBigUInt64LE(32), record.readBigUInt64LE(40), record.readBigUInt64LE(48)];
      if (big.some((v) => v > BigInt(this.size))) throw new Refusal('the zip has a ZIP64 end record declaring more than the file holds');
      const [count64, size64, offset64] = big.map(Number);
      if ((count !== 0xffff && count !== count64) || (cdSize !== 0xffffffff && cdSize !== size64) || (cdOffset !== 0xffffffff && cdOffset !== offset64)) {
        throw new Refusal('the zip has an end record and a ZIP64 end record that disagree, so two readers would see two archives');
      }
      [count, cdSize, cdOffset, cdEnd] = [count64, size64, offset64, at];
    }
    if (cdOffset + cdSize !== cdEnd) {
      throw new Refusal(
        `the zip has a central directory (at ${cdOffset}, ${cdSize} bytes) that does not end where its end records begin (at ${cdEnd}), so another reader could find a second archive there`,
      );
    }
    if (count > LIMITS.zipEntries) throw new Refusal(`the zip declares ${count} entries, more than any evidence bundle holds`);
    return { count, cdSize, cdOffset };
  }

  readDirectory() {
    const { count, cdSize, cdOffset } = this.endRecords();
    const cd = this.read(cdOffset, cdSize);
    const list = [];
    /** Every entry, directories included: together they must fill the archive up to the central directory. */
    const layout = [];
    const seenDirs = new Set();
    let p = 0;
    let total = 0;
    const short = (n) => new Refusal(`the zip has ${n} central-directory record(s) in the ${cdSize} bytes its end record declares, not the ${count} it counts: the central directory is damaged`);
    for (let n = 0; n < count; n++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw short(n);
      const madeBy = cd.readUInt16LE(p + 4);
      const version = cd.readUInt16LE(p + 6);
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const crc = cd.readUInt32LE(p + 16);
      let csize = cd.readUInt32LE(p + 20);
      let usize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      const attrs = cd.readUInt32LE(p + 38);
      let offset = cd.readUInt32LE(p + 42);
      const next = p + 46 + nameLen + extraLen + commentLen;
      if (next > cd.length) throw short(n);
      const name = cd.subarray(p + 46, p + 46 + nameLen).toString('latin1');
      // Bundle names are ASCII (FORMAT.md 7.1); a NUL ends a name for some readers and not for others.
      if (!/^[\x20-\x7e]+$/.test(name)) throw new Refusal(`the zip holds an entry whose name is not printable ASCII (${JSON.stringify(name.slice(0, 80))}), which no evidence bundle has`);
      // ZIP64 (FORMAT.md 7.1): a size or offset of all ones is read from the 0x0001 extra field, in
      // the order uncompressed size, compressed size, local header offset, as every reader does.
      const zip64 = zip64Field(cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen), name);
      if (usize === 0xffffffff || csize === 0xffffffff || offset === 0xffffffff) {
        let at = 0;
        const take = () => {
          if (zip64 === undefined || at + 8 > zip64.length) throw new Refusal(`the zip entry ${name} declares a ZIP64 size or offset its extra field does not hold`);
          const v = zip64.readBigUInt64LE(at);
          at += 8;
          if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Refusal(`the zip entry ${name} declares a ZIP64 size or offset beyond any evidence bundle`);
          return Number(v);
        };
        if (usize === 0xffffffff) usize = take();
        if (csize === 0xffffffff) csize = take();
        if (offset === 0xffffffff) offset = take();
      }
      p = next;
      if (name.startsWith('/') || name.includes('\\') || /^[A-Za-z]:/.test(name) || name.split('/').includes('..')) {
        throw new Refusal(`the zip holds the entry ${JSON.stringify(name)}, a path outside the bundle`);
      }
      if (madeBy >>> 8 === 3 && ((attrs >>> 16) & 0o170000) === 0o120000) throw new Refusal(`the zip entry ${name} is a symbolic link`);
      if (flags & 0x41) throw new Refusal(`the zip entry ${name} is encrypted`);
      if (this.entries.has(name) || seenDirs.has(name)) throw new Refusal(`the zip holds ${name} twice`);
      if (name === 'artifacts/' || name === 'populations/') {
        seenDirs.add(name);
        layout.push({ name, version, flags, method, crc, csize, usize, offset });
        continue;
      }
      const cap = capOfName(name);
      if (cap === undefined) throw new Refusal(`the zip holds ${JSON.stringify(name)}, which no evidence bundle has`);
      if (method !== 0 && method !== 8) throw new Refusal(`the zip entry ${name} uses compression method ${method}; only stored and deflate are read`);
      if (method === 0 && csize !== usize) throw new Refusal(`the stored zip entry ${name} declares two different sizes`);
      if (usize > cap) throw new Refusal(`the zip entry ${name} declares ${usize} bytes, more than the ${cap} it may have`);
      if (usize > 1024 * 1024 && usize > 200 * csize) throw new Refusal(`the zip entry ${name} unpacks to ${usize} bytes from ${csize}, more than 200 times its size: a compression bomb`);
      total += usize;
      if (total > LIMITS.zipTotalBytes) throw new Refusal('the zip declares more content than any evidence bundle holds');
      const e = { name, version, method, flags, crc, csize, usize, offset };
      this.entries.set(name, e);
      list.push(e);
      layout.push(e);
    }
    if (p !== cd.length)
      throw new Refusal(`the zip has ${cd.length - p} bytes in its central directory after the ${count} record(s) its end record counts, where a second archive's records could hide`);
    // Entries must not overlap: each one's data ends before the next one starts (a classic bomb
    // reuses one compressed stream for many entries).
    // No bytes before the first entry, between entries or before the central directory: the
    // exporter never writes any, and they are where a second archive hides (FORMAT.md 7.1).
    layout.sort((a, b) => a.offset - b.offset);
    let at0 = 0;
    for (let i = 0; i < layout.length; i++) {
      const e = layout[i];
      if (e.offset !== at0)
        throw new Refusal(
          at0 === 0 ? 'the zip has data before its first entry, which an evidence bundle never has' : `the zip has data between its entries (before ${e.name}), which an evidence bundle never has`,
        );
      if (e.offset + 30 > cdOffset) throw new Refusal(`the zip entry ${e.name} lies outside the archive`);
      const lh = this.read(e.offset, 30);
      if (lh.readUInt32LE(0) !== 0x04034b50) throw new Refusal(`the zip entry ${e.name} has no local header`);
      const nameLen = lh.readUInt16LE(26);
      e.data = e.offset + 30 + nameLen + lh.readUInt16LE(28);
      if (this.read(e.offset + 30, nameLen).toString('latin1') !== e.name) throw new Refusal(`the zip entry ${e.name} has another name in its local header`);
      const local = localHeaderProblem(lh, this.read(e.offset + 30 + nameLen, lh.readUInt16LE(28)), e);
      if (local !== undefined) throw new Refusal(local);
      const end = i + 1 < layout.length ? layout[i + 1].offset : cdOffset;
      if (e.data + e.csize > end) throw new Refusal(`the zip entry ${e.name} overlaps the next one`);
      at0 = e.data + e.csize + this.descriptorLength(e, end);
    }
    if (at0 !== cdOffset) throw new Refusal('the zip has data between its last entry and its central directory, which an evidence bundle never has');
  }

  /**
   * The length of the data descriptor after entry `e`'s data (flag bit 3), checked against its
   * central record: with or without its signature, its sizes read as 64-bit first and 32-bit second
   * (FORMAT.md 7.1: an empty entry's descriptor followed by zero bytes reads both ways); 0 without one.
   */
  descriptorLength(e, end) {
    if ((e.flags & 0x08) === 0) return 0;
    const at = e.data + e.csize;
    const b = this.read(at, Math.min(24, end - at));
    const signed = b.length >= 4 && b.readUInt32LE(0) === 0x08074b50 ? 4 : 0;
    if (b.length >= signed + 4 && b.readUInt32LE(signed) === e.crc) {
      if (b.length >= signed + 20 && b.readBigUInt64LE(signed + 4) === BigInt(e.csize) && b.readBigUInt64LE(signed + 12) === BigInt(e.usize)) return signed + 20;
      if (b.length >= signed + 12 && b.readUInt32LE(signed + 4) === e.csize && b.readUInt32LE(signed + 8) === e.usize) return signed + 12;
    }
    throw new Refusal(`the zip entry ${e.name} has a data descriptor that does not match its central record`);
  }

  open(name, cap) {
    const e = this.entries.get(name);
    if (e === undefined) return { missing: true };
    if (e.usize > cap) return { problem: `${name} is ${e.usize} bytes, more than the ${cap} it may have`, tooLarge: true };
    return { size: e.usize, chunks: () => this.entryChunks(e) };
  }

  async *entryChunks(e) {
    let source = e.csize === 0 ? [] : fs.createReadStream(this.file, { start: e.data, end: e.data + e.csize - 1, highWaterMark: 1024 * 1024 });
    if (e.method === 8) {
      const inflate = zlib.createInflateRaw();
      if (e.csize === 0) inflate.end();
      else {
        source.on('error', (err) => inflate.destroy(err));
        source.pipe(inflate);
      }
      source = inflate;
    }
    let n = 0;
    let crc = 0;
    try {
      for await (const chunk of source) {
        n += chunk.length;
        if (n > e.usize) throw new Refusal(`the zip entry ${e.name} inflates to more than the ${e.usize} bytes it declares`);
        crc = crc32(crc, chunk);
        yield chunk;
      }
    } catch (err) {
      if (err instanceof Refusal) throw err;
      throw new Refusal(`the zip entry ${e.name} cannot be read (${err.message})`);
    } finally {
      source.destroy?.();
    }
    if (n !== e.usize || crc !== e.crc) throw new Refusal(`the zip entry ${e.name} does not match its declared size and CRC-32: the archive is damaged`);
  }

  names() {
    return [...this.entries.keys()];
  }

  close() {
    fs.closeSync(this.fd);
  }
}

/**
 * Bytes that are not UTF-8 decode to U+FFFD, as `witness verify` reads them: the text then differs
 * from what was hashed and signed, and every byte is covered by manifest.json's digests anyway.
 */
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Lines of a file, streamed: { n, text } per LF-terminated line (a last line without LF too).
 * `hash` receives every byte. A line longer than `maxLine` refuses the bundle.
 */
async function* lines(name, chunks, maxLine, hash) {
  let parts = [];
  let len = 0;
  let n = 0;
  const decode = () => {
    try {
      return utf8.decode(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    } catch {
      return undefined;
    }
  };
  for await (const chunk of chunks) {
    hash?.update(chunk);
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const piece = chunk.subarray(start, nl < 0 ? chunk.length : nl);
      len += piece.length;
      if (len > maxLine) throw new Refusal(`${name} line ${n + 1} is longer than ${maxLine} bytes, more than the bundle's writer ever puts on one line`);
      if (piece.length > 0) parts.push(piece);
      if (nl < 0) break;
      n++;
      yield { n, text: decode() };
      parts = [];
      len = 0;
      start = nl + 1;
    }
  }
  if (len > 0) {
    n++;
    yield { n, text: decode() };
  }
}

async function readAll(chunks) {
  const parts = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// The verifier.

const FORMAT = 'witness-evidence';

/** Verifies the bundle read through `source`; returns the report (never throws on hostile input). */
export async function verifyBundle(source, opts = {}) {
  const failures = [];
  const warnings = [];
  let stopped = false;
  const fail = (f) => {
    if (failures.length < LIMITS.maxFailures) failures.push(f);
    else stopped = true;
  };
  const r = {
    ok: false,
    unverifiable: false,
    events: 0,
    streams: 0,
    checkpoints: 0,
    sealedSize: 0,
    unsealed: 0,
    payloadsAbsent: 0,
    artifacts: 0,
    openSessions: 0,
    failures,
    trust: { keys: [], statement: 'Nothing was relied on: the bundle was refused before any signature or hash chain was checked.' },
    warnings,
    bundle: undefined,
  };
  const finish = () => {
    failures.sort((a, b) => (a.leaf ?? Number.MAX_SAFE_INTEGER) - (b.leaf ?? Number.MAX_SAFE_INTEGER));
    r.ok = failures.length === 0 && !r.unverifiable;
    if (failures[0] !== undefined) r.first = failures[0];
    return r;
  };
  try {
    await verifyInto(source, opts, r, fail, warnings, () => stopped);
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    failures.length = 0;
    failures.push({ code: 'bundle_invalid', reason: `${e.message}: the bundle was refused.` });
  }
  return finish();
}

/**
 * The checks, in the order `witness verify` makes them (so both name the same first failure):
 * manifest; every file against manifest.files; keys and checkpoint.txt; checkpoints.jsonl;
 * events.jsonl beside proofs.jsonl; the export event; populations; artifacts; system.json.
 */
async function verifyInto(source, opts, r, fail, warnings, stopped) {
  const openOrFail = (name, cap) => {
    const f = source.open(name, cap);
    if (f.tooLarge) throw new Refusal(f.problem);
    if (f.missing) {
      fail({ code: 'bundle_invalid', reason: `${name} is missing: a format-2 bundle has it.` });
      return undefined;
    }
    if (f.problem !== undefined) {
      fail({ code: 'bundle_invalid', reason: `${f.problem}.` });
      return undefined;
    }
    return f;
  };
  const readSmall = async (name, cap) => {
    const f = openOrFail(name, cap);
    if (f === undefined) return undefined;
    const bytes = await readAll(f.chunks());
    try {
      return utf8.decode(bytes);
    } catch {
      fail({ code: 'bundle_invalid', reason: `${name} is not UTF-8 text.` });
      return undefined;
    }
  };
  const readJson = async (name, cap) => {
    const text = await readSmall(name, cap);
    if (text === undefined) return undefined;
    try {
      return strictParse(text);
    } catch (e) {
      fail({ code: 'bundle_invalid', reason: `${name} is not strict JSON: ${e.message}.` });
      return undefined;
    }
  };
  /** Lines of events.jsonl, counted while it is hashed (before proofs.jsonl, whose size they bound). */
  let eventLines = 0;
  const digestOf = async (f, countLines = false) => {
    const h = createHash('sha256');
    for await (const c of f.chunks()) {
      h.update(c);
      if (countLines) for (let i = c.indexOf(10); i >= 0; i = c.indexOf(10, i + 1)) eventLines++;
    }
    return h.digest('hex');
  };

  // --- manifest
  const m = await readJson('manifest.json', LIMITS.manifestBytes);
  if (!isObject(m)) {
    if (m !== undefined) fail({ code: 'bundle_invalid', reason: 'manifest.json is not a JSON object.' });
    return;
  }
  if (m.format !== FORMAT) return void fail({ code: 'bundle_invalid', reason: 'manifest.json does not describe a Witness evidence bundle.' });
  if (m.version === 1) throw new Unreadable('this is a version 1 bundle; verify it with `witness verify`, which reads both versions');
  if (Number.isSafeInteger(m.version) && m.version > 2) {
    r.unverifiable = true;
    warnings.push(`The bundle is format version ${m.version}, newer than this verifier (2): unverifiable by this version, not necessarily tampered.`);
    return;
  }
  const manifestProblem = checkManifest(m);
  if (manifestProblem !== undefined) return void fail({ code: 'bundle_invalid', reason: `manifest.json is invalid: ${manifestProblem}.` });
  const origin = m.ledger.origin;
  const span = m.span;
  const spanCount = span.to - span.from;

  // --- files: every one listed in the manifest, re-hashed; nothing else in the bundle
  const present = source.names().sort();
  const digests = new Map();
  for (const name of present) {
    if (name === 'manifest.json') continue;
    const cap = capOfName(name);
    if (cap === undefined) {
      fail({ code: 'bundle_invalid', reason: `The bundle holds ${JSON.stringify(name)}, which no format-2 bundle has.` });
      continue;
    }
    const f = source.open(name, cap);
    if (f.tooLarge) throw new Refusal(f.problem);
    if (f.missing || f.problem !== undefined) {
      fail({ code: 'bundle_invalid', reason: `${f.problem ?? `${name} cannot be read`}.` });
      continue;
    }
    if (name === 'proofs.jsonl' && f.size > Math.max(eventLines, 1) * LIMITS.proofLineBytes) {
      throw new Refusal(`proofs.jsonl is ${f.size} bytes, more than ${LIMITS.proofLineBytes} bytes for each of the ${eventLines} lines of events.jsonl`);
    }
    digests.set(name, await digestOf(f, name === 'events.jsonl'));
    if (!Object.hasOwn(m.files, name)) fail({ code: 'file_mismatch', reason: `${name} is in the bundle but not listed in manifest.json: it was added after the export.` });
  }
  for (const [name, sha] of Object.entries(m.files)) {
    const got = digests.get(name);
    if (got === undefined) {
      if (!present.includes(name)) fail({ code: 'file_mismatch', reason: `manifest.json lists ${name}, which is not in the bundle: it was removed.` });
    } else if (got !== sha) {
      fail({ code: 'file_mismatch', reason: `${name} does not have the SHA-256 manifest.json lists for it: it was changed after the export.` });
    }
  }

  // --- keys and checkpoint.txt
  const keysJson = await readJson('keys.json', LIMITS.smallFileBytes);
  const shipped = [];
  if (keysJson !== undefined) {
    const problem = keyHistoryProblem(keysJson);
    if (problem !== undefined) fail({ code: 'bundle_invalid', reason: `keys.json is invalid: ${problem}.` });
    else {
      keysJson.keys.forEach((k, i) => {
        try {
          const v = parseVerifierKey(k.vkey);
          shipped.push(v);
          if (v.fingerprint !== k.fingerprint)
            fail({ code: 'bundle_invalid', reason: `keys.json key ${i + 1} gives the fingerprint ${k.fingerprint}, which is not its key's: the key history was edited.` });
        } catch (e) {
          fail({ code: 'checkpoint_signature', reason: `keys.json key ${i + 1} is malformed: ${e.message}.` });
        }
      });
    }
  }
  // The key windows keys.json states (FORMAT.md "Key history and rotation"): every key whose window holds a checkpoint's size must sign it.
  // A history of several keys is always judged by windows (one without them is a key_history_mismatch below), never "no windows, no rule".
  const keysOk = keysJson !== undefined && keyHistoryProblem(keysJson) === undefined;
  const windows =
    keysOk && (keysJson.keys.length > 1 || keysJson.keys.some((k) => k.from_size !== undefined))
      ? keysJson.keys.map((k) => ({ fingerprint: k.fingerprint, from: k.from_size ?? 0, until: k.until_size ?? null, leaf: k.rotated_at_leaf ?? null }))
      : undefined;
  const pinned = opts.trustedKeys !== undefined && opts.trustedKeys.length > 0;
  // Pinning a key of a rotated history trusts the other keys of keys.json (bound by the export record),
  // each within its window, provided checkpoint.txt, the newest, is signed by a pinned key.
  const pins = pinned ? opts.trustedKeys.map(parseVerifierKey) : [];
  const pinnedIds = new Set(pins.map((v) => v.fingerprint));
  const verifiers = pinned ? (shipped.length > 1 ? [...pins, ...shipped.filter((v) => !pinnedIds.has(v.fingerprint))] : pins) : shipped;
  const keySource = pinned ? 'pinned' : 'bundle';
  const usedKeys = new Map();
  const trust = (checkpoints) => {
    r.checkpoints = checkpoints;
    r.trust = {
      keys: [...usedKeys.values()].map((k) => ({ name: k.name, keyHash: hex8(k.keyHash), source: keySource })),
      statement: trustStatement(keySource, usedKeys.size, checkpoints),
    };
  };
  const open = (note) => {
    const { text, verified } = openNote(note, verifiers);
    const c = parseCheckpoint(text);
    if (c.origin !== origin) throw Object.assign(new Error(`the checkpoint is for log ${JSON.stringify(c.origin)}, not ${JSON.stringify(origin)}`), { code: 'checkpoint_invalid' });
    for (const v of verified) usedKeys.set(v.fingerprint, v);
    return { ...c, text, windowProblem: windows === undefined ? undefined : windowProblem(windows, c.size, verified) };
  };
  const note = await readSmall('checkpoint.txt', LIMITS.smallFileBytes);
  if (note === undefined) return;
  let cp;
  try {
    cp = open(note);
    const signers = openNote(note, verifiers).verified;
    if (pinned && !signers.some((v) => pinnedIds.has(v.fingerprint))) {
      fail({
        code: 'checkpoint_signature',
        reason: `checkpoint.txt (size ${cp.size}) is signed by ${signers.map((v) => v.fingerprint).join(' and ')} but by no key you pinned: pin the key in use at the bundle's checkpoint (older keys are trusted through keys.json from it).`,
      });
    }
    if (cp.windowProblem !== undefined) fail({ code: cp.windowProblem.code, reason: `The bundle's checkpoint: ${cp.windowProblem.reason}` });
  } catch (e) {
    fail({ code: e.code ?? 'checkpoint_invalid', reason: `The bundle's checkpoint does not verify: ${e.message}.` });
    return trust(0);
  }
  if (cp.size !== m.checkpoint.size || cp.root.toString('hex') !== m.checkpoint.root) {
    fail({ code: 'checkpoint_invalid', reason: `manifest.json names checkpoint size ${m.checkpoint.size}, but checkpoint.txt signs size ${cp.size} with another root.` });
  }
  // The manifest is not signed: its ledger id is believed only as the part of the signed origin after its last "/witness/" (FORMAT.md 7.2).
  const signedId = ledgerIdOf(origin);
  if (signedId !== m.ledger.id) {
    fail({
      code: 'checkpoint_invalid',
      reason: `manifest.json names ledger ${JSON.stringify(m.ledger.id)}, but checkpoint.txt signs the log of ${signedId === undefined ? 'no ledger id' : `ledger ${JSON.stringify(signedId)}`} (origin ${JSON.stringify(origin)}).`,
    });
  }
  r.sealedSize = cp.size;

  // --- checkpoints.jsonl: each note signed, each extending the previous, the last one checkpoint.txt
  let checked = 1;
  /** The sizes the lines of checkpoints.jsonl name, in order: the export record binds the first. */
  const logSizes = [];
  const cpsFile = openOrFail('checkpoints.jsonl', LIMITS.fileBytes);
  if (cpsFile !== undefined) {
    checked = 0;
    let prev;
    let n = 0;
    for await (const line of lines('checkpoints.jsonl', cpsFile.chunks(), LIMITS.checkpointLineBytes)) {
      if (line.text !== undefined && BLANK.test(line.text)) continue;
      const first = n === 0;
      n = line.n;
      const where = { checkpoint: line.n };
      let c;
      try {
        if (line.text === undefined) throw new Error('it is not UTF-8');
        c = strictParse(line.text);
        const problem = checkpointLineProblem(c);
        if (problem !== undefined) throw new Error(problem);
      } catch (e) {
        fail({ code: 'bundle_invalid', ...where, reason: `checkpoints.jsonl line ${line.n} is malformed: ${e.message}.` });
        prev = undefined;
        continue;
      }
      logSizes.push(c.size);
      // The first line has no checkpoint before it in the bundle: a proof there proves nothing, so it is refused (FORMAT.md 7.5).
      if (first && c.consistency !== undefined) {
        fail({ code: 'bundle_invalid', ...where, reason: 'The first line of checkpoints.jsonl carries a consistency proof, but there is no checkpoint before it in the bundle to prove it from.' });
      }
      let opened;
      try {
        opened = open(c.note);
        if (opened.windowProblem !== undefined) fail({ code: opened.windowProblem.code, ...where, reason: `Checkpoint on line ${line.n} of checkpoints.jsonl: ${opened.windowProblem.reason}` });
      } catch (e) {
        fail({ code: e.code ?? 'checkpoint_invalid', ...where, reason: `Checkpoint on line ${line.n} of checkpoints.jsonl does not verify: ${e.message}.` });
        prev = undefined;
        continue;
      }
      if (opened.size !== c.size || opened.root.toString('hex') !== c.root) {
        fail({ code: 'checkpoint_invalid', ...where, reason: `checkpoints.jsonl line ${line.n} says size ${c.size}, but its signed note says size ${opened.size} with another root.` });
      }
      if (prev !== undefined) {
        const why = consistencyProblem(
          prev.size,
          opened.size,
          (c.consistency ?? []).map((x) => Buffer.from(x, 'hex')),
          prev.root,
          opened.root,
        );
        if (why !== undefined)
          fail({
            code: 'consistency_failed',
            ...where,
            reason: `Checkpoint on line ${line.n} (size ${opened.size}) is not consistent with the previous line's (size ${prev.size}): ${why}; history was rewritten.`,
          });
      }
      prev = opened;
      checked++;
    }
    if (n === 0) fail({ code: 'bundle_invalid', reason: 'checkpoints.jsonl holds no checkpoint; it must end with checkpoint.txt.' });
    else if (prev === undefined || prev.size !== cp.size || !prev.root.equals(cp.root)) {
      fail({ code: 'checkpoint_invalid', checkpoint: n, reason: 'The last line of checkpoints.jsonl is not the checkpoint of checkpoint.txt.' });
    }
  }
  trust(checked);

  // --- purges.jsonl: the retention.purge records an absent in-scope payload may be listed by (FORMAT.md 7.13)
  const purges = await readPurges(source, cp, origin, fail);
  /** Record leaf → how many in-scope payloads of the span it shows purged. */
  const purgedBy = new Map();

  // --- events.jsonl beside proofs.jsonl
  const eventsFile = openOrFail('events.jsonl', LIMITS.fileBytes);
  if (eventsFile === undefined) return;
  const scope = new ScopeTracker(m.scope);
  const eventsDigest = createHash('sha256');
  const pops = POPULATIONS.map((def) => ({ def, lines: [] }));
  const streams = new Map();
  const wanted = new Map();
  const without = [];
  let inScope = 0;
  let exportEvent;
  /** leaf → payload (undefined when the bundle holds none) of each key.rotated event of the span, checked against keys.json after it. */
  const rotations = new Map();
  let expectLeaf = span.from;
  let lineCount = 0;
  const proofsFile = source.open('proofs.jsonl', LIMITS.fileBytes);
  if (proofsFile.tooLarge) throw new Refusal(proofsFile.problem);
  const proofs = new ProofReader(proofsFile.chunks === undefined ? undefined : lines('proofs.jsonl', proofsFile.chunks(), LIMITS.proofLineBytes), fail);
  const range = (from, to) => (to - from === 1 ? `leaf ${from}` : `leaves ${from}–${to - 1}`);
  /** Marks `leaf` as the next of the span, reporting what is missing or repeated before it. */
  const place = (leaf, at) => {
    if (leaf === expectLeaf) expectLeaf++;
    else if (leaf < expectLeaf)
      fail({ code: 'span_gap', ...at, leaf, reason: `Leaf ${leaf} appears again or out of order in events.jsonl (leaf ${expectLeaf} was due): events were reordered or inserted.` });
    else {
      fail({ code: 'span_gap', ...at, leaf, reason: `${range(expectLeaf, Math.min(leaf, span.to))} of the span ${span.from}–${span.to - 1} are missing from events.jsonl: events were left out.` });
      expectLeaf = leaf + 1;
    }
  };
  for await (const line of lines('events.jsonl', eventsFile.chunks(), LIMITS.eventLineBytes)) {
    if (stopped()) {
      warnings.push(`Verification stopped at events.jsonl line ${line.n} after ${LIMITS.maxFailures} failures.`);
      break;
    }
    if (line.text !== undefined && BLANK.test(line.text)) continue;
    lineCount++;
    let ev;
    try {
      if (line.text === undefined) throw new Error('it is not UTF-8');
      ev = strictParse(line.text);
      if (!isObject(ev)) throw new Error('it is not a JSON object');
    } catch (e) {
      let claimed;
      try {
        claimed = JSON.parse(line.text).leaf;
      } catch {
        claimed = undefined;
      }
      const leaf = Number.isSafeInteger(claimed) ? claimed : undefined;
      fail({ code: 'bundle_invalid', leaf, reason: `events.jsonl line ${line.n} is not strict JSON: ${e.message}.` });
      // Counted where it claims to be, so the one bad line is not also a gap in the span.
      if (leaf !== undefined && leaf < span.to) place(leaf, {});
      continue;
    }
    const { data, salt, hash, leaf, ...header } = ev;
    const stream = typeof header.stream === 'string' ? header.stream : '';
    const seq = Number.isSafeInteger(header.seq) ? header.seq : -1;
    if (!isSize(leaf) || typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
      fail({ code: 'bundle_invalid', stream, seq, reason: `events.jsonl line ${line.n} lacks a valid leaf index or hash.` });
      continue;
    }
    const at = { stream, seq, leaf };
    if (exportEvent !== undefined) {
      fail({ code: 'bundle_invalid', ...at, reason: `events.jsonl line ${line.n} follows the export event, which must be the last line.` });
      continue;
    }
    const isExport = leaf === m.export_event.leaf;
    if (!isExport) {
      if (leaf >= span.to) {
        fail({ code: 'span_gap', ...at, reason: `Leaf ${leaf} is outside the span ${span.from}–${span.to - 1} and is not the export event (leaf ${m.export_event.leaf}).` });
        continue;
      }
      place(leaf, at);
    }

    // --- header: schema, canonical form (docs/FORMAT.md 7.12 step 7.3). A header that fails the
    // schema (every one that cannot be canonicalised does) is reported once and left out of its
    // chain; its line's hash stands in for its inclusion proof and the events digest, and its scope
    // and payload presence are judged from the header as written. A payload that cannot be
    // canonicalised is non_canonical; its event keeps its place in the chain, the scope and the tree.
    let headerText;
    let headerOk = true;
    if (header.v !== 1) {
      fail({ code: 'unsupported_version', ...at, reason: `The header has version ${JSON.stringify(header.v)}, which no format-2 bundle holds: the header was altered.` });
      headerOk = false;
    } else {
      const problem = headerProblem(header);
      if (problem !== undefined) {
        fail({ code: 'invalid_header', ...at, reason: `The header field ${problem}.` });
        headerOk = false;
      } else {
        try {
          headerText = jcs(header);
        } catch (e) {
          fail({ code: 'invalid_header', ...at, reason: `The header cannot be canonicalised: ${e.message}.` });
          headerOk = false;
        }
      }
    }
    let dataText = null;
    let payloadCanonical = true;
    if (headerOk && data !== null && data !== undefined) {
      try {
        dataText = jcs(data);
      } catch (e) {
        payloadCanonical = false;
        fail({ code: 'non_canonical', ...at, reason: `The payload cannot be canonicalised, so its digest cannot be checked: ${e.message}.` });
      }
    }
    const hasData = data !== null && data !== undefined;
    let recomputed = hash;
    if (headerOk) {
      // --- chain between the events of a stream the bundle holds; genesis at seq 0
      // The export event is checked on its own: audit.access events recorded between the span's
      // end and the export are not in the bundle, so its seq may rightly skip ahead.
      const key = isExport ? `export\u0000${stream}` : stream;
      const st = streams.get(key);
      if (st?.ended === true) {
        fail({ code: 'event_after_end', ...at, reason: `Stream ${stream} has an event after its session.end.` });
      } else if (st !== undefined) {
        if (seq > st.nextSeq) fail({ code: 'seq_gap', ...at, reason: `Seq ${st.nextSeq}${seq - st.nextSeq > 1 ? `–${seq - 1}` : ''} of stream ${stream} is missing: events were deleted.` });
        else if (seq < st.nextSeq)
          fail({ code: 'seq_out_of_order', ...at, reason: `Seq ${seq} of stream ${stream} appears again or out of order after seq ${st.nextSeq - 1}: events were reordered or inserted.` });
        if (header.prev !== st.prev) {
          fail({ code: 'prev_mismatch', ...at, reason: `The event does not link to the previous event of stream ${stream}: an earlier event was changed, removed or reordered.` });
        }
      }
      const prevHex = st !== undefined && st.ended !== true ? st.prev : header.prev;
      const hasSalt = salt !== null && salt !== undefined;
      if (hasData !== hasSalt) fail({ code: 'payload_mismatch', ...at, reason: 'The payload and its salt must be present or absent together.' });
      else if (hasData && payloadCanonical) {
        if (typeof salt !== 'string' || !/^[0-9a-f]{64}$/.test(salt) || payloadDigestHex(salt, dataText) !== header.payload_digest) {
          fail({ code: 'payload_mismatch', ...at, reason: 'The payload does not match its digest: the data was edited after it was recorded.' });
        } else if (header.kind === 'session.end' && (!isObject(data) || data.event_count !== seq || data.last_hash !== prevHex)) {
          fail({
            code: 'session_end_mismatch',
            ...at,
            reason: `session.end says ${String(data?.event_count)} events before it ending in ${String(data?.last_hash).slice(0, 12)}…, but the stream has ${seq} ending in ${prevHex.slice(0, 12)}….`,
          });
        }
      }
      recomputed = eventHashHex(header.prev, headerText);
      if (recomputed !== hash) fail({ code: 'hash_mismatch', ...at, reason: 'The stored event hash does not match the event: the header or the hash was edited.' });
      streams.set(key, { nextSeq: seq + 1, prev: recomputed, ended: header.kind === 'session.end' });
      if (st === undefined && seq === 0 && header.prev !== genesisHex(origin, stream)) {
        fail({ code: 'wrong_genesis', ...at, reason: `Stream ${stream} does not start from this ledger's genesis for it: the event was moved from another stream or ledger.` });
      }
    }

    // --- inclusion in the signed tree, every step of the proof
    const p = await proofs.take(leaf);
    if (p === undefined) fail({ code: 'inclusion_failed', ...at, reason: `No inclusion proof for leaf ${leaf}: the event cannot be shown to be in the signed tree.` });
    else if (p.size !== cp.size) fail({ code: 'inclusion_failed', ...at, reason: `The proof for leaf ${leaf} is for tree size ${p.size}, not the checkpoint's ${cp.size}.` });
    else {
      const got = rootFromInclusionProof(leafHash(Buffer.from(recomputed, 'hex')), leaf, cp.size, p.proof);
      if (got.root === undefined || !got.root.equals(cp.root)) {
        fail({
          code: 'inclusion_failed',
          ...at,
          reason: `Leaf ${leaf} is not in the signed tree of size ${cp.size}: ${got.reason ?? `the inclusion proof for leaf ${leaf} leads to a different root`}.`,
        });
      }
    }
    // Only a key.rotated of witness.keys by the CLI rotates a key; one anywhere else is an ordinary event (FORMAT.md 7.6).
    if (!isExport && isRotation(header)) rotations.set(leaf, hasData ? data : undefined);
    if (isExport) {
      exportEvent = { header, data, leaf };
      continue;
    }

    // --- scope, payload presence, populations, the events digest
    eventsDigest.update(Buffer.from(recomputed, 'hex'));
    // A header that failed the schema is judged as far as its fields have the types scope reads.
    const within = (headerOk || scopable(header)) && scope.inScope(header);
    if (within) {
      inScope++;
      for (const pop of pops) {
        try {
          if (inPopulation(pop.def, header)) pop.lines.push(populationLine(leaf, header, recomputed));
        } catch {
          // A field of a header that failed the schema is not what a population reads: not a member.
        }
      }
    }
    const due = m.mode === 'full' && within;
    if (hasData && !due) {
      fail({
        code: 'payload_unexpected',
        ...at,
        reason: within
          ? "The event carries its payload, but the bundle's mode is withheld: no in-scope payload may travel."
          : "The event is outside the bundle's scope but carries its payload: a bundle must not carry data outside its scope.",
      });
    }
    if (!hasData) {
      const reason = !within ? 'out_of_scope' : m.mode === 'withheld' ? 'withheld' : 'missing';
      // Listed by a purge record the bundle proved (FORMAT.md 7.13), and not a governance record (never purged): purged, not stripped.
      const by = reason === 'missing' && !GOVERNANCE_KINDS.includes(header.kind) ? purges.coverOf(leaf) : undefined;
      r.payloadsAbsent++;
      if (by !== undefined) {
        purgedBy.set(by, (purgedBy.get(by) ?? 0) + 1);
        if (opts.requirePayloads) fail({ code: 'payload_missing', ...at, reason: 'The payload was purged under retention, and --require-payloads asks for every one.' });
      } else addRange(without, leaf, reason);
      if (reason === 'missing' && by === undefined) {
        fail({
          code: 'payload_missing',
          ...at,
          reason: 'The event is in scope of a full export but carries no payload, and no retention.purge record of the bundle lists it: it was stripped from the bundle.',
        });
      }
    } else if (headerOk) {
      for (const a of header.artifacts ?? []) {
        const w = wanted.get(a.sha256);
        if (w === undefined) wanted.set(a.sha256, { exts: new Set([artifactExtension(a.mime)]), leaf });
        else w.exts.add(artifactExtension(a.mime));
      }
    }
  }
  if (!stopped()) await proofs.drain();
  if (expectLeaf < span.to && !stopped()) {
    fail({ code: 'span_gap', leaf: expectLeaf, reason: `${range(expectLeaf, span.to)} of the span ${span.from}–${span.to - 1} are missing from events.jsonl: its tail was cut off.` });
  }
  if (lineCount !== m.events) fail({ code: 'bundle_invalid', reason: `manifest.json lists ${m.events} lines of events but events.jsonl holds ${lineCount}.` });

  if (keysOk) for (const reason of keyHistoryMismatches(keysJson.keys, rotations, span)) fail({ code: 'key_history_mismatch', reason });

  // --- the export's own signed event binds scope, mode, span and the span's events
  const no = (reason) => fail({ code: 'export_record_mismatch', leaf: m.export_event.leaf, reason });
  const x = exportEvent;
  const digestHex = eventsDigest.digest('hex');
  if (x === undefined) no(`events.jsonl holds no export event at leaf ${m.export_event.leaf}: nothing signed says what this bundle must hold.`);
  else {
    if (x.header.id !== m.export_event.id) no(`The event at leaf ${x.leaf} is ${String(x.header.id)}, not the export event ${m.export_event.id} manifest.json names.`);
    const d = x.data;
    const problem = exportRecordProblem(d);
    if (x.header.kind !== 'audit.access' || x.header.stream !== 'witness.audit-access' || x.header.action !== 'export')
      no(`The event at leaf ${x.leaf} is not an export's audit.access event of witness.audit-access.`);
    else if (d === null || d === undefined) no('The export event carries no payload, so what it binds cannot be checked.');
    else if (problem !== undefined) no(`The export event's payload is not an export record: ${problem}.`);
    else {
      if (jcs(d.scope) !== jcs(m.scope)) no("manifest.json's scope is not the scope the signed export event recorded.");
      if (d.mode !== m.mode) no(`manifest.json says mode ${m.mode}, but the signed export event recorded mode ${d.mode}.`);
      if (d.span.from !== span.from || d.span.to !== span.to) no(`manifest.json's span ${span.from}–${span.to - 1} is not the span ${d.span.from}–${d.span.to - 1} the signed export event recorded.`);
      if (d.count !== spanCount) no(`The signed export event counts ${d.count} events in the span, not ${spanCount}.`);
      // manifest.in_scope is bound by the export record: disagreeing with it is its mismatch, reported once.
      if (d.in_scope !== inScope) no(`The signed export event counts ${d.in_scope} events in scope, but ${inScope} of the span are.`);
      else if (m.in_scope !== d.in_scope) no(`manifest.json says ${m.in_scope} events are in scope, but the signed export event recorded ${d.in_scope}.`);
      if (d.events_digest !== digestHex) no('The events of the bundle are not the events the signed export event recorded (events digest differs): events were dropped, swapped or added.');
      // The files known before the record was appended are bound by their SHA-256 (FORMAT.md 7.8).
      for (const name of Object.keys(d.files)) if (!BOUND_FILES.includes(name)) no(`The signed export event binds ${JSON.stringify(name)}, which is no file it binds.`);
      for (const name of BOUND_FILES) {
        const want = Object.hasOwn(d.files, name) ? d.files[name] : undefined;
        const got = digests.get(name);
        if (want === undefined) {
          if (present.includes(name)) no(`${name} is in the bundle, but the signed export event binds no ${name}: it was added after the export.`);
        } else if (got === undefined) {
          if (!present.includes(name)) no(`The signed export event binds ${name}, which is not in the bundle.`);
        } else if (got !== want) no(`${name} is not the file the signed export event binds (its SHA-256 differs): it was replaced after the export.`);
      }
      if (d.checkpoints_from === null) {
        if (logSizes.length > 1) no('The signed export event says the ledger had no checkpoint before it, so checkpoints.jsonl must hold only checkpoint.txt, but it holds more.');
      } else if (logSizes.length > 0 && logSizes[0] !== d.checkpoints_from) {
        no(`checkpoints.jsonl starts at size ${logSizes[0]}, but the signed export event says it starts at size ${d.checkpoints_from}: checkpoints were cut from it.`);
      }
    }
  }

  // --- populations, recomputed from the span and compared byte for byte
  const index = await readJson('populations/index.json', LIMITS.smallFileBytes);
  if (index !== undefined) {
    const problem = populationIndexProblem(index);
    if (problem !== undefined) fail({ code: 'bundle_invalid', reason: `populations/index.json is invalid: ${problem}.` });
    else {
      if (index.span.from !== span.from || index.span.to !== span.to) {
        fail({ code: 'population_mismatch', reason: "populations/index.json's span is not the manifest's." });
      }
      if (index.populations.map((e) => e.name).join('\n') !== POPULATIONS.map((p) => p.name).join('\n')) {
        fail({ code: 'population_mismatch', reason: 'populations/index.json does not list the populations of this format, each once, in the order of docs/FORMAT.md 7.9.' });
      }
      for (const e of index.populations) {
        const def = POPULATIONS.find((p) => p.name === e.name);
        if (def === undefined) fail({ code: 'population_mismatch', reason: `populations/index.json lists ${JSON.stringify(e.name)}, which is no population of this format.` });
        else if (e.title !== def.title || e.query !== def.query || !sameJson(e.predicate, def.predicate)) {
          fail({ code: 'population_mismatch', reason: `populations/index.json gives ${e.name} another title, query or predicate than docs/FORMAT.md 7.9 defines: the index was edited.` });
        }
      }
      for (const name of present) {
        const pm = POPULATION_NAME.exec(name);
        if (pm !== null && !POPULATIONS.some((p) => p.name === pm[1])) fail({ code: 'bundle_invalid', reason: `${name} is no population of this format.` });
      }
      for (const pop of pops) {
        const name = pop.def.name;
        const text = pop.lines.join('');
        const digest = sha256(text).toString('hex');
        const entry = index.populations.find((e) => e.name === name);
        if (entry === undefined) {
          fail({ code: 'population_incomplete', reason: `populations/index.json lists no population ${name}.` });
          continue;
        }
        if (entry.count !== pop.lines.length || entry.digest !== digest) {
          const fewer = entry.count < pop.lines.length;
          fail({
            code: fewer ? 'population_incomplete' : 'population_mismatch',
            reason: `populations/index.json gives ${name} ${entry.count} events, but the span holds ${pop.lines.length} of it${fewer ? '' : ' (or other ones)'}.`,
          });
        }
        const file = `populations/${name}.jsonl`;
        // Only a file that differs is read (again) line by line, to name the event it leaves out.
        if (digests.get(file) === digest) continue;
        const f = digests.has(file) ? source.open(file, LIMITS.fileBytes) : { missing: true };
        if (f.chunks === undefined) {
          fail({ code: 'population_incomplete', reason: `${file} is missing or unreadable, but the span holds ${pop.lines.length} of its events.` });
          continue;
        }
        const have = new Set();
        for await (const l of lines(file, f.chunks(), LIMITS.populationLineBytes)) if (l.text !== '' && l.text !== undefined) have.add(`${l.text}\n`);
        const lost = pop.lines.find((l) => !have.has(l));
        if (lost !== undefined) {
          const leaf = JSON.parse(lost).leaf;
          fail({ code: 'population_incomplete', leaf, reason: `${file} leaves out the event at leaf ${leaf}, which the span holds and the population includes.` });
        } else {
          fail({ code: 'population_mismatch', reason: `${file} is not the population recomputed from the span: it holds other events, or other bytes.` });
        }
      }
    }
  }

  // --- artifacts: exactly those referenced by events carrying their payload, re-hashed
  const artifactFiles = new Map();
  for (const name of present) {
    const a = ARTIFACT_NAME.exec(name);
    if (a !== null) artifactFiles.set(a[1], a[2]);
  }
  for (const [sha, w] of wanted) {
    const ext = artifactFiles.get(sha);
    if (ext === undefined) {
      fail({ code: 'artifact_missing', artifact: sha, leaf: w.leaf, reason: `Artifact ${sha} referenced at leaf ${w.leaf} is not in the bundle.` });
      continue;
    }
    if (!w.exts.has(ext)) {
      fail({ code: 'bundle_invalid', artifact: sha, leaf: w.leaf, reason: `Artifact ${sha} is named .${ext}, but the events referencing it give ${[...w.exts].map((e) => `.${e}`).join(' or ')}.` });
    }
    const got = digests.get(`artifacts/${sha}.${ext}`);
    if (got !== undefined && got !== sha) {
      fail({ code: 'artifact_mismatch', artifact: sha, leaf: w.leaf, reason: `Artifact ${sha} referenced at leaf ${w.leaf} no longer has that SHA-256: its bytes were changed.` });
    }
  }
  for (const [sha, ext] of artifactFiles) {
    if (!wanted.has(sha)) {
      fail({
        code: 'payload_unexpected',
        artifact: sha,
        reason: `artifacts/${sha}.${ext} is referenced by no event of the bundle that carries its payload: a bundle must not carry data outside its scope or mode.`,
      });
    }
  }

  // --- system.json: free-form (docs/FORMAT.md), but a strict JSON object
  const system = await readJson('system.json', LIMITS.manifestBytes);
  if (system !== undefined && !isObject(system)) fail({ code: 'bundle_invalid', reason: 'system.json is not a JSON object.' });

  if (opts.requirePayloads) {
    for (const w of without) {
      fail({ code: 'payload_missing', leaf: w.from, reason: `${range(w.from, w.to)} carry no payload (${REASON_WORDS[w.reason]}), and --require-payloads asks for every one.` });
    }
  }
  const purged = [...purgedBy].sort((a, b) => a[0] - b[0]).map(([leaf, count]) => ({ leaf, id: purges.records.get(leaf).id, policy: purges.records.get(leaf).policy, count }));
  for (const p of purged) {
    warnings.push(
      `${p.count} payload${p.count === 1 ? '' : 's'} purged under policy ${p.policy} by the record at leaf ${p.leaf} (purges.jsonl): their headers, digests and proofs were verified, not their content.`,
    );
  }
  if (purges.present) r.purged = { payloads: purged.reduce((n, p) => n + p.count, 0), stillPresent: 0, records: purged };
  if (m.mode === 'withheld') warnings.push('Payloads and artifacts were withheld from this bundle (mode withheld): headers, digests and the signed tree were verified, not the content.');
  // report.html shows the export event and the final checkpoint, so the record cannot bind it (FORMAT.md 7.2).
  if (present.includes('report.html')) warnings.unshift('report.html is a reading aid that is not signed and was not checked; the verified events are events.jsonl.');

  r.events = lineCount;
  // Agent sessions only (FORMAT.md 7.12): the witness.* system streams (approvals, audit access, …) are not sessions.
  r.streams = [...streams.keys()].filter((k) => !k.startsWith('export\u0000') && !k.startsWith('witness.')).length;
  r.artifacts = wanted.size;
  r.openSessions = [...streams.entries()].filter(([k, s]) => !k.startsWith('export\u0000') && !s.ended).length;
  r.bundle = {
    version: 2,
    ledger: m.ledger,
    scope: m.scope,
    mode: m.mode,
    span,
    spanEvents: spanCount,
    inScope,
    exportEvent: m.export_event,
    checkpoint: m.checkpoint,
    populations: pops.map((p) => ({ name: p.def.name, title: p.def.title, count: p.lines.length })),
    withoutPayload: without,
    withoutPayloadCount: r.payloadsAbsent,
    artifacts: wanted.size,
  };
}

// --- purged payloads (FORMAT.md 7.13) and the governance records a bundle believes (7.6)

/** Never purged: every kind the governance rule counts (FORMAT.md 3.6, 5.4). */
const GOVERNANCE_KINDS = ['human.halt', 'human.resume', 'hold.placed', 'hold.released', 'retention.purge', 'config.change', 'key.rotated'];
const recorderOf = (h) => (isObject(h.recorder) ? h.recorder.kind : undefined);
/** A key.rotated event counts as a rotation only in witness.keys, stamped by the CLI or, written before the CLI stamped one, with no recorder at all. */
const isRotation = (h) => h.kind === 'key.rotated' && h.stream === 'witness.keys' && (h.recorder === undefined || recorderOf(h) === 'cli');

/**
 * The purged ranges as disjoint runs, each owned by one record: across records one leaf may be listed
 * twice (a second purge), and the earliest record (lowest leaf) answers for it, whatever range starts
 * first. Between two cuts the same ranges list every leaf; the owner is the lowest record among them.
 */
export function ownedRanges(ranges) {
  const spans = [...ranges].sort((a, b) => a.from - b.from);
  const cuts = [...new Set(spans.flatMap((x) => [x.from, x.to + 1]))].sort((a, b) => a - b);
  const heap = [];
  const up = (i) => {
    while (i > 0 && heap[(i - 1) >> 1].by > heap[i].by) {
      const p = (i - 1) >> 1;
      [heap[p], heap[i]] = [heap[i], heap[p]];
      i = p;
    }
  };
  const popTop = () => {
    const last = heap.pop();
    if (heap.length === 0) return;
    heap[0] = last;
    for (let i = 0; ;) {
      let m = i;
      for (const c of [2 * i + 1, 2 * i + 2]) if (c < heap.length && heap[c].by < heap[m].by) m = c;
      if (m === i) return;
      [heap[m], heap[i]] = [heap[i], heap[m]];
      i = m;
    }
  };
  const merged = [];
  for (let c = 0, k = 0; c + 1 < cuts.length; c++) {
    const from = cuts[c];
    while (k < spans.length && spans[k].from === from) up(heap.push(spans[k++]) - 1);
    while (heap.length > 0 && heap[0].to < from) popTop();
    if (heap.length === 0) continue;
    const last = merged[merged.length - 1];
    if (last !== undefined && last.by === heap[0].by && last.to === from - 1) last.to = cuts[c + 1] - 1;
    else merged.push({ from, to: cuts[c + 1] - 1, by: heap[0].by });
  }
  return merged;
}

/** Why a purge line's header and payload cannot be a record a bundle relies on (FORMAT.md 7.13), or undefined; `d` is its verified payload. */
function purgeRecordProblem(h, d, leaf) {
  if (h.kind !== 'retention.purge') return `it is a ${String(h.kind)} event, not retention.purge`;
  if (h.stream !== 'witness.retention') return `it is in stream ${JSON.stringify(h.stream)}, not witness.retention`;
  if (recorderOf(h) !== 'cli' && recorderOf(h) !== 'server') return 'it was not recorded by the CLI or the server';
  if (!isObject(d) || typeof d.policy !== 'string' || !Number.isSafeInteger(d.count) || !Array.isArray(d.leaves)) return 'it lacks policy, count or leaves';
  let next = 0;
  let total = 0;
  for (const r of d.leaves) {
    if (!Array.isArray(r) || r.length !== 2 || !Number.isSafeInteger(r[0]) || !Number.isSafeInteger(r[1])) return 'it lists a leaf range that is not two integers';
    if (r[0] < next || r[1] < r[0] || r[1] >= leaf) return `it lists leaves ${r[0]}–${r[1]}, which are not ascending, disjoint and below its own leaf`;
    total += r[1] - r[0] + 1;
    next = r[1] + 1;
  }
  if (total !== d.count) return `it says it purged ${d.count} events but lists ${total}`;
  return undefined;
}

/**
 * purges.jsonl beside purge-proofs.jsonl, before events.jsonl: each line a stored event with its
 * payload, checked as any event is (header, payload digest, hash, genesis at seq 0), proved into the
 * checkpoint's tree, and a well-formed retention.purge record of witness.retention by the CLI or the
 * server. A line that fails covers nothing, and is reported. coverOf(leaf): the record listing it.
 */
async function readPurges(source, cp, origin, fail) {
  const records = new Map();
  const ranges = [];
  // Binary search over the ranges sorted by start (the earliest record listing a leaf counts): an
  // absent payload costs a lookup, not a walk of every range of every record.
  const coverOf = (leaf) => {
    let lo = 0;
    let hi = ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ranges[mid].from <= leaf) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && ranges[lo - 1].to >= leaf ? ranges[lo - 1].by : undefined;
  };
  const out = { present: false, records, coverOf };
  const f = source.open('purges.jsonl', LIMITS.fileBytes);
  if (f.missing) return out;
  out.present = true;
  if (f.tooLarge) throw new Refusal(f.problem);
  if (f.problem !== undefined) {
    fail({ code: 'bundle_invalid', reason: `${f.problem}.` });
    return out;
  }
  const pf = source.open('purge-proofs.jsonl', LIMITS.fileBytes);
  if (pf.tooLarge) throw new Refusal(pf.problem);
  if (pf.chunks === undefined) fail({ code: 'bundle_invalid', reason: 'The bundle has purges.jsonl but no readable purge-proofs.jsonl, so no purge record can be shown to be in the signed tree.' });
  const proofs = new ProofReader(pf.chunks === undefined ? undefined : lines('purge-proofs.jsonl', pf.chunks(), LIMITS.proofLineBytes), fail, 'purge-proofs.jsonl');
  let last = -1;
  for await (const line of lines('purges.jsonl', f.chunks(), LIMITS.eventLineBytes)) {
    if (line.text !== undefined && BLANK.test(line.text)) continue;
    const bad = (reason, leaf) => fail({ code: 'bundle_invalid', leaf, reason: `purges.jsonl line ${line.n} ${reason}; it lists no purged payload.` });
    let ev;
    try {
      if (line.text === undefined) throw new Error('it is not UTF-8');
      ev = strictParse(line.text);
      if (!isObject(ev)) throw new Error('it is not a JSON object');
    } catch (e) {
      bad(`is not strict JSON (${e.message})`);
      continue;
    }
    const { data, salt, hash, leaf, ...header } = ev;
    if (!isSize(leaf) || typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
      bad('lacks a valid leaf index or hash');
      continue;
    }
    if (leaf <= last) {
      bad(`holds leaf ${leaf} after leaf ${last}, out of order`, leaf);
      continue;
    }
    last = leaf;
    const at = { stream: typeof header.stream === 'string' ? header.stream : '', seq: Number.isSafeInteger(header.seq) ? header.seq : -1, leaf };
    let headerText;
    let dataText = null;
    if (header.v !== 1) {
      fail({ code: 'unsupported_version', ...at, reason: `The purge record's header has version ${JSON.stringify(header.v)}: the header was altered.` });
      continue;
    }
    const problem = headerProblem(header);
    if (problem !== undefined) {
      fail({ code: 'invalid_header', ...at, reason: `The purge record's header field ${problem}.` });
      continue;
    }
    try {
      headerText = jcs(header);
      if (data !== null && data !== undefined) dataText = jcs(data);
    } catch (e) {
      fail({ code: 'non_canonical', ...at, reason: `The purge record in purges.jsonl cannot be canonicalised: ${e.message}.` });
      continue;
    }
    let ok = true;
    if (dataText === null || typeof salt !== 'string' || !/^[0-9a-f]{64}$/.test(salt) || payloadDigestHex(salt, dataText) !== header.payload_digest) {
      fail({ code: 'payload_mismatch', ...at, reason: 'The purge record in purges.jsonl does not carry a payload that matches its digest: what it lists cannot be believed.' });
      ok = false;
    }
    const recomputed = eventHashHex(header.prev, headerText);
    if (recomputed !== hash) {
      fail({ code: 'hash_mismatch', ...at, reason: 'The stored event hash of the purge record does not match the event: the header or the hash was edited.' });
      ok = false;
    }
    if (header.seq === 0 && header.prev !== genesisHex(origin, header.stream)) {
      fail({ code: 'wrong_genesis', ...at, reason: `Stream ${header.stream} does not start from this ledger's genesis for it: the purge record was moved from another stream or ledger.` });
      ok = false;
    }
    const p = await proofs.take(leaf);
    if (p === undefined || p.size !== cp.size) {
      fail({ code: 'inclusion_failed', ...at, reason: `The purge record at leaf ${leaf} has no inclusion proof in purge-proofs.jsonl for the checkpoint's size ${cp.size}.` });
      continue;
    }
    const got = rootFromInclusionProof(leafHash(Buffer.from(recomputed, 'hex')), leaf, cp.size, p.proof);
    if (got.root === undefined || !got.root.equals(cp.root)) {
      fail({ code: 'inclusion_failed', ...at, reason: `The purge record at leaf ${leaf} is not in the signed tree of size ${cp.size}: ${got.reason ?? 'its proof leads to a different root'}.` });
      continue;
    }
    if (!ok) continue;
    const wrong = purgeRecordProblem(header, data, leaf);
    if (wrong !== undefined) {
      bad(`is not a purge record a bundle can rely on: ${wrong}`, leaf);
      continue;
    }
    records.set(leaf, { leaf, id: header.id, policy: data.policy, count: data.count });
    for (const [from, to] of data.leaves) ranges.push({ from, to, by: leaf });
  }
  await proofs.drain();
  const merged = ownedRanges(ranges);
  ranges.length = 0;
  ranges.push(...merged);
  return out;
}

/** The ledger id a checkpoint origin `<name>/witness/<ledger uuid>` names: what follows its last "/witness/"; undefined when it has none. */
function ledgerIdOf(origin) {
  const cut = origin.lastIndexOf('/witness/');
  return cut > 0 ? origin.slice(cut + '/witness/'.length) : undefined;
}

const REASON_WORDS = { out_of_scope: 'out of scope (header only)', withheld: 'withheld by export mode', missing: 'stripped from a full export' };

/** Runs of consecutive leaves [from, to) sharing a reason. */
function addRange(list, leaf, reason) {
  const last = list[list.length - 1];
  if (last !== undefined && last.to === leaf && last.reason === reason) last.to++;
  else list.push({ from: leaf, to: leaf + 1, reason });
}

function trustStatement(source, keys, checkpoints) {
  if (checkpoints === 0) return 'No checkpoint was checked, so no signing key was relied on; only the hash chains were.';
  const which = `${keys} signing key${keys === 1 ? '' : 's'}`;
  return source === 'pinned'
    ? `Checkpoints were verified with ${which} pinned by the auditor (--trusted-key).`
    : `Checkpoints were verified with ${which} shipped inside the bundle; pin the key you trust with --trusted-key for an independent check.`;
}

/** The proofs of proofs.jsonl, taken in step with the events (ascending leaf order); a proof no event asks for is skipped. */
class ProofReader {
  constructor(it, fail, name = 'proofs.jsonl') {
    this.it = it;
    this.fail = fail;
    this.name = name;
    this.pending = undefined;
    this.started = false;
  }

  async take(leaf) {
    if (!this.started) {
      this.started = true;
      this.pending = await this.read();
    }
    while (this.pending !== undefined && this.pending.leaf < leaf) this.pending = await this.read();
    if (this.pending === undefined || this.pending.leaf !== leaf) return undefined;
    const p = this.pending;
    this.pending = await this.read();
    return p;
  }

  async drain() {
    if (!this.started) await this.take(Number.MAX_SAFE_INTEGER);
    while (this.pending !== undefined) this.pending = await this.read();
  }

  async read() {
    if (this.it === undefined) return undefined;
    for (;;) {
      const { value: line, done } = await this.it.next();
      if (done) return undefined;
      try {
        if (line.text === undefined) throw new Error('it is not UTF-8');
        const p = strictParse(line.text);
        if (!isObject(p) || !isSize(p.leaf) || !isSize(p.size) || !Array.isArray(p.proof)) throw new Error('it needs leaf, size and proof');
        if (p.proof.length > LIMITS.proofSteps) throw new Error(`it has ${p.proof.length} steps, more than any tree needs`);
        if (!p.proof.every((x) => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x))) throw new Error('a proof step is not 64 hex characters');
        return { leaf: p.leaf, size: p.size, proof: p.proof.map((x) => Buffer.from(x, 'hex')) };
      } catch (e) {
        this.fail({ code: 'bundle_invalid', reason: `${this.name} line ${line.n} is malformed: ${e.message}.` });
      }
    }
  }
}

// --- shapes (docs/FORMAT.md; src/export/bundle-format.ts holds the same as zod schemas)

const strictKeys = (o, allowed) => isObject(o) && Object.keys(o).every((k) => allowed.includes(k));
const isIso = (v) => typeof v === 'string' && v.length >= 1 && v.length <= 64;
const isSpan = (s) => strictKeys(s, ['from', 'to']) && isSize(s.from) && isSize(s.to) && s.from <= s.to;
const isTreeHead = (c) => strictKeys(c, ['size', 'root']) && isSize(c.size) && HEX64(c.root);
const isNames = (a) => a === null || (Array.isArray(a) && a.every((s) => typeof s === 'string' && s.length > 0));
const REGIMES = ['eu-ai-act', 'soc2', 'hipaa', 'sec'];
const isScope = (s) =>
  strictKeys(s, ['since', 'until', 'agents', 'sessions', 'regimes']) &&
  ['since', 'until', 'agents', 'sessions', 'regimes'].every((k) => Object.hasOwn(s, k)) &&
  (s.since === null || isIso(s.since)) &&
  (s.until === null || isIso(s.until)) &&
  isNames(s.agents) &&
  isNames(s.sessions) &&
  Array.isArray(s.regimes) &&
  s.regimes.every((x) => REGIMES.includes(x));

function checkManifest(m) {
  const keys = ['format', 'version', 'created_at', 'ledger', 'scope', 'mode', 'span', 'export_event', 'checkpoint', 'events', 'in_scope', 'files'];
  if (!strictKeys(m, keys)) return 'it has a field this format does not define';
  const missing = keys.find((k) => !Object.hasOwn(m, k));
  if (missing !== undefined) return `${missing} is missing`;
  if (m.version !== 2) return 'version is not 2';
  if (!isIso(m.created_at)) return 'created_at is invalid';
  if (!strictKeys(m.ledger, ['id', 'origin']) || typeof m.ledger.id !== 'string' || typeof m.ledger.origin !== 'string' || m.ledger.origin === '') return 'ledger is invalid';
  if (!isScope(m.scope)) return 'scope is invalid';
  if (m.mode !== 'full' && m.mode !== 'withheld') return 'mode is neither full nor withheld';
  if (!isSpan(m.span)) return 'span is invalid';
  if (!strictKeys(m.export_event, ['leaf', 'id']) || !isSize(m.export_event.leaf) || typeof m.export_event.id !== 'string') return 'export_event is invalid';
  if (m.export_event.leaf < m.span.to) return 'the export event lies inside the span';
  if (!isTreeHead(m.checkpoint)) return 'checkpoint is invalid';
  if (m.checkpoint.size <= m.export_event.leaf) return 'its checkpoint does not cover the export event';
  if (!isSize(m.events) || !isSize(m.in_scope)) return 'events or in_scope is not a count';
  if (!isObject(m.files) || !Object.values(m.files).every(HEX64)) return 'files is not a map of SHA-256 digests';
  return undefined;
}

function checkpointLineProblem(c) {
  if (!strictKeys(c, ['size', 'root', 'note', 'consistency'])) return 'it has a field a checkpoint line does not';
  if (!isSize(c.size) || !HEX64(c.root) || typeof c.note !== 'string' || c.note === '') return 'it needs size, root and note';
  if (c.consistency !== undefined && !(Array.isArray(c.consistency) && c.consistency.length <= LIMITS.proofSteps && c.consistency.every(HEX64))) return 'its consistency proof is not a list of hashes';
  return undefined;
}

/**
 * FORMAT.md "Key history and rotation": a checkpoint of size S must be signed by every key whose
 * window (from_size <= S <= until_size, null: no end) holds S. rotation_unsigned when two windows
 * hold it (the rotation checkpoint) and one of the keys did not sign; retired_key when a key signed
 * after its window and the key then in use did not; checkpoint_signature otherwise.
 */
function windowProblem(windows, size, verified) {
  const signed = new Set(verified.map((v) => v.fingerprint));
  const required = windows.filter((w) => w.from <= size && (w.until === null || size <= w.until));
  const missing = required.filter((w) => !signed.has(w.fingerprint));
  if (missing.length === 0) return undefined;
  const names = missing.map((w) => w.fingerprint).join(' and ');
  if (required.length > 1) {
    return {
      code: 'rotation_unsigned',
      reason: `The checkpoint of size ${size} covers the key rotation at leaf ${required[required.length - 1].leaf} and must be signed by both the old and the new key, but ${names} did not sign it.`,
    };
  }
  const retired = windows.find((w) => signed.has(w.fingerprint) && w.until !== null && w.until < size);
  if (retired !== undefined) {
    return {
      code: 'retired_key',
      reason: `The checkpoint of size ${size} is signed by ${retired.fingerprint}, retired by the checkpoint of size ${retired.until}, and not by the key then in use (${names}): a retired key signed it after its window.`,
    };
  }
  return { code: 'checkpoint_signature', reason: `The checkpoint of size ${size} is not signed by ${names}, the key whose window holds it (a key signed it before the rotation that introduced it).` };
}

/**
 * keys.json against the signed events (FORMAT.md 7.6): several keys need a window each, every key
 * after the first names the key.rotated leaf that brought it in (its window starting right after);
 * every key.rotated event of the span is in keys.json at its leaf, with the same old and new key when
 * its payload is in the bundle; every rotation keys.json places inside the span is an event of it.
 */
function keyHistoryMismatches(keys, rotations, span) {
  const problems = [];
  if (keys.length > 1) {
    keys.forEach((k, i) => {
      const leaf = k.rotated_at_leaf ?? null;
      if (k.from_size === undefined || (i === 0 ? leaf !== null : leaf === null)) {
        problems.push(`keys.json holds ${keys.length} keys but key ${i + 1} states no window (from_size, rotated_at_leaf): a key history with a rotation must say which tree sizes each key signs.`);
      } else if (i > 0 && k.from_size !== leaf + 1) {
        problems.push(`keys.json key ${i + 1} was brought in at leaf ${leaf}, so its window starts at size ${leaf + 1}, not ${k.from_size}.`);
      }
    });
  }
  for (const [leaf, data] of rotations) {
    const i = keys.findIndex((k, j) => j > 0 && k.rotated_at_leaf === leaf);
    if (i < 1) {
      problems.push(`The key.rotated event at leaf ${leaf} is not in keys.json: the key history leaves out a rotation the ledger signed.`);
    } else if (isObject(data) && (data.old_key !== keys[i - 1].vkey || data.new_key !== keys[i].vkey)) {
      problems.push(`The key.rotated event at leaf ${leaf} retires ${String(data.old_key)} for ${String(data.new_key)}, but keys.json gives other keys for that rotation.`);
    }
  }
  for (const k of keys) {
    const leaf = k.rotated_at_leaf;
    if (typeof leaf === 'number' && leaf >= span.from && leaf < span.to && !rotations.has(leaf)) {
      problems.push(`keys.json names a key rotation at leaf ${leaf}, inside the bundle's span, where the bundle holds no key.rotated event.`);
    }
  }
  return problems;
}

function keyHistoryProblem(k) {
  if (!strictKeys(k, ['keys']) || !Array.isArray(k.keys)) return 'it needs a keys list';
  for (const e of k.keys) {
    if (!strictKeys(e, ['vkey', 'fingerprint', 'role', 'valid_from', 'valid_until', 'source', 'from_size', 'until_size', 'rotated_at_leaf']))
      return 'a key entry has a field this format does not define';
    if (e.from_size !== undefined && !isSize(e.from_size)) return 'a key entry has a from_size that is not a tree size';
    if (!(e.until_size === undefined || e.until_size === null || isSize(e.until_size))) return 'a key entry has an until_size that is not a tree size or null';
    if (!(e.rotated_at_leaf === undefined || e.rotated_at_leaf === null || isSize(e.rotated_at_leaf))) return 'a key entry has a rotated_at_leaf that is not a leaf or null';
    if (
      typeof e.vkey !== 'string' ||
      typeof e.fingerprint !== 'string' ||
      e.role !== 'ledger-signing' ||
      !isIso(e.valid_from) ||
      !(e.valid_until === null || isIso(e.valid_until)) ||
      typeof e.source !== 'string'
    ) {
      return 'a key entry is incomplete';
    }
  }
  return undefined;
}

function exportRecordProblem(d) {
  if (!isObject(d)) return 'it is not an object';
  if (typeof d.actor !== 'string' || d.actor === '') return 'actor is missing';
  if (d.operation !== 'export' || d.format !== 'witness-evidence/2') return 'it does not describe a version 2 export';
  if (!isScope(d.scope)) return 'scope is invalid';
  if (d.mode !== 'full' && d.mode !== 'withheld') return 'mode is invalid';
  if (!isSpan(d.span)) return 'span is invalid';
  if (!HEX64(d.events_digest)) return 'events_digest is invalid';
  if (!isSize(d.count) || !isSize(d.in_scope)) return 'count or in_scope is not a count';
  if (!isObject(d.files) || !Object.values(d.files).every(HEX64)) return 'files is not a map of SHA-256 digests';
  if (d.checkpoints_from !== null && !isSize(d.checkpoints_from)) return 'checkpoints_from is not a size or null';
  return undefined;
}

/** The files whose SHA-256 the export record binds (FORMAT.md 7.8). */
const BOUND_FILES = ['system.json', 'README.txt', 'verify.mjs', 'populations/index.json', 'keys.json', 'purges.jsonl', 'anchors.jsonl'];

function populationIndexProblem(x) {
  if (!strictKeys(x, ['span', 'populations']) || !isSpan(x.span) || !Array.isArray(x.populations)) return 'it needs span and populations';
  for (const p of x.populations) {
    if (!strictKeys(p, ['name', 'title', 'query', 'predicate', 'count', 'digest']) || typeof p.name !== 'string' || typeof p.title !== 'string' || typeof p.query !== 'string')
      return 'a population entry is incomplete';
    if (!Object.hasOwn(p, 'predicate') || !isSize(p.count) || !HEX64(p.digest)) return `population ${p.name} has no valid predicate, count or digest`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// anchors.jsonl (FORMAT.md 7.14): cosignatures (C2SP tlog-cosignature v1, Ed25519) and RFC 3161
// time-stamps over checkpoints the bundle ships. An anchor counts only over checkpoint.txt or a line
// of checkpoints.jsonl (whose consistency to checkpoint.txt the bundle check proves), and a required
// one only over a checkpoint whose size covers the whole span.

const COSIG_NAME = /^[^\s+\u0000-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/u;

function strictB64(s) {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : undefined;
}

const cosignerKeyHash = (name, pub) => createHash('sha256').update(`${name}\n`, 'utf8').update(Uint8Array.of(0x04)).update(pub).digest().readUInt32BE(0);

/** A cosigner verifier key `<name>+<8 hex>+base64(0x04 ‖ Ed25519 key)`; throws Unreadable for anything else. */
function parseCosignerKey(text) {
  const t = text.trim();
  const i = t.indexOf('+');
  const j = i < 0 ? -1 : t.indexOf('+', i + 1);
  const bad = (why) => new Unreadable(`--require-cosigner ${text} is not a cosigner verifier key (${why}); pass the witness's key from your own record`);
  if (j < 0) throw bad('it needs <name>+<key hash>+<key>');
  const [name, hash, raw] = [t.slice(0, i), t.slice(i + 1, j), strictB64(t.slice(j + 1))];
  if (!COSIG_NAME.test(name) || !/^[0-9a-f]{8}$/.test(hash)) throw bad('bad name or key hash');
  if (raw === undefined || raw.length !== 33 || raw[0] !== 0x04) throw bad('not type 0x04 with a 32-byte Ed25519 key');
  const pub = raw.subarray(1);
  if (cosignerKeyHash(name, pub) !== Number.parseInt(hash, 16)) throw bad('its key hash does not match its name and key');
  return { label: `${name}+${hash}`, name, keyHash: Number.parseInt(hash, 16), publicKey: createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, pub]), format: 'der', type: 'spki' }) };
}

/** The cosignature's timestamp when `line` is `key`'s valid cosignature/v1 over `body`, else undefined. */
function cosignatureTime(key, body, line) {
  const l = line.endsWith('\n') ? line.slice(0, -1) : line;
  if (!l.startsWith('\u2014 ') || l.includes('\n')) return undefined;
  const rest = l.slice(2);
  const sp = rest.indexOf(' ');
  const raw = sp <= 0 ? undefined : strictB64(rest.slice(sp + 1));
  if (raw === undefined || raw.length !== 76 || rest.slice(0, sp) !== key.name || raw.readUInt32BE(0) !== key.keyHash) return undefined;
  const t = raw.readBigUInt64BE(4);
  if (t > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  try {
    return ed25519Verify(null, Buffer.from(`cosignature/v1\ntime ${t}\n${body}`, 'utf8'), key.publicKey, raw.subarray(12)) ? Number(t) : undefined;
  } catch {
    return undefined;
  }
}

const noteBody = (note) => {
  const i = note.lastIndexOf('\n\n');
  return i < 0 ? note : note.slice(0, i + 1);
};

async function runOpenssl(args) {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null && err.code === 'ENOENT') reject(new Unreadable('openssl is not installed; --tsa-cert verifies RFC 3161 time-stamps with `openssl ts -verify`'));
      else resolve({ ok: err === null, out: `${stdout}${stderr}` });
    });
  });
}

/** One DER TLV at `off`, or undefined when cut short. */
function derAt(der, off) {
  if (off + 2 > der.length) return undefined;
  let len = der[off + 1];
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > der.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i];
    start += n;
  }
  return start + len > der.length ? undefined : { tag: der[off], start, end: start + len };
}

/**
 * `openssl ts -verify` as witness verify runs it (src/anchor/tsa.ts): granted PKIStatus read from
 * the DER, time and hash algorithm from the signed TSTInfo alone (-token_out), imprint SHA-256 of the note.
 */
async function checkTimeStamp(response, noteDigest, certFile) {
  const resp = derAt(response, 0);
  const info = resp?.tag === 0x30 ? derAt(response, resp.start) : undefined;
  const status = info?.tag === 0x30 ? derAt(response, info.start) : undefined;
  if (status?.tag !== 0x02 || status.end - status.start !== 1 || response[status.start] > 1) return { ok: false, reason: 'it is not a granted RFC 3161 response' };
  const os = await import('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-mjs-tsa-'));
  try {
    const tsr = path.join(dir, 'resp.tsr');
    const token = path.join(dir, 'token.der');
    fs.writeFileSync(tsr, response);
    const out = await runOpenssl(['ts', '-reply', '-in', tsr, '-token_out', '-out', token]);
    const r = out.ok ? await runOpenssl(['ts', '-reply', '-in', token, '-token_in', '-text']) : out;
    const at = r.out.indexOf('\nTST info:\n');
    if (!r.ok || at < 0) return { ok: false, reason: 'it is not an RFC 3161 response' };
    const tst = r.out.slice(at);
    const one = (name) => {
      const all = [...tst.matchAll(new RegExp(`^${name}: (.*)$`, 'gm'))];
      return all.length === 1 ? all[0][1].trim() : undefined;
    };
    const ms = Date.parse((one('Time stamp') ?? '').replace(/ GMT$/, ' UTC'));
    if (!Number.isFinite(ms)) return { ok: false, reason: 'it carries no readable time' };
    const alg = one('Hash Algorithm');
    if (alg !== 'sha256') return { ok: false, reason: `the token's imprint is declared ${alg ?? 'with no algorithm'}, not sha256` };
    const v = await runOpenssl(['ts', '-verify', '-in', tsr, '-digest', noteDigest.toString('hex'), '-CAfile', certFile, '-partial_chain']);
    if (!v.ok || !/Verification: OK/.test(v.out)) return { ok: false, reason: 'openssl ts -verify refused it' };
    return { ok: true, time: new Date(ms).toISOString() };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads anchors.jsonl and the bundle's checkpoints through `source`; adds failures to `r` and its findings as r.anchors. */
async function checkAnchors(source, opts, r) {
  const text = async (name, cap) => {
    const f = source.open(name, cap);
    if (f.chunks === undefined) return undefined;
    try {
      return utf8.decode(await readAll(f.chunks()));
    } catch {
      return undefined;
    }
  };
  const checkpoints = new Map();
  const add = (note, size) => {
    if (typeof note === 'string' && isSize(size)) checkpoints.set(createHash('sha256').update(noteBody(note), 'utf8').digest('hex'), { size, note });
  };
  let covers = Number.MAX_SAFE_INTEGER;
  try {
    const m = strictParse((await text('manifest.json', LIMITS.manifestBytes)) ?? 'null');
    if (isSize(m?.span?.to)) covers = m.span.to;
    add(await text('checkpoint.txt', LIMITS.smallFileBytes), m?.checkpoint?.size);
  } catch {
    // judged by the bundle check
  }
  for (const l of ((await text('checkpoints.jsonl', LIMITS.fileBytes)) ?? '').split('\n')) {
    try {
      if (l !== '') {
        const c = strictParse(l);
        add(c?.note, c?.size);
      }
    } catch {
      // judged by the bundle check
    }
  }
  const a = { covers, checked: [], timestamps: [], unjudged: 0, failures: [] };
  const fail = (f) => a.failures.push(f);
  const keys = new Map(opts.cosigners.map((k) => [k.label, k]));
  const covered = new Set();
  let stamped = false;
  const lines = ((await text('anchors.jsonl', LIMITS.fileBytes)) ?? '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] === '') continue;
    let x;
    try {
      x = strictParse(lines[i]);
    } catch {
      x = undefined;
    }
    const cosig = isObject(x) && x.v === 1 && x.type === 'cosignature' && isSize(x.size) && HEX64(x.checkpoint_sha256) && typeof x.cosigner === 'string' && typeof x.line === 'string';
    const stamp = isObject(x) && x.v === 1 && x.type === 'timestamp' && isSize(x.size) && HEX64(x.checkpoint_sha256) && typeof x.tsa === 'string' && typeof x.response === 'string';
    if (!cosig && !stamp) {
      fail({ code: 'anchors_unreadable', reason: `anchors.jsonl line ${i + 1} is not an anchor record.` });
      continue;
    }
    const cp = checkpoints.get(x.checkpoint_sha256);
    if (cosig) {
      const k = keys.get(x.cosigner);
      if (k === undefined) {
        a.unjudged++;
        continue;
      }
      if (cp === undefined) continue; // over no checkpoint of this bundle: counts for nothing
      const t = cp.size === x.size ? cosignatureTime(k, noteBody(cp.note), x.line) : undefined;
      if (t === undefined) {
        fail({ code: 'cosignature_invalid', reason: `The cosignature by ${x.cosigner} in anchors.jsonl for checkpoint ${x.size} does not verify over that checkpoint.` });
        continue;
      }
      a.checked.push({ cosigner: x.cosigner, size: cp.size, timestamp: t });
      if (cp.size >= covers) covered.add(x.cosigner);
    } else if (opts.tsaCert !== undefined && cp !== undefined) {
      const res = await checkTimeStamp(Buffer.from(x.response, 'base64'), createHash('sha256').update(cp.note, 'utf8').digest(), opts.tsaCert);
      if (!res.ok) {
        fail({ code: 'timestamp_invalid', reason: `The time-stamp from ${x.tsa} on checkpoint ${cp.size} does not verify: ${res.reason}.` });
        continue;
      }
      a.timestamps.push({ tsa: x.tsa, size: cp.size, time: res.time });
      if (cp.size >= covers) stamped = true;
    }
  }
  for (const label of keys.keys()) {
    if (!covered.has(label))
      fail({ code: 'cosignature_missing', reason: `anchors.jsonl holds no valid cosignature by ${label} on a checkpoint of the bundle covering its span (size at least ${covers}).` });
  }
  if (opts.tsaCert !== undefined && !stamped)
    fail({ code: 'timestamp_missing', reason: `anchors.jsonl holds no valid RFC 3161 time-stamp on a checkpoint of the bundle covering its span (size at least ${covers}).` });
  r.anchors = a;
  r.failures.push(...a.failures);
  r.ok = r.failures.length === 0 && !r.unverifiable;
  if (r.first === undefined && r.failures[0] !== undefined) r.first = r.failures[0];
}

// ---------------------------------------------------------------------------------------------
// Command line.

/** Opens a directory or zip bundle; throws Unreadable for what is not a bundle at all. */
export function openSource(target) {
  let st;
  try {
    st = fs.statSync(target);
  } catch {
    throw new Unreadable(`${target} does not exist; pass an evidence bundle directory or zip`);
  }
  if (st.isDirectory()) return new DirectorySource(target);
  // A zip is a file that starts with a zip header, ends with an end record or is named *.zip: data
  // prepended to an archive does not make it something else, it is read as a zip and refused.
  const head = Buffer.alloc(4);
  const tail = Buffer.alloc(4);
  const fd = fs.openSync(target, 'r');
  try {
    fs.readSync(fd, head, 0, 4, 0);
    if (st.size >= 22) fs.readSync(fd, tail, 0, 4, st.size - 22);
  } finally {
    fs.closeSync(fd);
  }
  const zipped = target.toLowerCase().endsWith('.zip') || [0x04034b50, 0x06054b50].includes(head.readUInt32LE(0)) || tail.readUInt32LE(0) === 0x06054b50;
  if (!zipped) throw new Unreadable(`${target} is neither a directory nor a zip; pass an evidence bundle`);
  return new ZipSource(target);
}

function parseArgs(argv) {
  const opts = { trustedKeys: [], json: false, requirePayloads: false, target: undefined, cosigners: [], tsaCert: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--require-payloads') opts.requirePayloads = true;
    else if (a === '--require-cosigner' || a.startsWith('--require-cosigner=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined || v === '') throw new Unreadable('--require-cosigner needs the cosigner verifier key');
      opts.cosigners.push(parseCosignerKey(v));
    } else if (a === '--tsa-cert' || a.startsWith('--tsa-cert=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined || !fs.existsSync(v)) throw new Unreadable(`--tsa-cert ${v ?? ''} does not exist; pass the PEM certificate of the time-stamp authority (or its CA) you trust`);
      opts.tsaCert = v;
    } else if (a === '--trusted-key' || a.startsWith('--trusted-key=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined || v === '') throw new Unreadable('--trusted-key needs a verifier key string or a file of them');
      const isFile = fs.existsSync(v) && fs.statSync(v).isFile();
      const keys = isFile
        ? fs
            .readFileSync(v, 'utf8')
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l !== '')
        : [v.trim()];
      for (const k of keys) {
        try {
          parseVerifierKey(k);
        } catch (e) {
          throw new Unreadable(`${isFile ? `a line of ${v}` : `--trusted-key ${v}`} is not a verifier key (${e.message}); pass the key string from your own record`);
        }
      }
      opts.trustedKeys.push(...keys);
    } else if (a === '--help' || a === '-h') opts.help = true;
    else if (a.startsWith('-'))
      throw new Unreadable(`unknown option ${a}; usage: node verify.mjs [BUNDLE] [--trusted-key KEY] [--json] [--require-payloads] [--require-cosigner VKEY] [--tsa-cert FILE]`);
    else if (opts.target !== undefined) throw new Unreadable('pass one bundle at a time');
    else opts.target = a;
  }
  return opts;
}

/** The verdict in plain words: PASS or FAIL, what it rests on, and every event without payload. */
export function formatVerdict(subject, r) {
  const out = [];
  // Stream ids, reasons and key names can hold recorded text: one line each, controls made visible.
  const line = (s) => out.push(s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  const n = (x) => x.toLocaleString('en-US');
  if (r.first !== undefined) {
    const f = r.first;
    const at = [
      f.stream === undefined ? '' : `session ${f.stream}`,
      f.seq === undefined || f.seq < 0 ? '' : `seq ${f.seq}`,
      f.leaf === undefined ? '' : `leaf ${f.leaf}`,
      f.checkpoint === undefined ? '' : `checkpoint ${f.checkpoint}`,
    ]
      .filter((s) => s !== '')
      .join(', ');
    line(`FAIL ✘ ${subject} FAILED verification${at === '' ? '' : ` at ${at}`}: ${f.code}: ${f.reason}`);
    for (const g of r.failures.slice(1, 10)) line(`  also:  ${g.code}${g.leaf === undefined ? '' : ` (leaf ${g.leaf})`}: ${g.reason}`);
    if (r.failures.length > 10) line(`  (${r.failures.length - 10} more failure(s); --json lists them all)`);
  } else if (r.unverifiable) {
    line(`? ${subject} is unverifiable by this verifier (written by a newer format).`);
  } else {
    // Without a pinned key the bundle vouches for itself: the headline says so, not plain "intact".
    const selfSigned = r.trust.keys.length > 0 && r.trust.keys.every((k) => k.source === 'bundle');
    const intact = selfSigned ? 'is intact, but signed only by keys carried inside the bundle — pin the key from your own record (--trusted-key)' : 'is intact';
    line(`PASS ✔ ${subject} ${intact}: ${n(r.events)} events in ${n(r.streams)} session(s), verified against ${n(r.checkpoints)} signed checkpoint(s) (tree size ${n(r.sealedSize)}).`);
  }
  const b = r.bundle;
  if (b !== undefined) {
    // The span and scope lines are witness verify's, word for word (src/cli/commands/verify.ts printBundle).
    const leaves = (from, to) => (to - from === 1 ? String(from) : `${from}–${to - 1}`);
    line(`  span:  leaves ${leaves(b.span.from, b.span.to)} (${n(b.span.to - b.span.from)} events), ${n(b.inScope)} in scope; mode ${b.mode}; export event at leaf ${b.exportEvent.leaf}`);
    const s = b.scope;
    const scope = [
      s.since === null ? '' : `since ${s.since}`,
      s.until === null ? '' : `until ${s.until}`,
      s.agents === null ? '' : `agents ${s.agents.join(', ')}`,
      s.sessions === null ? '' : `sessions ${s.sessions.join(', ')}`,
      s.regimes.length === 0 ? '' : `regimes ${s.regimes.join(', ')}`,
    ].filter((x) => x !== '');
    line(`  scope: ${scope.length === 0 ? 'everything in the span' : scope.join('; ')}`);
    if (b.populations.length > 0) line(`  populations: ${b.populations.map((p) => `${p.name} ${n(p.count)}`).join(', ')}`);
    const byReason = new Map();
    for (const w of b.withoutPayload) {
      if (!byReason.has(w.reason)) byReason.set(w.reason, []);
      byReason.get(w.reason).push(w);
    }
    if (byReason.size > 0) line(`  note:  ${n(b.withoutPayloadCount)} event(s) carry no payload; their content was not checked:`);
    for (const [reason, runs] of byReason) {
      const count = runs.reduce((k, w) => k + w.to - w.from, 0);
      const shown = runs.slice(0, 50).map((w) => (w.to - w.from === 1 ? `${w.from}` : `${w.from}–${w.to - 1}`));
      line(`         ${REASON_WORDS[reason]} (${n(count)}): leaves ${shown.join(', ')}${runs.length > 50 ? `, and ${runs.length - 50} more runs (--json lists them all)` : ''}`);
    }
  }
  line(`  trust: ${r.trust.statement}`);
  const an = r.anchors;
  for (const c of an?.checked ?? []) line(`  anchor: cosignature by ${c.cosigner} on checkpoint ${c.size} at ${new Date(c.timestamp * 1000).toISOString()} verified`);
  for (const t of an?.timestamps ?? []) line(`  anchor: time-stamp by ${t.tsa} on checkpoint ${t.size}: ${t.time} (openssl ts -verify OK)`);
  if (an !== undefined && an.unjudged > 0) line(`  anchor: ${an.unjudged} cosignature(s) in anchors.jsonl by witnesses you did not name were not checked; name their keys with --require-cosigner`);
  for (const k of r.trust.keys) line(`  key:   ${k.name}+${k.keyHash} (${k.source})`);
  for (const w of r.warnings.slice(0, 5)) line(`  note:  ${w}`);
  return out.join('\n');
}

/**
 * Verifies the bundle at `target` (a directory or a zip): the report, with an archive refused as
 * one bundle_invalid. Throws Unreadable for what is no bundle at all or cannot be read here.
 */
export async function verifyTarget(target, opts = {}) {
  let source;
  try {
    source = openSource(target);
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    const failure = { code: 'bundle_invalid', reason: `${e.message}: the bundle was refused.` };
    return {
      ok: false,
      unverifiable: false,
      events: 0,
      streams: 0,
      checkpoints: 0,
      sealedSize: 0,
      unsealed: 0,
      payloadsAbsent: 0,
      artifacts: 0,
      openSessions: 0,
      failures: [failure],
      first: failure,
      trust: { keys: [], statement: 'Nothing was relied on: the bundle was refused before any signature or hash chain was checked.' },
      warnings: [],
    };
  }
  try {
    const report = await verifyBundle(source, opts);
    await checkAnchors(source, { cosigners: opts.cosigners ?? [], tsaCert: opts.tsaCert }, report);
    return report;
  } finally {
    source.close?.();
  }
}

export async function main(argv, out = (s) => process.stdout.write(`${s}\n`), err = (s) => process.stderr.write(`${s}\n`)) {
  try {
    const opts = parseArgs(argv);
    if (opts.help) {
      out(
        'usage: node verify.mjs [BUNDLE_DIR_OR_ZIP] [--trusted-key KEY]... [--json] [--require-payloads] [--require-cosigner VKEY]... [--tsa-cert FILE]\nBUNDLE defaults to the directory this file is in. Exit 0: verified; 1: verification failed; 2: bad usage.',
      );
      return 0;
    }
    const target = opts.target ?? path.dirname(fileURLToPath(import.meta.url));
    const report = await verifyTarget(target, opts);
    out(opts.json ? JSON.stringify(report, null, 2) : formatVerdict(`Bundle ${target}`, report));
    return report.ok ? 0 : 1;
  } catch (e) {
    if (e instanceof Unreadable) {
      err(`verify.mjs: ${e.message}.`);
      return 2;
    }
    throw e;
  }
}

const invoked =
  process.argv[1] !== undefined &&
  (() => {
    try {
      return fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url));
    } catch {
      return false;
    }
  })();
if (invoked) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`verify.mjs: unexpected error, please report it: ${e?.stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}
