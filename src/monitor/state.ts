import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { WitnessError } from '../core/index.js';
import { Condition } from './alerts.js';
import { BehaviourState } from './behaviour.js';
import { VerifiedState } from './incremental.js';

/**
 * Where the monitor stopped, kept in a small JSON file (beside a SQLite ledger by default): the
 * next position to read, the last checkpoint it verified (with the tree's frontier), when the last
 * full pass ran, what each agent's rules learned, and the conditions alerting now. Written whole
 * (temporary file, fsync, rename) only after a pass recorded its flags, so a monitor stopped at
 * any point redoes at most the pass it was in, and a flag it had already recorded is known by the
 * ledger (see Monitor.alreadyFlagged), never recorded twice.
 */
export const MonitorState = z.strictObject({
  v: z.literal(1),
  /** The ledger's id: a state file is never applied to another ledger. */
  ledger: z.string(),
  cursor: z.number().int().min(0),
  /** When the state was last saved; events the monitor recorded after it are from a pass that did not finish. */
  savedAt: z.string().optional(),
  verified: VerifiedState.optional(),
  lastFull: z.strictObject({ at: z.string(), ok: z.boolean(), events: z.number().int(), first: z.string().optional() }).optional(),
  behaviour: BehaviourState,
  conditions: z.record(z.string(), Condition),
});
export type MonitorState = z.infer<typeof MonitorState>;

export function freshState(ledgerId: string): MonitorState {
  return { v: 1, ledger: ledgerId, cursor: 0, behaviour: {}, conditions: {} };
}

export function loadState(file: string, ledgerId: string): MonitorState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WitnessError(
      'store_unavailable',
      `The monitor state file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check its permissions or give another with --state.`,
      { cause: e },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new WitnessError('invalid_argument', `The monitor state file ${file} is not JSON; move it aside to start monitoring afresh (the monitor then relearns from the whole ledger).`);
  }
  const checked = MonitorState.safeParse(parsed);
  if (!checked.success)
    throw new WitnessError(
      'invalid_argument',
      `The monitor state file ${file} is not one this version writes (${checked.error.issues[0]?.path.join('.') ?? ''}: ${checked.error.issues[0]?.message ?? ''}); move it aside to start afresh.`,
    );
  if (checked.data.ledger !== ledgerId) {
    throw new WitnessError('invalid_argument', `The monitor state file ${file} belongs to another ledger (${checked.data.ledger}, not ${ledgerId}); give each ledger its own --state file.`);
  }
  return checked.data;
}

export function saveState(file: string, state: MonitorState): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(state));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // The directory itself is what failed; there is no temporary file to remove.
    }
    throw new WitnessError(
      'store_unavailable',
      `The monitor state file ${file} cannot be written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the pass will be redone once it can.`,
      { cause: e },
    );
  }
}
