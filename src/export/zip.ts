import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { WitnessError } from '../core/index.js';

/**
 * Evidence bundles as zip archives (PKWARE APPNOTE 6.3: local headers, a central directory, its
 * end record), written and read here rather than by a library: no zip library is a dependency,
 * and the two things a bundle needs are narrow. Writing streams each file into the archive
 * uncompressed (evidence is mostly PNG and MP4, already compressed), reading a file twice (once
 * for its CRC-32, once to copy it) so that a 200 MB video is never held in memory. Reading
 * extracts only the names a bundle has, within their caps, into a fresh directory that the
 * ordinary bundle verifier then checks; anything else is a refusal in one sentence.
 */

const CHUNK = 1024 * 1024;
const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const END = 0x06054b50;
/** Bit 11: names are UTF-8. */
const UTF8 = 0x0800;
/** Without ZIP64, sizes and offsets are 32-bit. */
const MAX32 = 0xffffffff;

/** The first bytes of a zip archive (a local header, or the end record of an empty one). */
export function looksLikeZip(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    if (!fs.fstatSync(fd).isFile()) return false;
    const b = Buffer.alloc(4);
    if (fs.readSync(fd, b, 0, 4, 0) < 4) return false;
    const sig = b.readUInt32LE(0);
    return sig === LOCAL || sig === END;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** MS-DOS date and time, as zip headers keep them (local time, two-second steps). */
function dosTime(d: Date): { time: number; date: number } {
  const year = Math.max(1980, d.getFullYear());
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

/** Every file and directory under `dir`, as zip names (`/`-separated, directories ending in `/`), sorted. */
function listTree(dir: string, prefix = ''): string[] {
  const names: string[] = [];
  for (const ent of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const name = `${prefix}${ent.name}`;
    if (ent.isDirectory()) names.push(`${name}/`, ...listTree(dir, `${name}/`));
    else if (ent.isFile()) names.push(name);
  }
  return names;
}

/**
 * Writes the files under `dir` into a new zip at `outFile` (which must not exist), stored
 * uncompressed, reading each file in 1 MiB chunks. Refuses (`invalid_argument`) a bundle that
 * would need ZIP64 (a file or the archive over 4 GiB): export it as a directory instead.
 */
export async function zipDirectory(dir: string, outFile: string, now: Date = new Date()): Promise<void> {
  const { time, date } = dosTime(now);
  const out = await fs.promises.open(outFile, 'wx', 0o644);
  const buf = Buffer.alloc(CHUNK);
  const central: Buffer[] = [];
  let offset = 0;
  const put = async (b: Buffer) => {
    await out.write(b, 0, b.length, offset);
    offset += b.length;
  };
  const tooLarge = () => new WitnessError('invalid_argument', `The bundle is larger than 4 GiB, more than a zip without ZIP64 holds; export it as a directory (an -o path not ending in .zip).`);
  try {
    for (const name of listTree(dir)) {
      const isDir = name.endsWith('/');
      const file = path.join(dir, name);
      let crc = 0;
      let size = 0;
      if (!isDir) {
        // First pass: the CRC-32 and length, so the local header carries them (no data descriptor).
        const f = await fs.promises.open(file, 'r');
        try {
          for (;;) {
            const { bytesRead } = await f.read(buf, 0, CHUNK, size);
            if (bytesRead === 0) break;
            crc = zlib.crc32(buf.subarray(0, bytesRead), crc);
            size += bytesRead;
          }
        } finally {
          await f.close();
        }
      }
      if (size > MAX32 || offset > MAX32) throw tooLarge();
      const nameBytes = Buffer.from(name, 'utf8');
      const local = Buffer.alloc(30);
      local.writeUInt32LE(LOCAL, 0);
      local.writeUInt16LE(20, 4);
      local.writeUInt16LE(UTF8, 6);
      local.writeUInt16LE(0, 8); // stored
      local.writeUInt16LE(time, 10);
      local.writeUInt16LE(date, 12);
      local.writeUInt32LE(crc >>> 0, 14);
      local.writeUInt32LE(size, 18);
      local.writeUInt32LE(size, 22);
      local.writeUInt16LE(nameBytes.length, 26);
      local.writeUInt16LE(0, 28);
      const entryOffset = offset;
      await put(Buffer.concat([local, nameBytes]));
      if (!isDir) {
        const f = await fs.promises.open(file, 'r');
        try {
          let copied = 0;
          let check = 0;
          while (copied < size) {
            const { bytesRead } = await f.read(buf, 0, Math.min(CHUNK, size - copied), copied);
            if (bytesRead === 0) break;
            check = zlib.crc32(buf.subarray(0, bytesRead), check);
            await put(buf.subarray(0, bytesRead));
            copied += bytesRead;
          }
          // The bundle is ours and freshly written; a change between the passes is a fault, not evidence.
          if (copied !== size || check !== crc) throw new WitnessError('conflict', `The bundle file ${name} changed while it was being zipped; export again.`);
        } finally {
          await f.close();
        }
      }
      const c = Buffer.alloc(46);
      c.writeUInt32LE(CENTRAL, 0);
      c.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, 2.0
      c.writeUInt16LE(20, 6);
      c.writeUInt16LE(UTF8, 8);
      c.writeUInt16LE(0, 10);
      c.writeUInt16LE(time, 12);
      c.writeUInt16LE(date, 14);
      c.writeUInt32LE(crc >>> 0, 16);
      c.writeUInt32LE(size, 20);
      c.writeUInt32LE(size, 24);
      c.writeUInt16LE(nameBytes.length, 28);
      c.writeUInt16LE(0, 30);
      c.writeUInt16LE(0, 32);
      c.writeUInt16LE(0, 34);
      c.writeUInt16LE(0, 36);
      c.writeUInt32LE((((isDir ? 0o40755 : 0o100644) << 16) | (isDir ? 0x10 : 0)) >>> 0, 38);
      c.writeUInt32LE(entryOffset, 42);
      central.push(c, nameBytes);
    }
    const cdOffset = offset;
    const cd = Buffer.concat(central);
    const entries = central.length / 2;
    if (cdOffset + cd.length > MAX32 || entries > 0xffff) throw tooLarge();
    await put(cd);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(END, 0);
    end.writeUInt16LE(entries, 8);
    end.writeUInt16LE(entries, 10);
    end.writeUInt32LE(cd.length, 12);
    end.writeUInt32LE(cdOffset, 16);
    await put(end);
    await out.sync();
  } finally {
    await out.close();
  }
}

/** How large each name a bundle holds may be; any other name is refused. */
export type EntryCap = (name: string) => number | undefined;

interface Entry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  csize: number;
  usize: number;
  local: number;
}

/**
 * Extracts a zip bundle into `destDir` (an empty directory), synchronously and in bounded memory:
 * stored entries are copied a chunk at a time, deflated ones inflated whole up to 64 MiB. Returns
 * why the archive is refused, in words for a verification failure, or undefined when every entry
 * was extracted and matched its CRC-32. With `only`, every entry is still checked but only those it
 * picks are extracted.
 */
export function extractZip(file: string, destDir: string, capOf: EntryCap, only?: (name: string) => boolean): string | undefined {
  const base = path.basename(file);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    return `${base} cannot be opened (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return `${base} is not a regular file`;
    const read = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      let got = 0;
      while (got < len) {
        const n = fs.readSync(fd, b, got, len - got, pos + got);
        if (n === 0) break;
        got += n;
      }
      return b.subarray(0, got);
    };
    // The end record is in the last 22 bytes, or up to 65,535 before them behind a comment.
    const tailLen = Math.min(st.size, 22 + 0xffff);
    const tail = read(st.size - tailLen, tailLen);
    let at = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === END) {
        at = i;
        break;
      }
    }
    if (at === -1) return `${base} is not a zip archive (it has no end of central directory)`;
    const entriesTotal = tail.readUInt16LE(at + 10);
    const cdSize = tail.readUInt32LE(at + 12);
    const cdOffset = tail.readUInt32LE(at + 16);
    if (tail.readUInt16LE(at + 4) !== 0 || tail.readUInt16LE(at + 6) !== 0) return `${base} is a multi-part zip archive, which a bundle never is`;
    if (entriesTotal === 0xffff || cdSize === MAX32 || cdOffset === MAX32) return `${base} is a ZIP64 archive, which this verifier does not read; unzip it and verify the directory`;
    if (cdOffset + cdSize > st.size - tailLen + at) return `${base} is not a zip archive (its central directory lies outside the file)`;
    const cd = read(cdOffset, cdSize);
    const entries: Entry[] = [];
    const seen = new Set<string>();
    let p = 0;
    for (let i = 0; i < entriesTotal; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL) return `${base} is not a zip archive (its central directory is damaged at entry ${i + 1})`;
      const nameLen = cd.readUInt16LE(p + 28);
      const skip = nameLen + cd.readUInt16LE(p + 30) + cd.readUInt16LE(p + 32);
      if (p + 46 + skip > cd.length) return `${base} is not a zip archive (its central directory is damaged at entry ${i + 1})`;
      const name = cd.subarray(p + 46, p + 46 + nameLen).toString('utf8');
      const e: Entry = {
        name,
        flags: cd.readUInt16LE(p + 8),
        method: cd.readUInt16LE(p + 10),
        crc: cd.readUInt32LE(p + 16),
        csize: cd.readUInt32LE(p + 20),
        usize: cd.readUInt32LE(p + 24),
        local: cd.readUInt32LE(p + 42),
      };
      p += 46 + skip;
      const shown = JSON.stringify(name);
      if (seen.has(name)) return `${base} holds ${shown} more than once, so which one counts is ambiguous`;
      seen.add(name);
      if (name === 'artifacts/') continue;
      const cap = capOf(name);
      if (cap === undefined) return `${base} holds an entry ${shown}, which no Witness evidence bundle has`;
      if ((e.flags & 1) !== 0) return `${base} holds ${shown} encrypted, which a bundle never is`;
      if (e.method !== 0 && e.method !== 8) return `${base} holds ${shown} compressed with method ${e.method}; only stored and deflated entries are read`;
      if (e.usize > cap) return `${name} is ${e.usize} bytes, more than the ${cap} bytes it may have`;
      if (e.method === 8 && e.usize > INFLATE_MAX) return `${name} is deflated and ${e.usize} bytes, more than the ${INFLATE_MAX} bytes inflated in memory; unzip the bundle and verify the directory`;
      if (e.method === 0 && e.csize !== e.usize) return `${base} holds ${shown} stored with two different sizes`;
      if (only === undefined || only(name)) entries.push(e);
    }
    for (const e of entries) {
      const why = extractEntry(fd, read, st.size, e, destDir, base);
      if (why !== undefined) return why;
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

const INFLATE_MAX = 64 * 1024 * 1024;

function extractEntry(fd: number, read: (pos: number, len: number) => Buffer, fileSize: number, e: Entry, destDir: string, base: string): string | undefined {
  const shown = JSON.stringify(e.name);
  const local = read(e.local, 30);
  if (local.length < 30 || local.readUInt32LE(0) !== LOCAL) return `${base} is damaged: the entry ${shown} has no local header where the central directory says`;
  const nameLen = local.readUInt16LE(26);
  if (read(e.local + 30, nameLen).toString('utf8') !== e.name) return `${base} names an entry ${shown} in its central directory and another in its local header`;
  const start = e.local + 30 + nameLen + local.readUInt16LE(28);
  if (start + e.csize > fileSize) return `${base} is truncated: the entry ${shown} runs past its end`;
  if (e.name.startsWith('artifacts/')) fs.mkdirSync(path.join(destDir, 'artifacts'), { recursive: true });
  // The names were checked against the bundle's own (no `..`, no absolute path), so this stays in destDir.
  const out = fs.openSync(path.join(destDir, ...e.name.split('/')), 'wx', 0o600);
  try {
    let crc = 0;
    let written = 0;
    if (e.method === 0) {
      const buf = Buffer.alloc(Math.min(CHUNK, Math.max(e.csize, 1)));
      while (written < e.csize) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, e.csize - written), start + written);
        if (n === 0) break;
        crc = zlib.crc32(buf.subarray(0, n), crc);
        fs.writeSync(out, buf, 0, n);
        written += n;
      }
    } else {
      let inflated: Buffer;
      try {
        inflated = zlib.inflateRawSync(read(start, e.csize), { maxOutputLength: Math.max(e.usize, 1) });
      } catch (err) {
        return `${base} holds ${shown} deflated so it does not inflate to its ${e.usize} bytes (${(err as Error).message})`;
      }
      crc = zlib.crc32(inflated);
      fs.writeSync(out, inflated);
      written = inflated.length;
    }
    if (written !== e.usize) return `${base} holds ${shown} with ${written} bytes where its header says ${e.usize}`;
    if (crc >>> 0 !== e.crc) return `${base} holds ${shown} whose bytes do not match its CRC-32: the archive is damaged`;
    return undefined;
  } finally {
    fs.closeSync(out);
  }
}
