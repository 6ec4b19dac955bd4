import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { buildV2Bundle, refreshManifest, sampleLedger, type Built } from './verify-v2-fixture.js';
import { expectPassed, expectRefused, threeVerdicts, type Verdicts } from './verify-three.js';

/**
 * A zip entry has two headers, the central record every verifier reads and the local header before
 * its data, which a streaming reader (and Info-ZIP's unzip, for what it extracts) reads instead;
 * and both may carry extra fields that rename the entry for some readers (Info-ZIP's Unicode path,
 * 0x7075). docs/FORMAT.md 7.1: the local header must say what the central record says, and an extra
 * field may hold only the blocks a bundle's writers (yazl, Info-ZIP's `zip`) write. The archives are
 * written byte by byte, as the review's reproductions in issue 14 did, and each forgery is shown to
 * matter: `unzip` extracts the other bytes.
 */

const dir = tempDir('witness-zip-headers-');
let a: Built;
let n = 0;

interface Local {
  version: number;
  flags: number;
  method: number;
  crc: number;
  csize: number;
  usize: number;
}
interface Item {
  name: string;
  data: Buffer;
  /** Fields of the local header that differ from the central record's. */
  local?: Partial<Local>;
  localExtra?: Buffer;
  centralExtra?: Buffer;
  /** Both headers' flags (default 0x800, UTF-8 names). */
  flags?: number;
}

function filesOf(root: string): Item[] {
  const out: Item[] = [];
  for (const d of fs.readdirSync(root, { withFileTypes: true })) {
    if (d.isDirectory()) for (const f of fs.readdirSync(path.join(root, d.name))) out.push({ name: `${d.name}/${f}`, data: fs.readFileSync(path.join(root, d.name, f)) });
    else out.push({ name: d.name, data: fs.readFileSync(path.join(root, d.name)) });
  }
  return out.sort((x, y) => (x.name < y.name ? -1 : 1));
}

/** Stored entries, each local header as `local` overrides it, then the central directory and end record. */
function archive(items: Item[]): Buffer {
  const parts: Buffer[] = [];
  const records: Buffer[] = [];
  let offset = 0;
  for (const e of items) {
    const name = Buffer.from(e.name, 'latin1');
    const c: Local = { version: 20, flags: e.flags ?? 0x800, method: 0, crc: zlib.crc32(e.data), csize: e.data.length, usize: e.data.length };
    const l: Local = { ...c, ...e.local };
    const lx = e.localExtra ?? Buffer.alloc(0);
    const cx = e.centralExtra ?? Buffer.alloc(0);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(l.version, 4);
    lh.writeUInt16LE(l.flags, 6);
    lh.writeUInt16LE(l.method, 8);
    lh.writeUInt32LE(l.crc >>> 0, 14);
    lh.writeUInt32LE(l.csize >>> 0, 18);
    lh.writeUInt32LE(l.usize >>> 0, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(lx.length, 28);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE((3 << 8) | 20, 4);
    ch.writeUInt16LE(c.version, 6);
    ch.writeUInt16LE(c.flags, 8);
    ch.writeUInt16LE(c.method, 10);
    ch.writeUInt32LE(c.crc >>> 0, 16);
    ch.writeUInt32LE(c.csize, 20);
    ch.writeUInt32LE(c.usize, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt16LE(cx.length, 30);
    ch.writeUInt32LE((0o100644 << 16) >>> 0, 38);
    ch.writeUInt32LE(offset, 42);
    records.push(Buffer.concat([ch, name, cx]));
    const whole = Buffer.concat([lh, name, lx, e.data]);
    parts.push(whole);
    offset += whole.length;
  }
  const cd = Buffer.concat(records);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(records.length, 8);
  end.writeUInt16LE(records.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}

/** An extra-field block. */
function block(id: number, data: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16LE(id, 0);
  h.writeUInt16LE(data.length, 2);
  return Buffer.concat([h, data]);
}

/** Info-ZIP's Unicode path block (0x7075): version 1, the CRC-32 of the record's own name, the name other readers use. */
function unicodePath(raw: string, shown: string): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(1, 0);
  head.writeUInt32LE(zlib.crc32(Buffer.from(raw)), 1);
  return block(0x7075, Buffer.concat([head, Buffer.from(shown)]));
}

function write(bytes: Buffer): string {
  const file = path.join(dir, `z${++n}.zip`);
  fs.writeFileSync(file, bytes);
  return file;
}

async function three(bytes: Buffer): Promise<Verdicts> {
  return threeVerdicts(write(bytes), a.vkey);
}

/** The lines of events.jsonl as Info-ZIP's unzip extracts it from `file` to disk (whatever its exit status). */
function unzipLines(file: string): number {
  const out = path.join(dir, `unzipped${++n}`);
  fs.mkdirSync(out);
  spawnSync('unzip', ['-qo', file, '-d', out], { stdio: 'ignore' });
  const got = path.join(out, 'events.jsonl');
  return fs.existsSync(got) ? fs.readFileSync(got, 'latin1').split('\n').length - 1 : -1;
}

const withLocal = (name: string, local: Partial<Local>, localExtra?: Buffer) => filesOf(a.dir).map((e) => (e.name === name ? { ...e, local, ...(localExtra === undefined ? {} : { localExtra }) } : e));

beforeAll(() => {
  a = buildV2Bundle(path.join(dir, 'a'), sampleLedger(), { scope: { sessions: ['s-refund'] }, bound: { 'README.txt': 'how to verify' } });
});

describe('the local header says what the central record says (docs/FORMAT.md 7.1 step 4)', () => {
  it('pass the honest archive, the one the forgeries below start from', async () => {
    expectPassed(await three(archive(filesOf(a.dir))));
  });

  it('refuse events.jsonl whose local header alone declares its first lines (sizes and CRC-32), which unzip extracts in place of the signed file', async () => {
    const events = fs.readFileSync(path.join(a.dir, 'events.jsonl'));
    const total = events.toString('latin1').split('\n').length - 1;
    const k = events.indexOf('\n', events.indexOf('\n') + 1) + 1;
    const forged = archive(withLocal('events.jsonl', { crc: zlib.crc32(events.subarray(0, k)), csize: k, usize: k }));
    // What the forgery does to another reader: unzip takes the local header's word, and 2 lines come out of a longer file.
    expect(total).toBeGreaterThan(2);
    expect(unzipLines(write(forged))).toBe(2);
    expectRefused(await three(forged), /events\.jsonl.*local header.*(CRC-32|size)/);
    // Each field on its own.
    expectRefused(await three(archive(withLocal('events.jsonl', { crc: zlib.crc32(events) ^ 1 }))), /events\.jsonl.*local header.*CRC-32/);
    expectRefused(await three(archive(withLocal('events.jsonl', { usize: events.length - 1 }))), /events\.jsonl.*local header.*size/);
  });

  it('refuse a local header alone declaring deflate, another version needed, or other flag bits', async () => {
    const method8 = archive(withLocal('events.jsonl', { method: 8 }));
    // unzip inflates the stored JSON: what it extracts, if anything, is not the signed file.
    expect(unzipLines(write(method8))).not.toBe(fs.readFileSync(path.join(a.dir, 'events.jsonl'), 'latin1').split('\n').length - 1);
    expectRefused(await three(method8), /events\.jsonl.*local header.*method/);
    expectRefused(await three(archive(withLocal('events.jsonl', { version: 63 }))), /events\.jsonl.*local header.*version/);
    // Bit 11 (UTF-8 names) dropped, and bit 3 (a data descriptor follows) set with no descriptor.
    expectRefused(await three(archive(withLocal('events.jsonl', { flags: 0 }))), /events\.jsonl.*local header.*flags/);
    expectRefused(await three(archive(withLocal('events.jsonl', { flags: 0x808 }))), /events\.jsonl.*local header.*flags/);
  });

  it('refuse a local ZIP64 block whose sizes are not the central record’s', async () => {
    const events = fs.readFileSync(path.join(a.dir, 'events.jsonl'));
    const sizes = (u: number, c: number) => {
      const b = Buffer.alloc(16);
      b.writeBigUInt64LE(BigInt(u), 0);
      b.writeBigUInt64LE(BigInt(c), 8);
      return block(0x0001, b);
    };
    // As zip -fz writes it: all-ones sizes and the real ones in the block (passes).
    expectPassed(await three(archive(withLocal('events.jsonl', { version: 45, csize: 0xffffffff, usize: 0xffffffff }, sizes(events.length, events.length)))));
    expectRefused(await three(archive(withLocal('events.jsonl', { version: 45, csize: 0xffffffff, usize: 0xffffffff }, sizes(100, 100)))), /events\.jsonl.*local header.*size/);
    // All-ones sizes with no block to read them from.
    expectRefused(await three(archive(withLocal('events.jsonl', { version: 45, csize: 0xffffffff, usize: 0xffffffff }))), /events\.jsonl.*local header.*ZIP64/);
  });

  it('pass what Info-ZIP zip writes to a pipe: data descriptors, a local CRC-32 and compressed size of zero and the real uncompressed size', async () => {
    // (zip -fz to a pipe puts 0xffffffff in the end record with no ZIP64 end record: refused by 7.1 step 2, as before.)
    const file = path.join(dir, 'pipe.zip');
    execFileSync('sh', ['-c', `zip -qr - . | cat > '${file}'`], { cwd: a.dir });
    const bytes = fs.readFileSync(file);
    // A local header with bit 3 set: the pipe could not be rewound to fill in the sizes.
    expect(bytes.readUInt16LE(6) & 0x08).toBe(0x08);
    expect(bytes.readUInt32LE(18)).toBe(0);
    expect(bytes.readUInt32LE(22)).toBeGreaterThan(0);
    expectPassed(await threeVerdicts(file, a.vkey));
  });
});

describe('extra fields: only the blocks a bundle’s writers write (docs/FORMAT.md 7.1)', () => {
  it('refuse the review’s F2: Unicode path blocks (0x7075) swapping events.jsonl and report.html, report.html rewritten as fake event lines, which unzip extracts as events.jsonl', async () => {
    const c = buildV2Bundle(path.join(dir, 'c'), sampleLedger(), { scope: { sessions: ['s-refund'] }, bound: { 'README.txt': 'how to verify' } });
    const events = fs.readFileSync(path.join(c.dir, 'events.jsonl'));
    const fake = events.subarray(0, events.indexOf('\n') + 1);
    fs.writeFileSync(path.join(c.dir, 'report.html'), fake);
    refreshManifest(c.dir);
    const swap: Record<string, Buffer> = { 'events.jsonl': unicodePath('events.jsonl', 'report.html'), 'report.html': unicodePath('report.html', 'events.jsonl') };
    // Flag bit 11 clear, as in the review: with it set, unzip takes the name as UTF-8 already and ignores the block.
    const forged = archive(filesOf(c.dir).map((e) => (swap[e.name] === undefined ? e : { ...e, flags: 0, localExtra: swap[e.name], centralExtra: swap[e.name] })));
    const file = write(forged);
    expect(unzipLines(file)).toBe(1);
    expectRefused(await threeVerdicts(file, c.vkey), /events\.jsonl.*extra field 0x7075/);
  });

  it('refuse a Unicode path (0x7075) or Unicode comment (0x6375) block in the central record alone, or in the local header alone, and an unknown block', async () => {
    const central = (name: string, x: Buffer) => filesOf(a.dir).map((e) => (e.name === name ? { ...e, centralExtra: x } : e));
    const local = (name: string, x: Buffer) => filesOf(a.dir).map((e) => (e.name === name ? { ...e, localExtra: x } : e));
    expectRefused(await three(archive(central('events.jsonl', unicodePath('events.jsonl', 'events.jsonl')))), /events\.jsonl.*extra field 0x7075/);
    expectRefused(await three(archive(local('events.jsonl', unicodePath('events.jsonl', 'report.html')))), /events\.jsonl.*extra field 0x7075/);
    expectRefused(await three(archive(central('README.txt', block(0x6375, Buffer.from('\u0001abcdcomment'))))), /README\.txt.*extra field 0x6375/);
    expectRefused(await three(archive(local('proofs.jsonl', block(0xcafe, Buffer.alloc(4))))), /proofs\.jsonl.*extra field 0xcafe/);
  });

  it('pass the blocks zip -r writes by default (extended timestamp 0x5455, Unix UID/GID 0x7875) in both headers', async () => {
    const file = path.join(dir, 'r.zip');
    execFileSync('zip', ['-qr', file, '.'], { cwd: a.dir });
    const bytes = fs.readFileSync(file);
    for (const id of ['5554', '7578']) expect(bytes.includes(Buffer.from(id, 'hex')), id).toBe(true);
    expectPassed(await threeVerdicts(file, a.vkey));
  });
});
