import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint, witnessTime } from '../../src/core/checkpoint.js';
import { generateKey, parseSignerKey, parseVerifierKey, signNote } from '../../src/core/note.js';
import { codeOf } from '../helpers/errors.js';

// A real sum.golang.org signed tree head and the Go checksum database's public key, copied from
// google/trillian-examples formats/log/checkpoint_test.go (TestSumDBNoteParsing).
const SUMDB_VKEY = 'sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8';
const SUMDB_NOTE =
  'go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n' +
  '\u2014 sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n';

// Key pairs in Go's note format, from the same google/trillian-examples test file.
const LOG_VKEY = 'Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs';
const LOG_SKEY = 'PRIVATE+KEY+Log+2271c621+AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ';
const KNOWN_VKEY = 'Known+451c786d+AXAQ0T7lbwuY4ABJ9/MYY9bWV3hmSyOGVt2x42NkmdUH';
const KNOWN_SKEY = 'PRIVATE+KEY+Known+451c786d+AQPRoE2+Z+Ed1HaHBA9F/FfracvcZ2rDU39kCecMEoci';
const UNKNOWN_SKEY = 'PRIVATE+KEY+Unknown+fdbb2e08+Aav2knTC6orbhXX8pMWuNiWgO+Wwk2DB+h1eU2Q1W1nU';

// golang.org/x/mod sumdb/tlog/note_test.go (TestFormatTree, TestParseTree): the tree head for
// size 123456789012 and root RecordHash("hello world") = SHA-256(0x00 || "hello world").
const TLOG_GOLDEN = 'go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n';
const TLOG_ROOT = createHash('sha256').update(Buffer.from('\x00hello world', 'latin1')).digest();

// The example checkpoint body in c2sp.org/tlog-checkpoint (C2SP/C2SP tlog-checkpoint.md).
const C2SP_BODY = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';

const ROOT = new Uint8Array(32).map((_, i) => i);
const ROOT_B64 = Buffer.from(ROOT).toString('base64');

describe('formatCheckpoint', () => {
  it("formats the tree head from Go's sumdb/tlog note_test.go byte for byte", () => {
    expect(formatCheckpoint({ origin: 'go.sum database tree', size: 123456789012, rootHash: TLOG_ROOT })).toBe(TLOG_GOLDEN);
  });

  it('formats size zero and extension lines', () => {
    expect(formatCheckpoint({ origin: 'o', size: 0, rootHash: ROOT, extensions: ['ext one', 'two'] })).toBe(`o\n0\n${ROOT_B64}\next one\ntwo\n`);
  });

  it('rejects an empty origin, an origin with a newline, a bad size, a wrong-length root and bad extensions', () => {
    const ok = { origin: 'o', size: 1, rootHash: ROOT };
    expect(codeOf(() => formatCheckpoint(ok))).toBe('no error');
    expect(codeOf(() => formatCheckpoint({ ...ok, origin: '' }))).toBe('invalid_checkpoint');
    expect(codeOf(() => formatCheckpoint({ ...ok, origin: 'a\nb' }))).toBe('invalid_checkpoint');
    expect(codeOf(() => formatCheckpoint({ ...ok, origin: 'a\tb' }))).toBe('invalid_checkpoint');
    expect(codeOf(() => formatCheckpoint({ ...ok, size: -1 }))).toBe('invalid_checkpoint');
    expect(codeOf(() => formatCheckpoint({ ...ok, size: 1.5 }))).toBe('invalid_checkpoint');
    expect(codeOf(() => formatCheckpoint({ ...ok, size: Number.NaN }))).toBe('invalid_checkpoint');
    expect(codeOf(() => formatCheckpoint({ ...ok, size: 2 ** 53 }))).toBe('invalid_checkpoint');
    expect(codeOf(() => formatCheckpoint({ ...ok, rootHash: new Uint8Array(31) }))).toBe('invalid_checkpoint');
    expect(codeOf(() => formatCheckpoint({ ...ok, rootHash: new Uint8Array(33) }))).toBe('invalid_checkpoint');
    expect(codeOf(() => formatCheckpoint({ ...ok, extensions: [''] }))).toBe('invalid_checkpoint');
    expect(codeOf(() => formatCheckpoint({ ...ok, extensions: ['a\nb'] }))).toBe('invalid_checkpoint');
  });
});

describe('parseCheckpoint', () => {
  it("parses the tree head from Go's sumdb/tlog note_test.go", () => {
    const cp = parseCheckpoint(TLOG_GOLDEN);
    expect(cp.origin).toBe('go.sum database tree');
    expect(cp.size).toBe(123456789012);
    expect(Buffer.from(cp.rootHash).equals(TLOG_ROOT)).toBe(true);
    expect(cp.extensions).toEqual([]);
  });

  it('parses the example checkpoint body from c2sp.org/tlog-checkpoint', () => {
    const cp = parseCheckpoint(C2SP_BODY);
    expect(cp.origin).toBe('example.com/behind-the-sofa');
    expect(cp.size).toBe(20852163);
    expect(Buffer.from(cp.rootHash).toString('base64')).toBe('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=');
  });

  it('round-trips through formatCheckpoint, extensions included', () => {
    const input = { origin: 'witness.example/witness/7d7e0c5a', size: 9007199254740991, rootHash: ROOT, extensions: ['x'] };
    const cp = parseCheckpoint(formatCheckpoint(input));
    expect(cp).toEqual({ ...input, rootHash: ROOT });
    expect(formatCheckpoint(cp)).toBe(formatCheckpoint(input));
  });

  it("rejects the bad trees from Go's sumdb/tlog note_test.go", () => {
    expect(codeOf(() => parseCheckpoint('go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n'))).toBe('invalid_checkpoint');
    expect(codeOf(() => parseCheckpoint('go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n'))).toBe('invalid_checkpoint');
  });

  it('rejects sizes with leading zeros, signs, non-digits or beyond the safe integer range', () => {
    for (const size of ['00', '01', '007', '-1', '-0', '+1', '', ' 1', '1 ', 'abc', '1e3', '1.0', '0x10', '\u0661', '9007199254740992']) {
      expect(
        codeOf(() => parseCheckpoint(`o\n${size}\n${ROOT_B64}\n`)),
        size,
      ).toBe('invalid_checkpoint');
    }
    expect(parseCheckpoint(`o\n0\n${ROOT_B64}\n`).size).toBe(0);
    expect(parseCheckpoint(`o\n9007199254740991\n${ROOT_B64}\n`).size).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('rejects root hashes that are not canonical base64 of exactly 32 bytes', () => {
    const b31 = Buffer.alloc(31, 7).toString('base64');
    const b33 = Buffer.alloc(33, 7).toString('base64');
    const nonCanonical = `${ROOT_B64.slice(0, -2)}9=`; // 0x..f5 vs 0x..f4 padding bits
    const roots = [b31, b33, '', ROOT_B64.replace(/=$/, ''), `${ROOT_B64}=`, `-${ROOT_B64.slice(1)}`, `_${ROOT_B64.slice(1)}`, `${ROOT_B64} `, nonCanonical, '!'.repeat(44)];
    expect(Buffer.from(nonCanonical, 'base64').equals(Buffer.from(ROOT))).toBe(true);
    for (const root of roots) {
      expect(
        codeOf(() => parseCheckpoint(`o\n1\n${root}\n`)),
        root,
      ).toBe('invalid_checkpoint');
    }
  });

  it('rejects a missing final newline, missing lines, an empty origin and empty extension lines', () => {
    for (const text of [
      `o\n1\n${ROOT_B64}`,
      'o\n1\n',
      'o\n',
      '',
      `\n1\n${ROOT_B64}\n`,
      `o\n1\n${ROOT_B64}\n\n`,
      `o\n1\n${ROOT_B64}\next\n\nmore\n`,
      `o\x01\n1\n${ROOT_B64}\n`,
      `o\r\n1\n${ROOT_B64}\n`,
    ]) {
      expect(
        codeOf(() => parseCheckpoint(text)),
        JSON.stringify(text),
      ).toBe('invalid_checkpoint');
    }
    expect(codeOf(() => parseCheckpoint(undefined as unknown as string))).toBe('invalid_checkpoint');
  });
});

describe('signed checkpoints', () => {
  it('verifies the sum.golang.org checkpoint from google/trillian-examples with the Go checksum database key', () => {
    const opened = openCheckpoint(SUMDB_NOTE, [parseVerifierKey(SUMDB_VKEY)], 'go.sum database tree');
    expect(opened.checkpoint.origin).toBe('go.sum database tree');
    expect(opened.checkpoint.size).toBe(6476701);
    expect(Buffer.from(opened.checkpoint.rootHash).toString('base64')).toBe('mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=');
    expect(opened.verified).toEqual([{ name: 'sum.golang.org', keyHash: 0x033de0ae }]);
  });

  it('rejects the sum.golang.org checkpoint when another origin is expected', () => {
    expect(codeOf(() => openCheckpoint(SUMDB_NOTE, [parseVerifierKey(SUMDB_VKEY)], 'Go rocks but I might have the wrong ID'))).toBe('invalid_checkpoint');
  });

  it('rejects the sum.golang.org checkpoint with a changed size', () => {
    const forged = SUMDB_NOTE.replace('6476701', '6476702');
    expect(codeOf(() => openCheckpoint(forged, [parseVerifierKey(SUMDB_VKEY)]))).toBe('invalid_signature');
  });

  it('signs and opens a checkpoint with the log key and a cosigner while ignoring an unknown signer', () => {
    const cp = { origin: 'TestParseCheckpoint', size: 42, rootHash: ROOT };
    const msg = signCheckpoint(cp, [parseSignerKey(LOG_SKEY), parseSignerKey(KNOWN_SKEY), parseSignerKey(UNKNOWN_SKEY)]);
    const opened = openCheckpoint(msg, [parseVerifierKey(LOG_VKEY), parseVerifierKey(KNOWN_VKEY)], 'TestParseCheckpoint');
    expect(opened.checkpoint).toEqual({ ...cp, extensions: [] });
    expect(opened.text).toBe(formatCheckpoint(cp));
    expect(opened.verified.map((v) => v.name)).toEqual(['Log', 'Known']);
    expect(opened.unknown).toEqual([{ name: 'Unknown', keyHash: 0xfdbb2e08 }]);
  });

  it('fails a checkpoint signed only by unknown keys', () => {
    const msg = signCheckpoint({ origin: 'o', size: 1, rootHash: ROOT }, [parseSignerKey(UNKNOWN_SKEY)]);
    expect(codeOf(() => openCheckpoint(msg, [parseVerifierKey(LOG_VKEY)]))).toBe('invalid_signature');
  });

  it('rejects a validly signed note whose body is not a checkpoint', () => {
    const msg = signNote("if this is a valid checkpoint then I'll eat my hat\n", [parseSignerKey(LOG_SKEY)]);
    expect(codeOf(() => openCheckpoint(msg, [parseVerifierKey(LOG_VKEY)]))).toBe('invalid_checkpoint');
  });

  it('round-trips a freshly generated key with extensions and a Witness-style origin', () => {
    const k = generateKey('acme/witness/0b5f3c1e-8a41-4c1e-9a5e-0d3f1f0a6b21');
    const cp = { origin: 'acme/witness/0b5f3c1e-8a41-4c1e-9a5e-0d3f1f0a6b21', size: 0, rootHash: ROOT, extensions: ['note'] };
    const opened = openCheckpoint(signCheckpoint(cp, [parseSignerKey(k.signerKey)]), [parseVerifierKey(k.verifierKey)], cp.origin);
    expect(opened.checkpoint).toEqual(cp);
  });
});

describe('witnessTime', () => {
  const cp = (extensions: string[]) => parseCheckpoint(formatCheckpoint({ origin: 'o', size: 1, rootHash: new Uint8Array(32), extensions }));

  it('[R-UNSEALED-GAP] reads the first `witness-time <ISO-8601>` extension line of the signed body, in ms since the epoch', () => {
    expect(witnessTime(cp(['other thing', 'witness-time 2026-01-15T10:00:09.000Z', 'witness-time 2030-01-01T00:00:00.000Z']))).toBe(Date.UTC(2026, 0, 15, 10, 0, 9));
  });

  it('is undefined without the line, or when its time does not parse', () => {
    expect(witnessTime(cp([]))).toBeUndefined();
    expect(witnessTime(cp(['witness-time yesterday']))).toBeUndefined();
    expect(witnessTime(cp(['witness-timer 2026-01-15T10:00:09.000Z']))).toBeUndefined();
  });
});
