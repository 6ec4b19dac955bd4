import { describe, expect, it } from 'vitest';
import { isWitnessError } from '../../src/core/errors.js';
import { MAX_NOTE_BYTES, computeKeyHash, formatVerifierKey, generateKey, isCanonicalEd25519Signature, openNote, parseSignerKey, parseVerifierKey, signNote } from '../../src/core/note.js';
import type { NoteSigner, NoteVerifier } from '../../src/core/note.js';
import { codeOf } from '../helpers/errors.js';

// Known-answer vectors copied from golang.org/x/mod sumdb/note/note_test.go
// (github.com/golang/mod, TestNewVerifier, TestNewSigner, TestSign, TestOpen).
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG = '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG = '\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

// The example note in c2sp.org/signed-note (C2SP/C2SP signed-note.md). The spec publishes no
// verifier key for it, so it only exercises parsing: its text contains a blank line of its own.
const C2SP_TEXT = 'Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n';
const C2SP_NOTE = C2SP_TEXT + '\n\u2014 quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n';

const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n;

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

const peter = (): NoteVerifier => parseVerifierKey(PETER_VKEY);
const enoch = (): NoteVerifier => parseVerifierKey(ENOCH_VKEY);

describe('note keys', () => {
  it("parses the PeterNeumann verifier and signer keys from Go's note_test.go with the same key hash", () => {
    const v = peter();
    const s = parseSignerKey(PETER_SKEY);
    expect(v.name).toBe('PeterNeumann');
    expect(v.keyHash).toBe(0xc74f20a3);
    expect(s.name).toBe('PeterNeumann');
    expect(s.keyHash).toBe(0xc74f20a3);
    expect(computeKeyHash(v.name, v.publicKey)).toBe(0xc74f20a3);
    expect(formatVerifierKey(v.name, v.publicKey)).toBe(PETER_VKEY);
  });

  it("rejects every truncation of the verifier key, as Go's TestNewVerifier does", () => {
    for (let i = 0; i <= PETER_VKEY.length; i++) {
      for (let j = i + 1; j <= PETER_VKEY.length; j++) {
        if (i === 0 && j === PETER_VKEY.length) continue;
        expect(
          codeOf(() => parseVerifierKey(PETER_VKEY.slice(i, j))),
          PETER_VKEY.slice(i, j),
        ).toBe('invalid_key');
      }
    }
  });

  it("rejects every single-character increment of the verifier key, as Go's TestNewVerifier does", () => {
    for (let i = 0; i < PETER_VKEY.length; i++) {
      const k = PETER_VKEY.slice(0, i) + String.fromCharCode(PETER_VKEY.charCodeAt(i) + 1) + PETER_VKEY.slice(i + 1);
      expect(
        codeOf(() => parseVerifierKey(k)),
        k,
      ).toBe('invalid_key');
    }
  });

  it("rejects a wrong-length key and an unknown algorithm even with a matching key hash, from Go's TestNewVerifier", () => {
    expect(codeOf(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='))).toBe('invalid_key');
    expect(codeOf(() => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'))).toBe('invalid_key');
  });

  it("rejects every truncation and single-character increment of the signer key, as Go's TestNewSigner does", () => {
    for (let i = 0; i <= PETER_SKEY.length; i++) {
      for (let j = i + 1; j <= PETER_SKEY.length; j++) {
        if (i === 0 && j === PETER_SKEY.length) continue;
        expect(
          codeOf(() => parseSignerKey(PETER_SKEY.slice(i, j))),
          PETER_SKEY.slice(i, j),
        ).toBe('invalid_key');
      }
    }
    for (let i = 0; i < PETER_SKEY.length; i++) {
      const k = PETER_SKEY.slice(0, i) + String.fromCharCode(PETER_SKEY.charCodeAt(i) + 1) + PETER_SKEY.slice(i + 1);
      expect(
        codeOf(() => parseSignerKey(k)),
        k,
      ).toBe('invalid_key');
    }
  });

  it('rejects keys with names containing spaces, plus signs or control characters, and non-strings', () => {
    expect(codeOf(() => generateKey('has space'))).toBe('invalid_key');
    expect(codeOf(() => generateKey('a+b'))).toBe('invalid_key');
    expect(codeOf(() => generateKey('tab\there'))).toBe('invalid_key');
    expect(codeOf(() => generateKey('nbsp\u00a0here'))).toBe('invalid_key');
    expect(codeOf(() => generateKey(''))).toBe('invalid_key');
    expect(codeOf(() => parseVerifierKey(undefined as unknown as string))).toBe('invalid_key');
    expect(codeOf(() => parseSignerKey(42 as unknown as string))).toBe('invalid_key');
  });

  it('rejects a verifier key whose base64 has non-zero padding bits', () => {
    // Same bytes as PETER_VKEY but spelled differently; Go's lenient decoder would accept it.
    const last = PETER_VKEY.at(-1) ?? '';
    expect(last).toBe('W');
    expect(codeOf(() => parseVerifierKey(`${PETER_VKEY.slice(0, -1)}X`))).toBe('invalid_key');
  });

  it('generates keys in the Go string formats that parse back into a matching signer and verifier', () => {
    const { signerKey, verifierKey } = generateKey('example.com/witness');
    expect(signerKey).toMatch(/^PRIVATE\+KEY\+example\.com\/witness\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    expect(verifierKey).toMatch(/^example\.com\/witness\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    const s = parseSignerKey(signerKey);
    const v = parseVerifierKey(verifierKey);
    expect(s.keyHash).toBe(v.keyHash);
    const msg = new TextEncoder().encode('hi');
    const sig = s.sign(msg);
    expect(v.verify(msg, sig)).toBe(true);
    sig[0] = (sig[0] ?? 0) ^ 1;
    expect(v.verify(msg, sig)).toBe(false);
    sig[0] = (sig[0] ?? 0) ^ 1;
    expect(v.verify(new TextEncoder().encode('ho'), sig)).toBe(false);
  });
});

describe('signNote', () => {
  it("[R-KAT] reproduces the signature by PeterNeumann from Go's note_test.go byte for byte", () => {
    expect(signNote(GO_TEXT, [parseSignerKey(PETER_SKEY)])).toBe(`${GO_TEXT}\n${PETER_SIG}`);
  });

  it('appends one signature line per signer in the given order', () => {
    const a = generateKey('a.example');
    const b = generateKey('b.example');
    const msg = signNote('hello\n', [parseSignerKey(a.signerKey), parseSignerKey(b.signerKey)]);
    const lines = msg.split('\n');
    expect(lines[0]).toBe('hello');
    expect(lines[1]).toBe('');
    expect(lines[2]).toMatch(/^\u2014 a\.example /);
    expect(lines[3]).toMatch(/^\u2014 b\.example /);
    expect(lines[4]).toBe('');
  });

  it('rejects text without a final newline, with control characters or with lone surrogates', () => {
    const s = [parseSignerKey(PETER_SKEY)];
    expect(codeOf(() => signNote('abc', s))).toBe('invalid_argument');
    expect(codeOf(() => signNote('', s))).toBe('invalid_argument');
    expect(codeOf(() => signNote('a\tb\n', s))).toBe('invalid_argument');
    expect(codeOf(() => signNote('a\rb\n', s))).toBe('invalid_argument');
    expect(codeOf(() => signNote('a\ud800b\n', s))).toBe('invalid_argument');
  });

  it('rejects no signers, a signer with an invalid name and the same key twice', () => {
    const s = parseSignerKey(PETER_SKEY);
    expect(codeOf(() => signNote(GO_TEXT, []))).toBe('invalid_argument');
    const badName: NoteSigner = { name: 'bad name', keyHash: s.keyHash, verifierKey: s.verifierKey, sign: (m) => s.sign(m) };
    expect(codeOf(() => signNote(GO_TEXT, [badName]))).toBe('invalid_key');
    expect(codeOf(() => signNote(GO_TEXT, [s, parseSignerKey(PETER_SKEY)]))).toBe('invalid_key');
  });
});

describe('openNote', () => {
  it("verifies the note signed by PeterNeumann from Go's note_test.go", () => {
    const n = openNote(GO_TEXT + '\n' + PETER_SIG, [peter()]);
    expect(n.text).toBe(GO_TEXT);
    expect(n.verified).toEqual([{ name: 'PeterNeumann', keyHash: 0xc74f20a3 }]);
    expect(n.unknown).toEqual([]);
  });

  it('accepts the note as bytes too', () => {
    const n = openNote(new TextEncoder().encode(GO_TEXT + '\n' + PETER_SIG), [peter()]);
    expect(n.text).toBe(GO_TEXT);
  });

  it("verifies both signatures of the doubly signed note from Go's note_test.go", () => {
    const n = openNote(GO_TEXT + '\n' + PETER_SIG + ENOCH_SIG, [peter(), enoch()]);
    expect(n.verified).toEqual([
      { name: 'PeterNeumann', keyHash: 0xc74f20a3 },
      { name: 'EnochRoot', keyHash: 0xaf0cfe78 },
    ]);
    expect(n.unknown).toEqual([]);
  });

  it('ignores a signature from an unknown key and lists it as unknown', () => {
    const n = openNote(GO_TEXT + '\n' + PETER_SIG + ENOCH_SIG, [peter()]);
    expect(n.verified).toEqual([{ name: 'PeterNeumann', keyHash: 0xc74f20a3 }]);
    expect(n.unknown).toEqual([{ name: 'EnochRoot', keyHash: 0xaf0cfe78 }]);
  });

  it('treats a key with a known name but another key hash as unknown, as the spec requires', () => {
    const other = generateKey('PeterNeumann');
    const msg = signNote(GO_TEXT, [parseSignerKey(other.signerKey), parseSignerKey(PETER_SKEY)]);
    const n = openNote(msg, [peter()]);
    expect(n.verified).toEqual([{ name: 'PeterNeumann', keyHash: 0xc74f20a3 }]);
    expect(n.unknown).toEqual([{ name: 'PeterNeumann', keyHash: parseVerifierKey(other.verifierKey).keyHash }]);
  });

  it('fails with the unknown signers in the details when no signature is from a trusted key', () => {
    const e = errorOf(() => openNote(GO_TEXT + '\n' + PETER_SIG + ENOCH_SIG, []));
    expect(isWitnessError(e, 'invalid_signature')).toBe(true);
    expect(isWitnessError(e) && e.details).toEqual({
      reason: 'unverified',
      unknown: ['PeterNeumann+c74f20a3', 'EnochRoot+af0cfe78'],
    });
  });

  it('parses the c2sp.org/signed-note example, whose text contains a blank line, and finds its signer unknown', () => {
    const e = errorOf(() => openNote(C2SP_NOTE, [peter()]));
    expect(isWitnessError(e, 'invalid_signature')).toBe(true);
    const unknown = (isWitnessError(e) && e.details?.['unknown']) as string[];
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatch(/^quasimodo\.example\/salvatore\+[0-9a-f]{8}$/);
  });

  it('splits text from signatures at the last blank line when our own signed text contains blank lines', () => {
    const s = parseSignerKey(PETER_SKEY);
    for (const text of [C2SP_TEXT, '\n', 'a\n\n\n', '\u2014 fake line\n']) {
      expect(openNote(signNote(text, [s]), [peter()]).text).toBe(text);
    }
  });

  it("rejects a signature from a trusted key that does not verify, from Go's TestOpen", () => {
    const bad = PETER_SIG.slice(0, 60) + 'ABCD' + PETER_SIG.slice(60);
    const e = errorOf(() => openNote(GO_TEXT + '\n' + bad, [peter()]));
    expect(isWitnessError(e, 'invalid_signature')).toBe(true);
    expect(isWitnessError(e) && e.details).toEqual({ reason: 'bad_signature', key: 'PeterNeumann+c74f20a3' });
  });

  it('rejects the note when a second, forged signature by a trusted key follows a good one', () => {
    const bad = PETER_SIG.slice(0, 60) + 'ABCD' + PETER_SIG.slice(60);
    expect(codeOf(() => openNote(GO_TEXT + '\n' + PETER_SIG + bad, [peter()]))).toBe('invalid_signature');
  });

  it('rejects modified text', () => {
    const tampered = GO_TEXT.replace('cryptography', 'cryptograpHy');
    expect(codeOf(() => openNote(tampered + '\n' + PETER_SIG, [peter()]))).toBe('invalid_signature');
    expect(codeOf(() => openNote('x' + GO_TEXT + '\n' + PETER_SIG, [peter()]))).toBe('invalid_signature');
  });

  it("lists repeated signatures once, from Go's TestOpen", () => {
    const enochABCD = ENOCH_SIG.slice(0, 60) + 'ABCD' + ENOCH_SIG.slice(60);
    const n = openNote(GO_TEXT + '\n' + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enochABCD, [peter()]);
    expect(n.verified).toEqual([{ name: 'PeterNeumann', keyHash: 0xc74f20a3 }]);
    expect(n.unknown).toEqual([{ name: 'EnochRoot', keyHash: 0xaf0cfe78 }]);
  });

  it("rejects malformed messages from Go's TestOpen", () => {
    const bad = [
      GO_TEXT,
      GO_TEXT + '\n',
      GO_TEXT + '\n' + PETER_SIG.slice(0, -1),
      '\x01' + GO_TEXT + '\n' + PETER_SIG,
      GO_TEXT + '\n' + '\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=',
      GO_TEXT + '\n' + PETER_SIG + 'Unexpected line.\n',
    ];
    for (const msg of bad) {
      const e = errorOf(() => openNote(msg, [peter()]));
      expect(isWitnessError(e, 'invalid_signature'), msg).toBe(true);
      expect(isWitnessError(e) && e.details, msg).toEqual({ reason: 'malformed' });
    }
  });

  it("rejects invalid UTF-8 bytes, including the \\xff case from Go's TestOpen", () => {
    const enc = new TextEncoder();
    const msg = new Uint8Array([0xff, ...enc.encode(GO_TEXT + '\n' + PETER_SIG)]);
    expect(codeOf(() => openNote(msg, [peter()]))).toBe('invalid_signature');
    const overlong = new Uint8Array([0xc0, 0xaf, ...enc.encode(GO_TEXT + '\n' + PETER_SIG)]);
    expect(codeOf(() => openNote(overlong, [peter()]))).toBe('invalid_signature');
    expect(codeOf(() => openNote('\ud800' + GO_TEXT + '\n' + PETER_SIG, [peter()]))).toBe('invalid_signature');
  });

  it('rejects malformed signature lines', () => {
    const sigB64 = PETER_SIG.slice('\u2014 PeterNeumann '.length, -1);
    const lines = [
      `- PeterNeumann ${sigB64}\n`, // hyphen, not em dash
      `\u2014PeterNeumann ${sigB64}\n`,
      `\u2014  PeterNeumann ${sigB64}\n`,
      `\u2014 PeterNeumann  ${sigB64}\n`,
      `\u2014 PeterNeumann ${sigB64} \n`,
      `\u2014 PeterNeumann\n`,
      `\u2014 PeterNeumann \n`,
      `\u2014  ${sigB64}\n`,
      `\u2014 Peter+Neumann ${sigB64}\n`,
      `\u2014 PeterNeumann ${sigB64.slice(0, -1)}\n`, // padding missing
      `\u2014 PeterNeumann ${sigB64.replace(/=$/, '')}\n`,
      `\u2014 PeterNeumann ${sigB64.slice(0, -2)}N=\n`, // non-zero padding bits: same bytes, other spelling
      `\u2014 PeterNeumann AAAAAA==\n`, // four bytes: a key hash and no signature
      `\u2014 PeterNeumann ${sigB64}\r\n`,
      `\u2014 Peter\u3000Neumann ${sigB64}\n`,
    ];
    for (const line of lines) {
      expect(
        codeOf(() => openNote(GO_TEXT + '\n' + line, [peter()])),
        line,
      ).toBe('invalid_signature');
    }
  });

  it("rejects more than 100 signatures, from Go's TestOpen, and accepts 100", () => {
    expect(codeOf(() => openNote(GO_TEXT + '\n' + PETER_SIG.repeat(101), [peter()]))).toBe('invalid_signature');
    expect(codeOf(() => openNote(GO_TEXT + '\n' + PETER_SIG.repeat(101), []))).toBe('invalid_signature');
    expect(openNote(GO_TEXT + '\n' + PETER_SIG.repeat(100), [peter()]).verified).toHaveLength(1);
  });

  it('accepts several signatures from distinct trusted keys', () => {
    const keys = Array.from({ length: 16 }, (_, i) => generateKey(`k${i}.example`));
    const msg = signNote(
      'checkpoint\n',
      keys.map((k) => parseSignerKey(k.signerKey)),
    );
    const n = openNote(
      msg,
      keys.map((k) => parseVerifierKey(k.verifierKey)),
    );
    expect(n.verified.map((v) => v.name)).toEqual(keys.map((_, i) => `k${i}.example`));
  });

  it('rejects a note larger than the size limit without scanning it', () => {
    const huge = 'a'.repeat(MAX_NOTE_BYTES) + '\n\n' + PETER_SIG;
    expect(codeOf(() => openNote(huge, [peter()]))).toBe('invalid_signature');
    expect(codeOf(() => openNote(new Uint8Array(MAX_NOTE_BYTES + 1), [peter()]))).toBe('invalid_signature');
    expect(codeOf(() => openNote(null as unknown as string, [peter()]))).toBe('invalid_signature');
  });

  it("rejects two different trusted keys with the same name and key hash, from Go's TestOpen", () => {
    const real = peter();
    const impostor: NoteVerifier = { ...real, publicKey: new Uint8Array(32), verify: () => true };
    expect(codeOf(() => openNote(GO_TEXT + '\n' + PETER_SIG, [real, impostor]))).toBe('invalid_key');
    // An ambiguity that no signature refers to does not matter, as in Go.
    expect(openNote(GO_TEXT + '\n' + ENOCH_SIG, [enoch(), real, impostor]).verified).toHaveLength(1);
    // The same key listed twice is no ambiguity at all.
    expect(openNote(GO_TEXT + '\n' + PETER_SIG, [real, peter(), real]).verified).toHaveLength(1);
  });

  it('rejects a signature with a non-canonical S (S + L) that would otherwise be a valid equation', () => {
    const v = peter();
    const raw = Buffer.from(PETER_SIG.slice('\u2014 PeterNeumann '.length, -1), 'base64');
    const sig = raw.subarray(4);
    expect(isCanonicalEd25519Signature(sig)).toBe(true);
    const s = BigInt(`0x${Buffer.from(sig.subarray(32)).reverse().toString('hex')}`);
    const sPlusL = Buffer.from((s + ED25519_L).toString(16).padStart(64, '0'), 'hex').reverse();
    const malleated = Buffer.concat([sig.subarray(0, 32), sPlusL]);
    expect(isCanonicalEd25519Signature(malleated)).toBe(false);
    expect(v.verify(Buffer.from(GO_TEXT), malleated)).toBe(false);
    const line = `\u2014 PeterNeumann ${Buffer.concat([raw.subarray(0, 4), malleated]).toString('base64')}\n`;
    expect(codeOf(() => openNote(GO_TEXT + '\n' + line, [v]))).toBe('invalid_signature');
  });

  it('rejects a signature of the wrong length from a trusted key', () => {
    const raw = Buffer.from(PETER_SIG.slice('\u2014 PeterNeumann '.length, -1), 'base64');
    const line = `\u2014 PeterNeumann ${raw.subarray(0, 67).toString('base64')}\n`;
    expect(codeOf(() => openNote(GO_TEXT + '\n' + line, [peter()]))).toBe('invalid_signature');
  });

  it('only ever throws WitnessError on randomly mutated notes', () => {
    // Deterministic xorshift so a failure reproduces.
    let x = 0x2545f491;
    const rnd = (n: number): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const base = GO_TEXT + '\n' + PETER_SIG + ENOCH_SIG;
    const alphabet = ['\n', ' ', '\u2014', '+', '=', 'A', '/', '\x00', '\ud800', '\u00e9', '\n\n'];
    const verifiers = [peter(), enoch()];
    for (let i = 0; i < 3000; i++) {
      let m = base;
      for (let k = 0; k <= rnd(3); k++) {
        const at = rnd(m.length + 1);
        const op = rnd(3);
        const ch = alphabet[rnd(alphabet.length)] ?? '';
        if (op === 0) m = m.slice(0, at) + ch + m.slice(at);
        else if (op === 1) m = m.slice(0, at) + m.slice(at + 1 + rnd(4));
        else m = m.slice(0, at) + ch + m.slice(at + 1);
      }
      const code = codeOf(() => openNote(m, verifiers));
      expect(code, JSON.stringify(m)).not.toBe('foreign error');
    }
  });
});
