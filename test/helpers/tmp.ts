import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

/** A fresh directory per test file, removed afterwards; real files, no mocks. */
export function tempDir(prefix = 'witness-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let counter = 0;
export function tempDb(dir: string): string {
  counter += 1;
  return path.join(dir, `ledger-${process.pid}-${counter}.db`);
}
