import { keyFingerprint, parseVerifierKey } from '../core/index.js';
import type { Ledger } from '../store/index.js';
import { KeyHistory } from './bundle-format.js';

/**
 * keys.json: the ledger's signing key with its validity window. Only the ledger's own key (its
 * first key row) travels: any other key in the table was put there by someone who can write the
 * database, never by the sealer, and a bundle must not hand it to an auditor as the ledger's.
 * No rotation exists yet, so the one key is valid from the earlier of its row's time and the
 * ledger's first checkpoint, with no end.
 */
export async function keyHistory(ledger: Ledger, firstCheckpointTs: string | undefined): Promise<KeyHistory> {
  const row = (await ledger.publicKeys())[0];
  if (row === undefined) return { keys: [] };
  const from = [row.addedAt, firstCheckpointTs].filter((t): t is string => t !== undefined && !Number.isNaN(Date.parse(t))).sort((a, b) => Date.parse(a) - Date.parse(b))[0] ?? row.addedAt;
  return KeyHistory.parse({
    keys: [
      {
        vkey: row.vkey,
        fingerprint: keyFingerprint(parseVerifierKey(row.vkey)),
        role: 'ledger-signing',
        valid_from: from,
        valid_until: null,
        source: "the ledger's key table, first row (the key the ledger was created with)",
      },
    ],
  });
}
