import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { WitnessError } from '../core/index.js';

/**
 * Evidence bundles as zip archives, written with yazl and read with yauzl rather than by hand: a
 * zip parser is attack surface in the very tool an auditor runs on bundles received from others,
 * and these two are small, maintained and read hostile archives conservatively (yauzl refuses
 * absolute and `..` names, reads entries lazily, and checks every entry's size as it inflates).
 * What they do not do, and this file does: yauzl checks no CRC-32, knows nothing of which names a
 * bundle has or how large each may be, and lets a name appear twice.
 *
 * ZIP64 is allowed both ways: yazl switches to it by itself for an entry or archive past 4 GiB (a
 * few long videos reach that), yauzl reads it, and so does Info-ZIP's unzip 6.0.
 */

const LOCAL = 0x04034b50;
const END = 0x06054b50;

/**
 * A regular file that is meant as a zip archive: its first bytes are a local header or the end
 * record of an empty one, it ends with an end record, or its name ends in `.zip`. Data prepended
 * to an archive does not make it something else: it is read as a zip and refused (extractZip).
 */
export function looksLikeZip(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return false;
    if (file.toLowerCase().endsWith('.zip')) return true;
    const b = Buffer.alloc(4);
    if (fs.readSync(fd, b, 0, 4, 0) < 4) return false;
    const sig = b.readUInt32LE(0);
    if (sig === LOCAL || sig === END) return true;
    return st.size >= 22 && fs.readSync(fd, b, 0, 4, st.size - 22) === 4 && b.readUInt32LE(0) === END;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * A zip being written to a hidden file beside `outFile`, entries stored uncompressed (evidence is
 * mostly PNG and MP4, compressed already) and streamed through: yazl computes each entry's CRC-32
 * and size as the bytes pass and writes them after the data, so nothing is read twice or held.
 */
export interface ZipWriter {
  addBuffer(name: string, data: Buffer): void;
  addDirectory(name: string): void;
  /** Resolves once `source` has been read into the archive; rejects (and the zip with it) if `source` fails. */
  addStream(name: string, source: Readable): Promise<void>;
  /** Finishes the archive, flushes it to disk and renames it to `outFile`: the zip appears whole or not at all. */
  finish(): Promise<void>;
  /** Stops writing and removes the partial file; safe to call after finish, when it does nothing. */
  abort(): Promise<void>;
}

/** Starts a zip that will become `outFile` (refused with `invalid_argument` if it already exists). */
export function createZip(outFile: string, now: Date = new Date()): ZipWriter {
  if (fs.existsSync(outFile)) throw new WitnessError('invalid_argument', `The output ${outFile} already exists; choose a new path with -o.`);
  const partial = path.join(path.dirname(path.resolve(outFile)), `.${path.basename(outFile)}.${crypto.randomBytes(6).toString('hex')}.partial`);
  const zip = new yazl.ZipFile();
  // Typed as the old NodeJS.ReadableStream; it is a stream.PassThrough.
  const output = zip.outputStream as Readable;
  let failure: Error | undefined;
  const fail = (e: Error) => {
    failure ??= e;
    output.destroy(e);
  };
  // yazl reports a source of the wrong size, or its own faults, on the ZipFile, not on the stream.
  zip.on('error', fail);
  // flush: the file is fsynced before it closes, so the rename publishes bytes that are on disk.
  const written = pipeline(output, fs.createWriteStream(partial, { flags: 'wx', mode: 0o644, flush: true }));
  // Observed here so an early failure is not an unhandled rejection before finish() awaits it.
  written.catch((e: Error) => (failure ??= e));
  let state: 'open' | 'done' | 'aborted' = 'open';
  const file = { mtime: now, mode: 0o100644, compress: false } as const;
  const abort = async () => {
    if (state !== 'open') return;
    state = 'aborted';
    fail(new Error('the zip was abandoned'));
    await written.catch(() => undefined);
    fs.rmSync(partial, { force: true });
  };
  return {
    addBuffer: (name, data) => zip.addBuffer(data, name, file),
    addDirectory: (name) => zip.addEmptyDirectory(name, { mtime: now, mode: 0o40755 }),
    addStream: (name, source) =>
      new Promise<void>((resolve, reject) => {
        if (failure !== undefined) return reject(failure);
        // yazl pipes the source, and a pipe does not pass on the source's error: it is passed here.
        source.once('error', (e) => {
          fail(e);
          reject(e);
        });
        source.once('end', () => resolve());
        written.catch(reject);
        zip.addReadStreamLazy(name, file, (cb) => cb(null, source));
      }),
    async finish() {
      if (state !== 'open') throw new WitnessError('conflict', 'The zip was already finished or abandoned.');
      zip.end();
      try {
        await written;
        if (failure !== undefined) throw failure;
        fs.renameSync(partial, outFile);
        state = 'done';
      } catch (e) {
        await abort();
        throw e;
      }
    },
    abort,
  };
}

/** How large each name a bundle holds may be; any other name is refused. */
export type EntryCap = (name: string) => number | undefined;

/** Bytes free for this process in the file system holding `dir` (its whole size when that cannot be read: no limit is better than a wrong one). */
function freeBytes(dir: string): number {
  try {
    const st = fs.statfsSync(dir);
    return Number(st.bavail) * Number(st.bsize);
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
}

/**
 * Limits on what a zip may claim to unpack to, beyond each name's cap and the free space: deflate
 * reaches about 1,032 to 1 on zeros, while JSON lines of events deflate about 5-20 to 1 and PNG or
 * MP4 not at all (the exporter stores every entry uncompressed), so an entry past 1 MiB that
 * claims more than 200 times its compressed size is a compression bomb, not evidence.
 */
export const ZIP_LIMITS = {
  maxRatio: 200,
  ratioFloorBytes: 1024 * 1024,
  /** All entries together, whatever the free space: far above any export (its videos included). */
  totalBytes: 64 * 1024 * 1024 * 1024,
  /** Entries in one archive: a bundle of 1,000 screenshots has about 1,020. */
  entries: 1_000_000,
} as const;

/** The directory entries a bundle zip may list (written by `zip -r`, for instance). */
const DIRECTORIES = new Set(['artifacts/', 'populations/']);
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** Refusal of the archive, with the sentence a verification failure gives. */
class Refused extends Error {}

/** Where an entry lies in the archive, from its central record. */
interface LaidOut {
  name: string;
  offset: number;
  version: number;
  flags: number;
  method: number;
  crc: number;
  csize: number;
  usize: number;
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = len === 0 ? 0 : fs.readSync(fd, b, 0, len, pos);
  if (n !== len) throw new Refused('the zip is cut off');
  return b;
}

const CENTRAL = 0x02014b50;
const ZIP64_END = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;

/** The archive as its end records and central directory declare it, read by this file and not by yauzl. */
interface Structure {
  cdOffset: number;
  /** Each central record's name, in order, as its raw bytes spell it (printable ASCII). */
  names: string[];
}

/** The end record of a file that has one somewhere in its last 64 KiB but not as its last 22 bytes: a comment, or data after it. */
function misplacedEnd(fd: number, size: number, base: string): string {
  const tail = Math.min(size, 22 + 0xffff);
  const buf = readAt(fd, size - tail, tail);
  for (let i = tail - 22; i >= 0; i--) {
    if (buf.readUInt32LE(i) !== END) continue;
    return i + 22 + buf.readUInt16LE(i + 20) === tail
      ? `${base} carries an archive comment, which an evidence bundle never has (it could hide a second bundle)`
      : `${base} has data after its end record, which an evidence bundle never has`;
  }
  return `${base} is not a zip archive (it does not end with an end-of-central-directory record)`;
}

/**
 * The extra-field blocks a bundle's writers write: ZIP64 (0x0001: yazl past 4 GiB, `zip -fz`), and
 * what Info-ZIP's `zip -r` adds on Unix, the extended timestamp (0x5455) and the Unix UID/GID
 * (0x7875). Any other block is refused: Info-ZIP's Unicode path (0x7075) gives an entry another
 * name in the readers that honour it (unzip extracts it under that name, yauzl too), and a block
 * nobody here reads may mean something to a reader that does (docs/FORMAT.md 7.1).
 */
const EXTRA_IDS = new Set([0x0001, 0x5455, 0x7875]);

/**
 * The ZIP64 block of a header's extra field (central or local), or why the field is refused: its
 * blocks must not run past it, each is one a bundle's writers write, and there is one ZIP64 block at
 * most, since readers differ on which of two they take.
 */
function extraOf(extra: Buffer, shown: string): { zip64: Buffer | undefined } | string {
  let zip64: Buffer | undefined;
  for (let i = 0; i + 4 <= extra.length; i += 4 + extra.readUInt16LE(i + 2)) {
    const id = extra.readUInt16LE(i);
    const len = extra.readUInt16LE(i + 2);
    if (i + 4 + len > extra.length) return 'holds an extra field longer than its record';
    if (!EXTRA_IDS.has(id)) {
      return `holds ${shown} with an extra field 0x${id.toString(16).padStart(4, '0')}, which no writer of a bundle adds (only ZIP64 0x0001, timestamp 0x5455 and Unix owner 0x7875 are read) and which can show other readers another name or other bytes`;
    }
    if (id === 0x0001) {
      if (zip64 !== undefined) return 'holds an entry with two ZIP64 extra fields, which readers take differently';
      zip64 = extra.subarray(i + 4, i + 4 + len);
    }
  }
  return { zip64 };
}

/**
 * The archive's structure (docs/FORMAT.md 7.1), read before any entry is: the last 22 bytes are the
 * end record, without comment, on one disk; a ZIP64 locator before it points at the 56-byte ZIP64
 * end record right before the locator, and the end record's fields are each that record's value or
 * its all-ones placeholder; the central directory ends exactly where those records begin, and holds
 * exactly `count` records that fill exactly its declared size. yauzl reads `count` records from the
 * offset and ignores the size, so without this one file could show one bundle to it and another
 * bundle, in the bytes after, to the next reader.
 */
function structureOf(fd: number, size: number, base: string): Structure | string {
  if (size < 22) return `${base} is not a zip archive (it is ${size} bytes, shorter than an end record)`;
  const end = readAt(fd, size - 22, 22);
  if (end.readUInt32LE(0) !== END) return misplacedEnd(fd, size, base);
  if (end.readUInt16LE(20) !== 0) return `${base} is not a zip archive (its end record declares a comment the file does not hold)`;
  const several = `${base} spans several disks, which an evidence bundle never does`;
  if (end.readUInt16LE(4) !== 0 || end.readUInt16LE(6) !== 0 || end.readUInt16LE(8) !== end.readUInt16LE(10)) return several;
  let count = end.readUInt16LE(10);
  let cdSize = end.readUInt32LE(12);
  let cdOffset = end.readUInt32LE(16);
  let cdEnd = size - 22;
  if (size >= 42 && readAt(fd, size - 42, 4).readUInt32LE(0) === ZIP64_LOCATOR) {
    const locator = readAt(fd, size - 42, 20);
    if (locator.readUInt32LE(4) !== 0 || locator.readUInt32LE(16) !== 1) return several;
    const at = size - 42 - 56;
    if (at < 0 || locator.readBigUInt64LE(8) !== BigInt(at)) {
      return `${base} has a ZIP64 locator that does not point at a ZIP64 end record right before it, which an evidence bundle never has`;
    }
    const record = readAt(fd, at, 56);
    if (record.readUInt32LE(0) !== ZIP64_END || record.readBigUInt64LE(4) !== 44n) {
      return `${base} has no 56-byte ZIP64 end record where its locator points, which an evidence bundle never has`;
    }
    if (record.readUInt32LE(16) !== 0 || record.readUInt32LE(20) !== 0 || record.readBigUInt64LE(24) !== record.readBigUInt64LE(32)) return several;
    const big = [record.readBigUInt64LE(32), record.readBigUInt64LE(40), record.readBigUInt64LE(48)];
    if (big.some((v) => v > BigInt(size))) return `${base} has a ZIP64 end record declaring more than the file holds`;
    const [count64, size64, offset64] = big.map(Number) as [number, number, number];
    if ((count !== 0xffff && count !== count64) || (cdSize !== 0xffffffff && cdSize !== size64) || (cdOffset !== 0xffffffff && cdOffset !== offset64)) {
      return `${base} has an end record and a ZIP64 end record that disagree, so two readers would see two archives`;
    }
    [count, cdSize, cdOffset, cdEnd] = [count64, size64, offset64, at];
  }
  if (cdOffset + cdSize !== cdEnd) {
    return `${base} has a central directory (at ${cdOffset}, ${cdSize} bytes) that does not end where its end records begin (at ${cdEnd}), so another reader could find a second archive there`;
  }
  if (count > ZIP_LIMITS.entries) return `${base} declares ${count} entries, more than any evidence bundle holds`;
  const names: string[] = [];
  let p = cdOffset;
  while (names.length < count) {
    if (p + 46 > cdEnd) break;
    const record = readAt(fd, p, 46);
    if (record.readUInt32LE(0) !== CENTRAL) break;
    const nameLen = record.readUInt16LE(28);
    const next = p + 46 + nameLen + record.readUInt16LE(30) + record.readUInt16LE(32);
    if (next > cdEnd) break;
    const raw = readAt(fd, p + 46, nameLen).toString('latin1');
    // Bundle names are ASCII (7.1); a NUL ends a name for some readers (Python's zipfile) and not for others.
    if (!/^[\x20-\x7e]+$/.test(raw)) return `${base} holds an entry whose name is not printable ASCII (${JSON.stringify(raw.slice(0, 80))}), which no evidence bundle has`;
    const extra = extraOf(readAt(fd, p + 46 + nameLen, record.readUInt16LE(30)), JSON.stringify(raw));
    if (typeof extra === 'string') return `${base} ${extra}`;
    names.push(raw);
    p = next;
  }
  if (names.length < count) {
    return `${base} has ${names.length} central-directory record(s) in the ${cdSize} bytes its end record declares, not the ${count} it counts: the central directory is damaged`;
  }
  if (p !== cdEnd) {
    return `${base} has ${cdEnd - p} bytes in its central directory after the ${count} record(s) its end record counts, where a second archive's records could hide`;
  }
  return { cdOffset, names };
}

/**
 * Why the archive's layout is refused, or undefined: the entries (directories included) must fill it
 * from byte 0 to the central directory with nothing before, between or after them, each local header
 * naming its entry as the central one does. The exporter never writes anything else, and those bytes
 * are where a second archive, read by another tool, hides (docs/FORMAT.md 7.1).
 */
function layoutProblem(fd: number, base: string, layout: LaidOut[], cd: number): string | undefined {
  layout.sort((a, b) => a.offset - b.offset);
  let at = 0;
  for (const [i, e] of layout.entries()) {
    if (e.offset !== at)
      return at === 0
        ? `${base} has data before its first entry, which an evidence bundle never has`
        : `${base} has data between its entries (before ${JSON.stringify(e.name)}), which an evidence bundle never has`;
    const lh = readAt(fd, e.offset, 30);
    if (lh.readUInt32LE(0) !== LOCAL) return `${base} holds ${JSON.stringify(e.name)} without its local header`;
    const nameLen = lh.readUInt16LE(26);
    if (!readAt(fd, e.offset + 30, nameLen).equals(Buffer.from(e.name, 'utf8')))
      return `${base} holds ${JSON.stringify(e.name)} under another name in its local header, so two readers would see two bundles`;
    const local = localProblem(lh, readAt(fd, e.offset + 30 + nameLen, lh.readUInt16LE(28)), e);
    if (local !== undefined) return `${base} ${local}`;
    const data = e.offset + 30 + nameLen + lh.readUInt16LE(28);
    const next = i + 1 < layout.length ? layout[i + 1]!.offset : cd;
    at = data + e.csize;
    if (at > next) return `${base} holds ${JSON.stringify(e.name)} overlapping the next entry`;
    if ((e.flags & 0x08) !== 0) {
      const d = descriptorLength(readAt(fd, at, Math.min(24, next - at)), e);
      if (d === undefined) return `${base} holds ${JSON.stringify(e.name)} with a data descriptor that does not match its central record`;
      at += d;
    }
  }
  if (at !== cd) return `${base} has data between its last entry and its central directory, which an evidence bundle never has`;
  return undefined;
}

/**
 * Why a local header (its 30 fixed bytes and its extra field) is refused, or undefined: it must say
 * what the entry's central record says (docs/FORMAT.md 7.1 step 4), since a streaming reader, and
 * Info-ZIP's unzip for what it extracts, believe the local header: the same flags and method; the
 * same version needed, except that one of the two may say 45 (ZIP64) where the other says less, as
 * yazl (local 20, central 45) and `zip -fz` (local 45, a directory's central 10) write; without a
 * data descriptor (flag bit 3) the same CRC-32 and sizes, all-ones sizes being read from a 16-byte
 * ZIP64 block (uncompressed, then compressed) as `zip -fz` writes them; with one, a CRC-32 and
 * compressed size of zero and an uncompressed size of zero (yazl) or the real one (zip to a pipe).
 */
function localProblem(lh: Buffer, extraField: Buffer, e: LaidOut): string | undefined {
  const shown = JSON.stringify(e.name);
  const extra = extraOf(extraField, shown);
  if (typeof extra === 'string') return extra;
  const version = lh.readUInt16LE(4);
  const [low, high] = version < e.version ? [version, e.version] : [e.version, version];
  if (low !== high && high !== 45) {
    return `holds ${shown} whose local header says version ${version} is needed to extract it where its central record says ${e.version}, so two readers would see two bundles`;
  }
  const flags = lh.readUInt16LE(6);
  if (flags !== e.flags) return `holds ${shown} whose local header has flags 0x${flags.toString(16)} where its central record has 0x${e.flags.toString(16)}, so two readers would see two bundles`;
  const method = lh.readUInt16LE(8);
  if (method !== e.method) {
    return `holds ${shown} whose local header declares compression method ${method} where its central record declares ${e.method}, so another reader would extract other bytes`;
  }
  const crc = lh.readUInt32LE(14);
  let csize = lh.readUInt32LE(18);
  let usize = lh.readUInt32LE(22);
  if (extra.zip64 !== undefined || csize === 0xffffffff || usize === 0xffffffff) {
    if (extra.zip64?.length !== 16 || csize !== 0xffffffff || usize !== 0xffffffff) {
      return `holds ${shown} whose local header does not give its ZIP64 sizes as every writer does (both sizes all ones, and both in a 16-byte ZIP64 block), so readers would take different sizes`;
    }
    [usize, csize] = [Number(extra.zip64.readBigUInt64LE(0)), Number(extra.zip64.readBigUInt64LE(8))];
  }
  if ((flags & 0x08) !== 0) {
    if (crc !== 0 || csize !== 0 || (usize !== 0 && usize !== e.usize)) {
      return `holds ${shown} with a data descriptor whose local header declares a CRC-32 or sizes (${csize} compressed, ${usize} uncompressed) other than zero and its true size, so another reader would extract other bytes`;
    }
    return undefined;
  }
  if (crc !== e.crc >>> 0) {
    return `holds ${shown} whose local header declares CRC-32 ${crc.toString(16).padStart(8, '0')} where its central record declares ${(e.crc >>> 0).toString(16).padStart(8, '0')}, so another reader would extract other bytes`;
  }
  if (csize !== e.csize || usize !== e.usize) {
    return `holds ${shown} whose local header declares a size of ${csize} compressed and ${usize} uncompressed bytes where its central record declares ${e.csize} and ${e.usize}, so another reader would extract other bytes`;
  }
  return undefined;
}

/**
 * The length of a data descriptor (with or without its signature) that matches `e`, its sizes read
 * as 64-bit first and 32-bit second, as docs/FORMAT.md 7.1 fixes for every verifier (an empty entry's
 * descriptor followed by zero bytes reads both ways); undefined when neither matches.
 */
function descriptorLength(b: Buffer, e: LaidOut): number | undefined {
  const signed = b.length >= 4 && b.readUInt32LE(0) === 0x08074b50 ? 4 : 0;
  if (b.length >= signed + 4 && b.readUInt32LE(signed) !== e.crc >>> 0) return undefined;
  if (b.length >= signed + 20 && Number(b.readBigUInt64LE(signed + 4)) === e.csize && Number(b.readBigUInt64LE(signed + 12)) === e.usize) return signed + 20;
  if (b.length >= signed + 12 && b.readUInt32LE(signed + 4) === e.csize && b.readUInt32LE(signed + 8) === e.usize) return signed + 12;
  return undefined;
}

/**
 * Extracts a zip bundle into `destDir` (an empty directory) one entry at a time, streamed, so
 * memory stays bounded whatever the sizes. Resolves to why the archive is refused, in words for a
 * verification failure, or undefined when every entry was extracted and matched its CRC-32. With
 * `only`, every entry is still checked but only those it picks are extracted.
 */
export async function extractZip(file: string, destDir: string, capOf: EntryCap, only?: (name: string) => boolean, budget: number = freeBytes(destDir)): Promise<string | undefined> {
  const base = path.basename(file);
  let fd: number;
  try {
    // No link followed and no FIFO waited on: the file must be the regular file named.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    return `${base} cannot be opened (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    return `${base} is not a regular file`;
  }
  // The archive's structure is checked before yauzl reads it and before anything is extracted: a
  // refused archive leaves nothing behind, and yauzl reads only an archive every reader reads alike.
  let structure: Structure | string;
  try {
    structure = structureOf(fd, fs.fstatSync(fd).size, base);
  } catch (e) {
    fs.closeSync(fd);
    if (e instanceof Refused) return `${base} is not a zip archive (${e.message})`;
    throw e;
  }
  if (typeof structure === 'string') {
    fs.closeSync(fd);
    return structure;
  }
  let zip: yauzl.ZipFile;
  try {
    // strictFileNames: a backslash is refused, not turned into a directory separator.
    zip = await yauzl.fromFdPromise(fd, { autoClose: false, strictFileNames: true, validateEntrySizes: true });
  } catch (e) {
    fs.closeSync(fd);
    return `${base} is not a zip archive (${(e as Error).message})`;
  }
  const closed = new Promise<void>((resolve) => zip.once('close', () => resolve()));
  try {
    const layout: LaidOut[] = [];
    const picked: yauzl.Entry[] = [];
    const seen = new Set<string>();
    let unpacked = 0;
    // First every central record, checked without extracting a byte; then the layout; then the entries.
    for await (const entry of zip.eachEntry()) {
      const name = entry.fileName;
      const shown = JSON.stringify(name);
      // yauzl may take a name from an extra field (Info-ZIP's Unicode path): the record's own bytes are the name every reader sees.
      if (name !== structure.names[layout.length])
        return `${base} names an entry ${shown} in an extra field but ${JSON.stringify(structure.names[layout.length])} in its record, so two readers would see two bundles`;
      if (seen.has(name)) return `${base} holds ${shown} more than once, so which one counts is ambiguous`;
      seen.add(name);
      layout.push({
        name,
        offset: entry.relativeOffsetOfLocalHeader,
        version: entry.versionNeededToExtract,
        flags: entry.generalPurposeBitFlag,
        method: entry.compressionMethod,
        crc: entry.crc32,
        csize: entry.compressedSize,
        usize: entry.uncompressedSize,
      });
      // Made on Unix (high byte 3): the high 16 bits of the external attributes are the file mode,
      // and a symbolic link's "content" is its target; extracting it as a file would be harmless,
      // but a bundle never holds one, so the archive is not one Witness wrote.
      if (entry.versionMadeBy >> 8 === 3 && ((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK) {
        return `${base} holds ${shown} as a symbolic link, which a bundle never has`;
      }
      if (DIRECTORIES.has(name)) continue;
      const cap = capOf(name);
      if (cap === undefined) return `${base} holds an entry ${shown}, which no Witness evidence bundle has`;
      if (entry.isEncrypted()) return `${base} holds ${shown} encrypted, which a bundle never is`;
      if (!entry.canDecodeFileData()) return `${base} holds ${shown} compressed with method ${entry.compressionMethod}; only stored and deflated entries are read`;
      if (entry.uncompressedSize > cap) return `${name} is ${entry.uncompressedSize} bytes, more than the ${cap} bytes it may have`;
      if (only !== undefined && !only(name)) continue;
      // A few kilobytes of deflated zeros can claim gigabytes per entry, each within its cap: the
      // sizes the archive declares (which yauzl holds each entry to) must fit where they unpack,
      // or the auditor's disk fills before verification can say anything.
      unpacked += entry.uncompressedSize;
      if (unpacked > budget) {
        return `${base} unpacks to more than the ${budget} bytes this verification may write (${destDir} has that much free); free space there or point TMPDIR at a larger disk`;
      }
      if (entry.uncompressedSize > ZIP_LIMITS.ratioFloorBytes && entry.uncompressedSize > entry.compressedSize * ZIP_LIMITS.maxRatio) {
        return `${base} holds ${shown} claiming ${entry.uncompressedSize} bytes from ${entry.compressedSize} compressed, more than ${ZIP_LIMITS.maxRatio} to 1: a compression bomb, not evidence`;
      }
      if (unpacked > ZIP_LIMITS.totalBytes) return `${base} claims to unpack to more than ${ZIP_LIMITS.totalBytes} bytes in all, more than any evidence bundle`;
      picked.push(entry);
    }
    const problem = layoutProblem(fd, base, layout, structure.cdOffset);
    if (problem !== undefined) return problem;
    for (const entry of picked) {
      const name = entry.fileName;
      const shown = JSON.stringify(name);
      // capOf admits one level of folder at most (artifacts/, populations/).
      const slash = name.indexOf('/');
      if (slash > 0) fs.mkdirSync(path.join(destDir, name.slice(0, slash)), { recursive: true });
      let crc = 0;
      const check = new Transform({
        transform(chunk: Buffer, _enc, done) {
          crc = zlib.crc32(chunk, crc);
          done(null, chunk);
        },
      });
      try {
        // The name is one a bundle has (capOf knows no `..` and no absolute path), so this stays in destDir.
        await pipeline(await zip.openReadStreamPromise(entry), check, fs.createWriteStream(path.join(destDir, ...name.split('/')), { flags: 'wx', mode: 0o600 }));
      } catch (e) {
        throw new Refused(`${base} holds ${shown} damaged: ${(e as Error).message}`);
      }
      if (crc >>> 0 !== entry.crc32) return `${base} holds ${shown} whose bytes do not match its CRC-32: the archive is damaged`;
    }
    return undefined;
  } catch (e) {
    if (e instanceof Refused) return e.message;
    // yauzl's own refusals: a `..` or absolute name, a damaged central directory or local header.
    const why = (e as Error).message;
    if (/^(absolute path|invalid relative path)/.test(why)) return `${base} holds an entry named ${JSON.stringify(why.replace(/^[^:]*: /, ''))}, which points outside the bundle`;
    return `${base} is not a readable zip archive (${why})`;
  } finally {
    // yauzl now owns the descriptor: it closes it once the last entry stream has let go.
    zip.close();
    await closed;
  }
}
