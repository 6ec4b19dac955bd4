import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/index.js';
import { REPO_ROOT, readEvents, runBin } from '../helpers/ledger.js';
import { rawProxy } from '../helpers/proxy.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * A "__proto__" member is ordinary JSON data, and a JavaScript object built by assignment
 * (`out[k] = v`) silently turns it into the object's prototype instead: a string value vanishes,
 * an object value makes the copy something else than plain data. Anything that copies a message
 * on its way into the ledger must keep it, or what was forwarded is not what was recorded.
 * End to end with the real `witness proxy` binary (bin/witness.js → dist/, so build first) in front
 * of test/fixtures/children/proto-mcp-server.mjs, which logs what it received.
 */

const dir = tempDir('witness-proto-');
const SERVER = path.join(REPO_ROOT, 'test', 'fixtures', 'children', 'proto-mcp-server.mjs');
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'proto', version: '1' } } });
const INITIALIZED = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });
// What the server answers every call with (the fixture's RESULT_TEXT).
const STRUCTURED = '{"status":"queued","__proto__":{"iban":"attacker-iban","x":1},"rows":[{"id":1,"__proto__":"row-proto"}]}';

if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'index.js'))) {
  throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` before these tests.');
}

describe('a "__proto__" member on the way through witness proxy', () => {
  it('is recorded in tool arguments exactly as the server received it, and a result whose structuredContent holds one is recorded, not refused [R-HOSTILE]', async () => {
    const store = tempDb(dir);
    const log = path.join(dir, `upstream-${path.basename(store)}.log`);
    const p = rawProxy(['proxy', '--agent', 'support-bot', '--store', `sqlite:${store}`, '--', process.execPath, SERVER, log]);
    p.send(INIT);
    expect((await p.until(1))[0]).toMatchObject({ id: 1, result: { serverInfo: { name: 'proto' } } });
    p.send(INITIALIZED);
    // Written as text: an object literal in this file would set the prototype, not the member.
    const calls = [
      '{"amount":10,"__proto__":"attacker-iban"}',
      '{"amount":10,"__proto__":{"x":1,"to":"attacker-iban"}}',
      '{"payment":{"amount":10,"__proto__":{"to":"attacker-iban"}},"memo":"__proto__"}',
    ];
    for (const [i, args] of calls.entries()) p.send(`{"jsonrpc":"2.0","id":${10 + i},"method":"tools/call","params":{"name":"wire","arguments":${args}}}`);
    const answers = (await p.until(10 + calls.length - 1)).filter((m) => typeof m['id'] === 'number' && (m['id'] as number) >= 10);
    expect(await p.close()).toBe(0);
    // Every call was forwarded, and the client got the server's answer, "__proto__" and all.
    expect(answers.map((m) => m['error'])).toEqual(calls.map(() => undefined));
    expect(answers.map((m) => canonicalize((m['result'] as Record<string, unknown>)['structuredContent']))).toEqual(calls.map(() => canonicalize(JSON.parse(STRUCTURED))));

    const received = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { params: { arguments: unknown } }).params.arguments);
    expect(received.map((a) => canonicalize(a))).toEqual(calls.map((c) => canonicalize(JSON.parse(c))));

    const evs = await readEvents(store);
    expect(evs.filter((e) => e.kind === 'error').map((e) => e.data?.['message'])).toEqual([]);
    const recordedArgs = evs.filter((e) => e.kind === 'tool.call').map((e) => canonicalize(e.data?.['arguments']));
    expect(recordedArgs).toEqual(received.map((a) => canonicalize(a)));
    expect(recordedArgs[0]).toBe('{"__proto__":"attacker-iban","amount":10}');
    const results = evs.filter((e) => e.kind === 'tool.result');
    expect(results.map((e) => e.outcome)).toEqual(['success', 'success', 'success']);
    for (const r of results) expect(canonicalize((r.data?.['output'] as Record<string, unknown>)['structuredContent'])).toBe(canonicalize(JSON.parse(STRUCTURED)));

    const verify = await runBin(['verify', '--store', `sqlite:${store}`]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
