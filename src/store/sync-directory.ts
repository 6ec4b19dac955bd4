import fs from 'node:fs';

/**
 * Makes a rename durable: fsync of the directory puts its new entry on disk, not only the file's
 * bytes. Some file systems refuse fsync on a directory; the rename itself is still atomic then.
 */
export function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Refused by the file system: nothing more can be done, and the rename stands.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
