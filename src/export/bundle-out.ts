import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WitnessError } from '../core/index.js';
import { createZip, type ZipWriter } from './zip.js';

/**
 * Where a bundle's files go — a directory, or a zip being written (a hidden file beside it, renamed
 * into place when whole) — with every file's SHA-256 taken as its bytes pass, for the manifest.
 * Names are `/`-separated. Files are written one after another: a stream is awaited whole before
 * the next file starts, so a zip entry never waits on another and nothing is buffered.
 */
export class BundleOut {
  /** SHA-256 (hex) of every file written so far, by name. */
  readonly files: Record<string, string> = {};
  private readonly dirs = new Set<string>();

  private constructor(
    readonly target: string,
    private readonly zip: ZipWriter | undefined,
  ) {}

  /** Opens `target` (a `*.zip` path, or a directory that is new or empty); refuses an existing zip or a non-empty directory. */
  static open(target: string, now?: Date): BundleOut {
    if (/\.zip$/i.test(target)) {
      if (fs.existsSync(target)) throw new WitnessError('invalid_argument', `The output ${target} already exists; choose a new path with -o.`);
      makeDirectory(path.dirname(path.resolve(target)), { what: 'output directory', flag: '-o' });
      return new BundleOut(target, createZip(target, now));
    }
    prepareEmptyDir(target);
    return new BundleOut(target, undefined);
  }

  /** Refuses `target` now, before anything is read or recorded, if open() would. */
  static check(target: string): void {
    if (/\.zip$/i.test(target)) {
      if (fs.existsSync(target)) throw new WitnessError('invalid_argument', `The output ${target} already exists; choose a new path with -o.`);
      return;
    }
    if (fs.existsSync(target) && (!fs.statSync(target).isDirectory() || fs.readdirSync(target).length > 0)) {
      throw new WitnessError('invalid_argument', `The output ${target} already exists and is not an empty directory; choose a new path with -o.`);
    }
  }

  get isZip(): boolean {
    return this.zip !== undefined;
  }

  /** A small file held whole (manifest, checkpoint, keys, an index). */
  file(name: string, content: string | Buffer, hashed = true): void {
    const bytes = typeof content === 'string' ? Buffer.from(content) : content;
    this.ensureParent(name);
    if (this.zip !== undefined) this.zip.addBuffer(name, bytes);
    else fs.writeFileSync(this.at(name), bytes, { flag: 'wx' });
    if (hashed) this.files[name] = createHash('sha256').update(bytes).digest('hex');
  }

  /** A file written from a stream or an (async) iterable of chunks, hashed on the way; resolves when written whole. */
  async stream(name: string, source: Readable | AsyncIterable<string | Buffer> | Iterable<string | Buffer>): Promise<string> {
    this.ensureParent(name);
    const hash = createHash('sha256');
    const hashing = new Transform({
      transform(chunk: Buffer | string, _enc, done) {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        hash.update(b);
        done(null, b);
      },
    });
    const input = source instanceof Readable ? source : Readable.from(source, { objectMode: false });
    if (this.zip !== undefined) {
      // The pipe passes the source's error on to `hashing`, where the zip sees it.
      const piped = input.pipe(hashing);
      input.once('error', (e) => hashing.destroy(e));
      await this.zip.addStream(name, piped);
    } else {
      await pipeline(input, hashing, fs.createWriteStream(this.at(name), { flags: 'wx' }));
    }
    const digest = hash.digest('hex');
    this.files[name] = digest;
    return digest;
  }

  /** Finishes the zip (it appears whole or not at all); nothing for a directory. */
  async finish(): Promise<void> {
    await this.zip?.finish();
  }

  /** Removes a partial zip; safe after finish. A directory's partial files are left for the person to see. */
  async abort(): Promise<void> {
    await this.zip?.abort();
  }

  private ensureParent(name: string): void {
    const i = name.lastIndexOf('/');
    if (i < 0) return;
    const dir = name.slice(0, i);
    if (this.dirs.has(dir)) return;
    this.dirs.add(dir);
    if (this.zip !== undefined) this.zip.addDirectory(dir);
    else fs.mkdirSync(this.at(dir), { recursive: true });
  }

  private at(name: string): string {
    return path.join(this.target, ...name.split('/'));
  }
}

function prepareEmptyDir(dir: string): void {
  if (fs.existsSync(dir)) {
    const st = fs.statSync(dir);
    if (!st.isDirectory() || fs.readdirSync(dir).length > 0) {
      throw new WitnessError('invalid_argument', `The output ${dir} already exists and is not an empty directory; choose a new path with -o.`);
    }
    return;
  }
  makeDirectory(dir, { what: 'output directory', flag: '-o' });
}

/** What a directory a person named is for, as its errors say it. */
export interface DirectoryUse {
  /** The noun in the errors: `output directory`, `demo directory`. */
  what: string;
  /** The option that chooses another path: `-o`, `--dir`. */
  flag: string;
  /** The mode of each directory created (an existing one is left as it is). */
  mode?: number;
}

/**
 * Makes `dir` and any missing parents, or throws `invalid_argument` in one sentence naming `dir`
 * (as given) and `use.flag`. An existing directory is fine; an existing file is not.
 *
 * Not fs.mkdirSync(dir, { recursive: true }): on a file system that answers ENOENT for a
 * directory whose parent exists (/proc, /sys) it retries forever. One level at a time, from the
 * nearest existing ancestor, any refusal is final.
 */
export function makeDirectory(dir: string, use: DirectoryUse): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (!fs.existsSync(at)) {
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  if (missing.length === 0 && !fs.statSync(at).isDirectory()) {
    throw new WitnessError('invalid_argument', `The ${use.what} ${dir} exists and is not a directory; choose another path with ${use.flag}.`);
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d, use.mode === undefined ? undefined : { mode: use.mode });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      const why =
        code === 'ENOTDIR'
          ? `${path.dirname(d)} is not a directory`
          : code === 'EACCES' || code === 'EPERM'
            ? 'permission denied'
            : code === 'EROFS'
              ? 'read-only file system'
              : `the file system refused it (${code})`;
      throw new WitnessError('invalid_argument', `Cannot create the ${use.what} ${dir} (${why}); choose a writable path with ${use.flag}.`, { cause: e });
    }
  }
}
