import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { tempDir } from '../helpers/tmp.js';
import { buildV2Bundle, refreshManifest, sampleLedger, type Built } from './verify-v2-fixture.js';
import { expectPassed, expectRefused, threeVerdicts, type Verdicts } from './verify-three.js';

/**
 * One zip file must be one bundle, read the same way by all three verifiers (`witness verify`,
 * the standalone verify.mjs and the independent Python verifier) and by any other zip reader
 * (docs/FORMAT.md 7.1). The archives here are written byte by byte: two bundles in one file whose
 * end record reaches both central directories, a central record beyond the declared count, a
 * declared central-directory size smaller or larger than its records, a NUL in a name; and the
 * honest variants (ZIP64 records on small files from `zip -fz` and yazl, 64-bit data descriptors)
 * that all three must read alike.
 */

const dir = tempDir('witness-zip-layout-');
let a: Built;
let b: Built;
let n = 0;

/** A bundle's files, `/`-separated names in a stable order. */
function filesOf(root: string): Array<{ name: string; data: Buffer }> {
  const out: Array<{ name: string; data: Buffer }> = [];
  for (const d of fs.readdirSync(root, { withFileTypes: true })) {
    if (d.isDirectory()) for (const f of fs.readdirSync(path.join(root, d.name))) out.push({ name: `${d.name}/${f}`, data: fs.readFileSync(path.join(root, d.name, f)) });
    else out.push({ name: d.name, data: fs.readFileSync(path.join(root, d.name)) });
  }
  return out.sort((x, y) => (x.name < y.name ? -1 : 1));
}

interface Item {
  name: string;
  data: Buffer;
  /** Flag bit 3: sizes after the data, in a descriptor with 32- or 64-bit sizes (and `pad` zero bytes after it). */
  descriptor?: { bits: 32 | 64; pad?: number };
  /** The central record's extra field. */
  extra?: Buffer;
}

/** Stored entries laid out from `base`: the local part (headers, data, descriptors) and one central record per entry. */
function layOut(items: Item[], base = 0): { locals: Buffer; records: Buffer[] } {
  const parts: Buffer[] = [];
  const records: Buffer[] = [];
  let offset = base;
  for (const e of items) {
    const name = Buffer.from(e.name, 'latin1');
    const crc = zlib.crc32(e.data);
    const flags = 0x800 | (e.descriptor === undefined ? 0 : 0x08);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    if (e.descriptor === undefined) {
      local.writeUInt32LE(crc, 14);
      local.writeUInt32LE(e.data.length, 18);
      local.writeUInt32LE(e.data.length, 22);
    }
    local.writeUInt16LE(name.length, 26);
    const tail: Buffer[] = [];
    if (e.descriptor !== undefined) {
      const d = Buffer.alloc(e.descriptor.bits === 64 ? 24 : 16);
      d.writeUInt32LE(0x08074b50, 0);
      d.writeUInt32LE(crc, 4);
      if (e.descriptor.bits === 64) {
        d.writeBigUInt64LE(BigInt(e.data.length), 8);
        d.writeBigUInt64LE(BigInt(e.data.length), 16);
      } else {
        d.writeUInt32LE(e.data.length, 8);
        d.writeUInt32LE(e.data.length, 12);
      }
      tail.push(d, Buffer.alloc(e.descriptor.pad ?? 0));
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE((3 << 8) | 20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(flags, 8);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(e.data.length, 20);
    c.writeUInt32LE(e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(e.extra?.length ?? 0, 30);
    c.writeUInt32LE(((e.name.endsWith('/') ? 0o40755 : 0o100644) << 16) >>> 0, 38);
    c.writeUInt32LE(offset, 42);
    records.push(Buffer.concat([c, name, e.extra ?? Buffer.alloc(0)]));
    const whole = Buffer.concat([local, name, e.data, ...tail]);
    parts.push(whole);
    offset += whole.length;
  }
  return { locals: Buffer.concat(parts), records };
}

function endRecord(count: number, size: number, offset: number): Buffer {
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(count, 8);
  end.writeUInt16LE(count, 10);
  end.writeUInt32LE(size, 12);
  end.writeUInt32LE(offset, 16);
  return end;
}

/** An honest archive of `items`: entries, central directory, end record. */
function honest(items: Item[]): Buffer {
  const { locals, records } = layOut(items);
  const cd = Buffer.concat(records);
  return Buffer.concat([locals, cd, endRecord(records.length, cd.length, locals.length)]);
}

/** The three verifiers on one archive, pinned to the bundle's key. */
async function three(bytes: Buffer, key: string): Promise<Verdicts> {
  const file = path.join(dir, `z${++n}.zip`);
  fs.writeFileSync(file, bytes);
  return threeVerdicts(file, key);
}

beforeAll(() => {
  a = buildV2Bundle(path.join(dir, 'a'), sampleLedger(), { scope: { sessions: ['s-refund'] }, bound: { 'README.txt': 'how to verify bundle A' } });
  b = buildV2Bundle(path.join(dir, 'b'), sampleLedger(), { scope: { sessions: ['s-other'] }, bound: { 'README.txt': 'how to verify bundle B' } });
});

describe('one zip, one bundle: the three verifiers read an archive the same way (docs/FORMAT.md 7.1)', () => {
  it('pass an honest archive of stored entries, with and without 32-bit data descriptors', async () => {
    expectPassed(await three(honest(filesOf(a.dir)), a.vkey));
    expectPassed(await three(honest(filesOf(a.dir).map((e) => ({ ...e, descriptor: { bits: 32 } }))), a.vkey));
  });

  it('refuse two bundles in one file: A, its central directory, B, its central directory, and an end record pointing at A whose declared size reaches the end record', async () => {
    const first = layOut(filesOf(a.dir));
    const cdA = Buffer.concat(first.records);
    const second = layOut(filesOf(b.dir), first.locals.length + cdA.length);
    const cdB = Buffer.concat(second.records);
    const both = Buffer.concat([first.locals, cdA, second.locals, cdB]);
    const bytes = Buffer.concat([both, endRecord(first.records.length, both.length - first.locals.length, first.locals.length)]);
    // Each half is a bundle that verifies on its own: the refusal is the layout's.
    expectPassed(await three(Buffer.concat([first.locals, cdA, endRecord(first.records.length, cdA.length, first.locals.length)]), a.vkey));
    expectRefused(await three(bytes, a.vkey), /central[- ]director/);
    // The same two halves with the end record pointing at B: also one file, two bundles.
    const atB = Buffer.concat([both, endRecord(second.records.length, cdB.length, first.locals.length + cdA.length + second.locals.length)]);
    expectRefused(await three(atB, b.vkey), /before its first entry|between its entries|central director/);
  });

  it('refuse a central record beyond the declared count, pointing at a local header hidden inside report.html', async () => {
    const readme = { name: 'README.txt', data: Buffer.from('a README another reader would see') };
    const hidden = layOut([readme]).locals;
    const c = buildV2Bundle(path.join(dir, 'c'), sampleLedger(), { scope: { sessions: ['s-refund'] }, bound: { 'README.txt': 'how to verify bundle A' } });
    fs.writeFileSync(path.join(c.dir, 'report.html'), Buffer.concat([Buffer.from('<html><!-- '), hidden, Buffer.from(' --></html>')]));
    refreshManifest(c.dir);
    const { locals, records } = layOut(filesOf(c.dir));
    expectPassed(await three(Buffer.concat([locals, ...records, endRecord(records.length, Buffer.concat(records).length, locals.length)]), c.vkey));
    // Where the hidden header lies: inside report.html's data.
    const at = locals.indexOf(hidden);
    expect(at).toBeGreaterThan(0);
    const cd = Buffer.concat([...records, layOut([readme], at).records[0]!]);
    const bytes = Buffer.concat([locals, cd, endRecord(records.length, cd.length, locals.length)]);
    expectRefused(await three(bytes, c.vkey), /central[- ]director/);
  });

  it('refuse a declared central-directory size smaller or larger than its records', async () => {
    const { locals, records } = layOut(filesOf(a.dir));
    const cd = Buffer.concat(records);
    for (const delta of [-1, -records.at(-1)!.length, 1, 46]) {
      const bytes = Buffer.concat([locals, cd, endRecord(records.length, cd.length + delta, locals.length)]);
      expectRefused(await three(bytes, a.vkey), /central[- ]director/);
    }
    // The count, not the size, off by one: fewer records than the directory holds, or more.
    for (const count of [records.length - 1, records.length + 1]) {
      expectRefused(await three(Buffer.concat([locals, cd, endRecord(count, cd.length, locals.length)]), a.vkey), /central[- ]director/);
    }
  });

  it('refuse an entry name holding a NUL byte, all three alike', async () => {
    const items = filesOf(a.dir).map((e) => (e.name === 'README.txt' ? { ...e, name: 'README.txt\u0000.sh' } : e));
    expectRefused(await three(honest(items), a.vkey), /not printable ASCII/);
  });

  it('refuse a central record whose extra field holds two ZIP64 blocks (readers take different ones) or a block running past it', async () => {
    const zip64 = (v: number) => {
      const x = Buffer.alloc(12);
      x.writeUInt16LE(0x0001, 0);
      x.writeUInt16LE(8, 2);
      x.writeBigUInt64LE(BigInt(v), 4);
      return x;
    };
    const twice = filesOf(a.dir).map((e) => (e.name === 'README.txt' ? { ...e, extra: Buffer.concat([zip64(1), zip64(2)]) } : e));
    expectRefused(await three(honest(twice), a.vkey), /two ZIP64 extra fields/);
    const long = Buffer.from('5554ff00', 'hex');
    const overrun = filesOf(a.dir).map((e) => (e.name === 'README.txt' ? { ...e, extra: Buffer.concat([long, Buffer.alloc(8)]) } : e));
    expectRefused(await three(honest(overrun), a.vkey), /extra field longer than its record/);
  });

  it('read a data descriptor as 64-bit sizes first, then 32-bit, all three alike', async () => {
    // A 64-bit descriptor on every entry (what yazl writes for an entry past 4 GiB).
    expectPassed(await three(honest(filesOf(a.dir).map((e) => ({ ...e, descriptor: { bits: 64 } }))), a.vkey));
    // An empty directory entry whose 32-bit descriptor is followed by 8 zero bytes reads either way:
    // as 64-bit sizes (tried first) the zeros are its own and the next entry follows.
    const items: Item[] = [{ name: 'artifacts/', data: Buffer.alloc(0), descriptor: { bits: 32, pad: 8 } }, ...filesOf(a.dir)];
    expectPassed(await three(honest(items), a.vkey));
    // With 4 zero bytes it reads neither way: bytes between entries.
    const gap: Item[] = [{ name: 'artifacts/', data: Buffer.alloc(0), descriptor: { bits: 32, pad: 4 } }, ...filesOf(a.dir)];
    expectRefused(await three(honest(gap), a.vkey), /between its entries/);
  });

  it('pass a bundle re-zipped with ZIP64 records on small files (`zip -fz`, and yazl forcing ZIP64)', async () => {
    const fz = path.join(dir, 'fz.zip');
    execFileSync('zip', ['-qr', '-fz', fz, '.'], { cwd: a.dir });
    const zip64End = Buffer.from('504b0606', 'hex');
    expect(fs.readFileSync(fz).includes(zip64End)).toBe(true);
    expectPassed(await three(fs.readFileSync(fz), a.vkey));
    const z = new yazl.ZipFile();
    for (const e of filesOf(a.dir)) {
      // Streamed entries carry data descriptors, 64-bit ones under ZIP64.
      if (e.name === 'events.jsonl') z.addReadStream(fs.createReadStream(path.join(a.dir, e.name)), e.name, { forceZip64Format: true, compress: false });
      else z.addBuffer(e.data, e.name, { forceZip64Format: true, compress: e.name.startsWith('artifacts/') });
    }
    z.end({ forceZip64Format: true, comment: '' });
    const chunks: Buffer[] = [];
    for await (const c of z.outputStream as AsyncIterable<Buffer>) chunks.push(c);
    expect(Buffer.concat(chunks).includes(zip64End)).toBe(true);
    expectPassed(await three(Buffer.concat(chunks), a.vkey));
  });

  it('refuse a ZIP64 end record that disagrees with the end record, or is not where its locator says', async () => {
    const fz = path.join(dir, 'fz2.zip');
    execFileSync('zip', ['-qr', '-fz', fz, '.'], { cwd: a.dir });
    const bytes = fs.readFileSync(fz);
    const end = bytes.length - 22;
    // Info-ZIP writes the real count in the end record: one more there is another archive's count.
    const count = Buffer.from(bytes);
    count.writeUInt16LE(count.readUInt16LE(end + 10) + 1, end + 10);
    count.writeUInt16LE(count.readUInt16LE(end + 8) + 1, end + 8);
    expectRefused(await three(count, a.vkey), /ZIP64/);
    const moved = Buffer.from(bytes);
    moved.writeBigUInt64LE(moved.readBigUInt64LE(end - 20 + 8) - 1n, end - 20 + 8);
    expectRefused(await three(moved, a.vkey), /ZIP64/);
  });
});
