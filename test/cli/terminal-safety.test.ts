import { beforeAll, describe, expect, it } from 'vitest';
import type { QueryPage } from '../../src/store/index.js';
import { SqliteLedger, type AppendRequest } from '../../src/store/index.js';
import { oneSentence, runCli, tamper } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * Agent-controlled text (tool output, notes, arguments, even agent and session ids) reaches the
 * operator's terminal through the CLI's human-readable output. A terminal obeys escape sequences
 * in it: clear the screen, retitle the window, plant a hyperlink, move the cursor to overwrite the
 * line above, or fake a whole table row with a newline. The CLI must show such text, never let the
 * terminal act on it; --json keeps it exact.
 */

const dir = tempDir('witness-terminal-');

const ESC = '\x1b';
const HOSTILE = {
  clear: `${ESC}[2J${ESC}[H`,
  title: `${ESC}]0;pwned\x07`,
  link: `${ESC}]8;;https://evil.example/${ESC}\\click here${ESC}]8;;${ESC}\\`,
  c1: '\u009b2J\u009d0;t\u009c',
  fakeRow: 'done\n2026-01-01T00:00:00.000Z  support-bot  s-1  9  approval.decision  approved by alice',
  overwrite: 'refund 6500\rrefund   65',
  bidi: 'total \u202e0056\u202c USD',
  erase: 'ok\b\b\x7f',
};
const HOSTILE_TEXT = Object.values(HOSTILE).join(' | ');
/** Anything a terminal acts on: C0 controls but the newline the CLI itself writes, DEL, C1, bidi and line separators. */
const ACTIVE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/;

let file: string;
let store: string;
const agent = `bot${ESC}[8m`;
const stream = `session-${ESC}]0;x\x07\n✔ Ledger is intact`;

beforeAll(async () => {
  file = tempDb(dir);
  store = `sqlite:${file}`;
  const ledger = SqliteLedger.open({ path: file });
  const ev = (kind: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}): AppendRequest => ({ stream, agent: { id: agent }, kind, data, ...extra }) as AppendRequest;
  try {
    await ledger.append([
      ev('session.start', { purpose: HOSTILE.title }),
      ev('tool.call', { tool: `crm${HOSTILE.clear}`, arguments: { q: HOSTILE_TEXT } }, { resource: `crm${HOSTILE.c1}`, action: `crm.lookup${HOSTILE.bidi}`, outcome: 'pending' }),
      ev('tool.result', { tool: 'crm', is_error: false, output: { content: [{ type: 'text', text: HOSTILE_TEXT }] } }, { outcome: 'success' }),
      ev('note', { text: HOSTILE.fakeRow }),
      ev(
        'approval.request',
        {
          request_id: 'req-1',
          tool: `billing.refund${HOSTILE.overwrite}`,
          arguments: { amount: HOSTILE.erase, memo: HOSTILE.link },
          arguments_digest: 'a'.repeat(64),
          expires_at: '2999-01-01T00:00:00.000Z',
          rule: HOSTILE.fakeRow,
        },
        // Stamped as the gateway records it: `witness approvals` lists no other request.
        { resource: 'billing', action: 'billing.refund', outcome: 'pending', recorder: { kind: 'gateway' } },
      ),
      ev('session.end', { reason: 'completed' }),
    ]);
    await ledger.seal();
  } finally {
    await ledger.close();
  }
});

function expectInert(text: string, what: string): void {
  const m = ACTIVE.exec(text);
  expect(m, `${what} prints ${JSON.stringify(m?.[0])} raw at ${m?.index}: ${JSON.stringify(text.slice(Math.max(0, (m?.index ?? 0) - 20), (m?.index ?? 0) + 20))}`).toBeNull();
}

describe('terminal escape sequences in recorded text', () => {
  it('[R-CLI-INERT-OUTPUT] witness query shows hostile text inert and visible, one event per line', async () => {
    const r = await runCli(['query', '--store', store]);
    expect(r.code).toBe(0);
    expectInert(r.stdout, 'query');
    expectInert(r.stderr, 'query stderr');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1 + 6); // the header and six events: the embedded newline made no row
    // What was there is still shown: ESC as the visible symbol ␛, not removed without a trace.
    expect(r.stdout).toContain('␛[8m');
    expect(lines.find((l) => l.includes('note'))).toContain('done␊2026-01-01');
  });

  it('[R-CLI-INERT-OUTPUT] witness query --json keeps every recorded character exactly, escaped as JSON', async () => {
    const r = await runCli(['query', '--store', store, '--json']);
    expect(r.code).toBe(0);
    expect(ACTIVE.exec(r.stdout)).toBeNull();
    const page = JSON.parse(r.stdout) as QueryPage;
    expect(page.events.map((e) => e.agent.id)).toEqual(Array(6).fill(agent));
    expect(page.events.map((e) => e.stream)).toEqual(Array(6).fill(stream));
    expect(page.events[1]!.data).toEqual({ tool: `crm${HOSTILE.clear}`, arguments: { q: HOSTILE_TEXT } });
    expect(page.events[1]!.action).toBe(`crm.lookup${HOSTILE.bidi}`);
    expect(page.events[3]!.data).toEqual({ text: HOSTILE.fakeRow });
  });

  it('[R-CLI-INERT-OUTPUT] witness approvals lists hostile tool names and arguments inert', async () => {
    const r = await runCli(['approvals', '--store', store, '--all']);
    expect(r.code).toBe(0);
    expectInert(r.stdout, 'approvals');
    expect(r.stdout).toContain('billing.refund');
    const json = await runCli(['approvals', '--store', store, '--all', '--json']);
    expect(ACTIVE.exec(json.stdout)).toBeNull();
    expect((JSON.parse(json.stdout) as Array<{ arguments: unknown }>)[0]!.arguments).toEqual({ amount: HOSTILE.erase, memo: HOSTILE.link });
  });

  it('[R-CLI-INERT-OUTPUT] witness verify names a hostile session inert, in its report and in its errors', async () => {
    const copy = tempDb(dir);
    const fs = await import('node:fs');
    for (const suffix of ['', '.key', '.pub']) fs.copyFileSync(file + suffix, copy + suffix);
    tamper(copy, (db) => db.prepare("UPDATE events SET data = replace(data, 'completed', 'aborted') WHERE seq = 5").run());
    const r = await runCli(['verify', '--store', `sqlite:${copy}`]);
    expect(r.code).toBe(1);
    expectInert(r.stdout, 'verify');
    expect(r.stdout).toMatch(/^✘ Ledger .* FAILED verification at session session-␛\]0;x␇␊✔ Ledger is intact, seq 5, /m);
    expect(r.stdout).not.toMatch(/^✔/m);

    const missing = await runCli(['verify', '--store', store, '--session', `${ESC}]0;gotcha\x07${ESC}[2J`]);
    expect(missing.code).toBe(1);
    expectInert(missing.stderr, 'verify error');
    expect(oneSentence(missing.stderr)).toContain('No session ␛]0;gotcha␇␛[2J');
  });
});
