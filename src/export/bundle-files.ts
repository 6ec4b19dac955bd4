import { createHash } from 'node:crypto';
import fs from 'node:fs';

/**
 * Reading the files of an evidence bundle, which may be hostile: a link out of the bundle, a
 * device or FIFO that never ends, a 96 MB proofs file, a single line of hundreds of megabytes.
 * Nothing here reads more than a file's cap, and lines are held one at a time, each at most its
 * cap, so memory stays bounded whatever the bundle holds.
 */

export type BundleFile = { fd: number; size: number } | { missing: true } | { notFile: true } | { tooLarge: true; size: number };

const CHUNK = 1024 * 1024;

/**
 * Opens `file` for reading if it is a regular file of at most `maxBytes`: never through a
 * symbolic link (O_NOFOLLOW), and without blocking on a FIFO (O_NONBLOCK), checked on the open
 * descriptor so the answer cannot change between the check and the read.
 */
export function openBundleFile(file: string, maxBytes: number): BundleFile {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? { missing: true } : { notFile: true };
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    return { notFile: true };
  }
  if (st.size > maxBytes) {
    fs.closeSync(fd);
    return { tooLarge: true, size: st.size };
  }
  return { fd, size: st.size };
}

/** The whole of a small file (its cap already checked by openBundleFile), as UTF-8. */
export function readWhole(f: { fd: number; size: number }): string {
  const buf = Buffer.alloc(f.size);
  let got = 0;
  while (got < f.size) {
    const n = fs.readSync(f.fd, buf, got, f.size - got, got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got).toString('utf8');
}

export type Line = { n: number; text: string } | { n: number; tooLong: true };

/**
 * The lines of a file (split on LF, numbered from 1, the empty one after a final LF included, as
 * `text.split('\n')` would give them), reading no further than the size the file had when
 * opened. A line longer than `maxLine` bytes is reported as too long and skipped without ever
 * being held whole.
 */
export function* readLines(f: { fd: number; size: number }, maxLine: number): Generator<Line> {
  const buf = Buffer.alloc(Math.min(CHUNK, Math.max(f.size, 1)));
  let parts: Buffer[] = [];
  let held = 0;
  let tooLong = false;
  let n = 1;
  let offset = 0;
  while (offset < f.size) {
    const got = fs.readSync(f.fd, buf, 0, Math.min(buf.length, f.size - offset), offset);
    if (got === 0) break;
    offset += got;
    let start = 0;
    while (start < got) {
      const lf = buf.indexOf(0x0a, start);
      const end = lf === -1 || lf >= got ? got : lf;
      if (!tooLong) {
        if (held + (end - start) > maxLine) {
          tooLong = true;
          parts = [];
          held = 0;
        } else {
          // Copied: buf is reused for the next chunk.
          parts.push(Buffer.from(buf.subarray(start, end)));
          held += end - start;
        }
      }
      if (end === got) break;
      yield tooLong ? { n, tooLong: true } : { n, text: Buffer.concat(parts).toString('utf8') };
      n++;
      parts = [];
      held = 0;
      tooLong = false;
      start = end + 1;
    }
  }
  yield tooLong ? { n, tooLong: true } : { n, text: Buffer.concat(parts).toString('utf8') };
}

/** How many lines readLines would yield, counted without decoding any. */
export function countLines(f: { fd: number; size: number }): number {
  const buf = Buffer.alloc(Math.min(CHUNK, Math.max(f.size, 1)));
  let lines = 1;
  let offset = 0;
  while (offset < f.size) {
    const got = fs.readSync(f.fd, buf, 0, Math.min(buf.length, f.size - offset), offset);
    if (got === 0) break;
    offset += got;
    for (let i = buf.indexOf(0x0a); i !== -1 && i < got; i = buf.indexOf(0x0a, i + 1)) lines++;
  }
  return lines;
}

/** SHA-256 of a file read in chunks, so a large artifact is never held in memory. */
export function sha256OfFile(f: { fd: number; size: number }): string {
  const h = createHash('sha256');
  const buf = Buffer.alloc(Math.min(CHUNK, Math.max(f.size, 1)));
  let offset = 0;
  while (offset < f.size) {
    const got = fs.readSync(f.fd, buf, 0, Math.min(buf.length, f.size - offset), offset);
    if (got === 0) break;
    h.update(buf.subarray(0, got));
    offset += got;
  }
  return h.digest('hex');
}
