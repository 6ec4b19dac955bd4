import fs from 'node:fs';
import path from 'node:path';
import { generateKey } from '../../src/core/index.js';

/** An approver's key pair and the 0600 file holding the private half, as `witness approver init` writes it. */
export interface Person {
  name: string;
  vkey: string;
  skey: string;
  file: string;
}

/** A fresh key pair for `name`, its private half written to `<dir>/<name>.key` (0600). */
export function person(dir: string, name: string): Person {
  const { signerKey, verifierKey } = generateKey(name);
  const file = path.join(dir, `${name}.key`);
  fs.writeFileSync(file, `${signerKey}\n`, { mode: 0o600 });
  return { name, vkey: verifierKey, skey: signerKey, file };
}

/**
 * Writes a policy to `file` that lets everything through except server-everything's `get-sum`
 * with `a` over 100, which rule `big-sums-need-review` holds for one of `approvers` to decide.
 * Returns `file`.
 */
export function writeReviewPolicy(file: string, approvers: readonly Person[]): string {
  fs.writeFileSync(
    file,
    [
      'version: 1',
      'default: allow',
      'approvers:',
      ...approvers.map((p) => `  - { id: ${p.name}, key: "${p.vkey}" }`),
      'rules:',
      '  - id: big-sums-need-review',
      '    match: { tool: get-sum }',
      '    when: args.a > 100',
      '    effect: review',
      '    reason: Sums over 100 need a supervisor.',
      '',
    ].join('\n'),
  );
  return file;
}
