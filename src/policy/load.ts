import { readFileSync } from 'node:fs';
import { WitnessError } from '../core/index.js';
import { parsePolicy } from './parse.js';
import type { Policy } from './types.js';

/**
 * Reads and parses a policy file: the module's only I/O. The policy version is the SHA-256 of the
 * bytes read, so the hash recorded with a decision is the hash of exactly this file.
 */
export function loadPolicyFile(path: string): Policy {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new WitnessError('not_found', `${path}: no such policy file.`, { cause: e, details: { file: path } });
    if (code === 'EISDIR') throw new WitnessError('invalid_argument', `${path} is a directory; give the path of a policy file.`, { cause: e, details: { file: path } });
    throw new WitnessError('invalid_argument', `${path}: the policy file cannot be read (${code ?? String(e)}).`, { cause: e, details: { file: path } });
  }
  return parsePolicy(bytes, { source: path });
}
