import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { WitnessError } from '../../src/core/index.js';
import { loadPolicyFile, type Policy } from '../../src/policy/index.js';

let counter = 0;

/** Writes `text` to a fresh file in `dir` and returns its path. */
export function writePolicy(dir: string, text: string | Uint8Array, name?: string): string {
  counter += 1;
  const file = path.join(dir, name ?? `policy-${counter}.yaml`);
  fs.writeFileSync(file, text);
  return file;
}

/** Writes and loads a policy from a real file. */
export function loadText(dir: string, text: string): Policy {
  return loadPolicyFile(writePolicy(dir, text));
}

/** Writes a policy, expects loading it to fail, and returns the error with the file name replaced by `policy.yaml`. */
export function loadError(dir: string, text: string | Uint8Array): { message: string; error: WitnessError } {
  const file = writePolicy(dir, text);
  try {
    loadPolicyFile(file);
  } catch (e) {
    expect(e).toBeInstanceOf(WitnessError);
    const error = e as WitnessError;
    expect(error.code).toBe('invalid_policy');
    expect(error.message.startsWith(`${file} line `)).toBe(true);
    return { message: `policy.yaml${error.message.slice(file.length)}`, error };
  }
  throw new Error(`expected ${file} to be refused, but it loaded`);
}

/** A policy of one rule whose `when` is `condition` (effect deny, default allow). */
export function withCondition(dir: string, condition: string): Policy {
  return loadText(dir, `version: 1\ndefault: allow\nrules:\n  - id: r\n    when: ${JSON.stringify(condition)}\n    effect: deny\n`);
}
