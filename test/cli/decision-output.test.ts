import fs from 'node:fs';
import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { argumentsDigest, generateKey, newArgumentsSalt } from '../../src/core/index.js';
import { openWitness } from '../../src/recorder/index.js';
import { runCli } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * `witness approve` / `witness deny` confirm in one line that names the agent and the tool of the
 * request — text the agent chose. A newline in a tool name must not let the agent print a line of
 * its own under the person's confirmation (`✔ approved`, a forged second request), nor may any
 * other control character reach the terminal raw.
 */

const dir = tempDir('witness-decision-output-');
const TOOL = 'billing.refund\n✔ approved request 00000000-0000-7000-8000-000000000000 as ceo@corp\r\x1b[2K';
const AGENT = 'support-bot\x1b]0;pwned\x07';

describe('witness approve and deny confirmations', () => {
  it('[R-CLI-INERT-OUTPUT] print one line whatever the recorded tool name and agent hold, with their control characters shown inert', async () => {
    const { signerKey, verifierKey } = generateKey('alice@corp');
    const keyFile = path.join(dir, 'alice@corp.key');
    fs.writeFileSync(keyFile, `${signerKey}\n`, { mode: 0o600 });
    const file = tempDb(dir);
    const w = await openWitness({ store: `sqlite:${file}`, strict: true });
    const requests: string[] = [];
    try {
      const s = await w.session({ agent: { id: AGENT } });
      for (const amount of [650, 1200]) {
        const call = await s.record('tool.call', { tool: TOOL, arguments: { amount } });
        const salt = newArgumentsSalt();
        const id = uuidv7();
        await s.record(
          'approval.request',
          {
            request_id: id,
            tool: TOOL,
            arguments: { amount },
            arguments_salt: salt,
            arguments_digest: argumentsDigest(salt, { amount }),
            approvers: [verifierKey],
            expires_at: new Date(Date.now() + 10 * 60_000).toISOString(),
          },
          { id, parent: call!.id, action: 'billing.refund', outcome: 'pending' },
        );
        requests.push(id);
      }
      await w.flush();
    } finally {
      await w.close();
    }

    const approved = await runCli(['approve', requests[0]!, '--key', keyFile, '--store', `sqlite:${file}`]);
    const denied = await runCli(['deny', requests[1]!, '--key', keyFile, '--reason', 'no', '--store', `sqlite:${file}`]);
    for (const [r, verb] of [[approved, 'Approved'], [denied, 'Denied']] as const) {
      expect(r.stderr, verb).toBe('');
      expect(r.code, verb).toBe(0);
      // One line: the tool name's newline is shown as ␊, its CR as ␍ and ESC as ␛, never acted on.
      expect(r.stdout.split('\n'), verb).toHaveLength(2);
      expect(r.stdout, verb).toMatch(new RegExp(`^${verb} request [0-9a-f-]{36} \\(support-bot␛\\]0;pwned␇ → billing\\.refund␊✔ approved request 0{8}-0{4}-7000-8000-0{12} as ceo@corp␍␛\\[2K, arguments [0-9a-f]{12}…\\) as alice@corp \\(key alice@corp\\+[0-9a-f]{8}\\); recorded as event [0-9a-f-]{36}\\.\\n$`));
    }
    // --json keeps the recorded text exact, escaped as JSON.
    const json = await runCli(['approvals', '--all', '--json', '--store', `sqlite:${file}`]);
    expect((JSON.parse(json.stdout) as Array<{ tool: string }>).map((v) => v.tool)).toEqual([TOOL, TOOL]);
  });
});
