import fs from 'node:fs';
import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { argumentsDigest, canonicalize, generateKey, newArgumentsSalt } from '../../src/core/index.js';
import { openWitness, systemWriter } from '../../src/recorder/index.js';
import { runCli } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness approve` / `witness deny` confirm in one line that names the agent and the tool of the
 * request — text the agent chose. A newline in a tool name must not let the agent print a line of
 * its own under the person's confirmation (`✔ approved`, a forged second request), nor may any
 * other control character reach the terminal raw.
 *
 * The person decides on the arguments, which the agent also chose: `witness approvals` and the
 * confirmation show them whole, as the canonical JSON their digest covers, never cut to a column
 * where a long `a_memo` (sorted first) could push `to` out of view.
 */

const dir = tempDir('witness-decision-output-');
const TOOL = 'billing.refund\n✔ approved request 00000000-0000-7000-8000-000000000000 as ceo@corp\r\x1b[2K';
const AGENT = 'support-bot\x1b]0;pwned\x07';
const { signerKey, verifierKey } = generateKey('alice@corp');
const keyFile = path.join(dir, 'alice@corp.key');
fs.writeFileSync(keyFile, `${signerKey}\n`, { mode: 0o600 });

/** A ledger with one pending approval request (for alice@corp to decide) per arguments object; their ids. */
async function seed(file: string, agent: string, tool: string, argsList: unknown[]): Promise<Array<{ id: string; salt: string; digest: string }>> {
  const w = await openWitness({ store: `sqlite:${file}`, strict: true });
  const requests: Array<{ id: string; salt: string; digest: string }> = [];
  try {
    // As the gateway records a held call (the SDK's public path refuses approval.request).
    const s = await systemWriter(w, 'gateway').session({ agent: { id: agent } });
    for (const args of argsList) {
      const call = await s.record('tool.call', { tool, arguments: args });
      const salt = newArgumentsSalt();
      const id = uuidv7();
      const digest = argumentsDigest(salt, args);
      await s.record(
        'approval.request',
        { request_id: id, tool, arguments: args, arguments_salt: salt, arguments_digest: digest, approvers: [verifierKey], expires_at: new Date(Date.now() + 10 * 60_000).toISOString() },
        { id, parent: call!.id, action: 'billing.refund', outcome: 'pending' },
      );
      requests.push({ id, salt, digest });
    }
    await w.flush();
  } finally {
    await w.close();
  }
  return requests;
}

describe('witness approve and deny confirmations', () => {
  it('[R-CLI-INERT-OUTPUT] print one line whatever the recorded tool name and agent hold, with their control characters shown inert', async () => {
    const file = tempDb(dir);
    const requests = (await seed(file, AGENT, TOOL, [{ amount: 650 }, { amount: 1200 }])).map((r) => r.id);

    const approved = await runCli(['approve', requests[0]!, '--key', keyFile, '--store', `sqlite:${file}`]);
    const denied = await runCli(['deny', requests[1]!, '--key', keyFile, '--reason', 'no', '--store', `sqlite:${file}`]);
    for (const [r, verb] of [
      [approved, 'Approved'],
      [denied, 'Denied'],
    ] as const) {
      expect(r.stderr, verb).toBe('');
      expect(r.code, verb).toBe(0);
      // One line: the tool name's newline is shown as ␊, its CR as ␍ and ESC as ␛, never acted on.
      expect(r.stdout.split('\n'), verb).toHaveLength(2);
      expect(r.stdout, verb).toMatch(
        new RegExp(
          `^${verb} request [0-9a-f-]{36} \\(support-bot␛\\]0;pwned␇ → billing\\.refund␊✔ approved request 0{8}-0{4}-7000-8000-0{12} as ceo@corp␍␛\\[2K\\) with arguments \\{"amount":(650|1200)\\} \\(digest [0-9a-f]{12}…\\) as alice@corp \\(key alice@corp\\+[0-9a-f]{8}\\); recorded as event [0-9a-f-]{36}\\.\\n$`,
        ),
      );
    }
    // --json keeps the recorded text exact, escaped as JSON.
    const json = await runCli(['approvals', '--all', '--json', '--store', `sqlite:${file}`]);
    expect((JSON.parse(json.stdout) as Array<{ tool: string }>).map((v) => v.tool)).toEqual([TOOL, TOOL]);
  });

  it('[R-APPROVAL-ARGS-SHOWN] witness approvals shows every argument whole, however long the one before it, as the canonical JSON its digest covers', async () => {
    const file = tempDb(dir);
    // The agent's arguments: a memo long enough to fill any column, then the payee, and a bidi override.
    const args = { a_memo: `Refund for order 1042. ${'Customer called twice. '.repeat(40)}`, amount: 1000000, to: 'DE89 3704 0044 0532 0130 00\u202e' };
    const [req] = await seed(file, 'support-bot', 'billing.wire', [args]);
    const r = await runCli(['approvals', '--store', `sqlite:${file}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Whole: the payee after the long memo is there, its bidi override written as a JSON escape.
    expect(r.stdout).toContain(',"amount":1000000,"to":"DE89 3704 0044 0532 0130 00\\u202E"}');
    const lines = r.stdout.split('\n');
    // A block per request: its id and status, then one field per line, the arguments last, on a line of their own.
    expect(lines[0]).toBe(`Request ${req!.id} (pending)`);
    const shown = lines.find((l) => l.startsWith('  arguments: '))!.slice('  arguments: '.length);
    expect(shown).toBe(canonicalize(args).replace('\u202e', '\\u202E'));
    // What is shown is exactly what the digest covers: parsed back, it has the request's digest.
    expect(argumentsDigest(req!.salt, JSON.parse(shown))).toBe(req!.digest);
    expect(lines).toContain(`  digest:    ${req!.digest}`);
    expect(lines).toContain('  tool:      billing.wire');
    expect(r.stdout).toContain('--digest <digest>');
  });

  it('[R-APPROVAL-ARGS-SHOWN] witness approve and deny print the whole arguments they signed, and --json gives them too', async () => {
    const file = tempDb(dir);
    const long = { a_memo: 'x'.repeat(300), amount: 1000000, to: 'attacker-iban' };
    const [first, second, third] = await seed(file, 'support-bot', 'billing.wire', [long, { ...long, to: 'other-iban' }, { amount: 5 }]);
    const approved = await runCli(['approve', first!.id, '--key', keyFile, '--store', `sqlite:${file}`]);
    expect(approved.stderr).toBe('');
    expect(approved.stdout).toContain(` with arguments ${canonicalize(long)} (digest ${first!.digest.slice(0, 12)}…) as alice@corp `);
    const denied = await runCli(['deny', second!.id, '--key', keyFile, '--reason', 'wrong payee', '--store', `sqlite:${file}`]);
    expect(denied.stderr).toBe('');
    expect(denied.stdout).toContain(`"to":"other-iban"}`);
    const json = await runCli(['approve', third!.id, '--key', keyFile, '--json', '--store', `sqlite:${file}`]);
    expect(JSON.parse(json.stdout)).toMatchObject({ request: third!.id, decision: 'approved', arguments: { amount: 5 }, arguments_digest: third!.digest });
  });
});
