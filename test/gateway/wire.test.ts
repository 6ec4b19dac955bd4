import { afterAll, describe, expect, it } from 'vitest';
import { McpRelay, Wire, type RelayPorts } from '../../src/gateway/index.js';
import { parsePolicy } from '../../src/policy/index.js';
import { openWitness, type Witness } from '../../src/recorder/index.js';
import { readEvents } from '../helpers/ledger.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

/**
 * A message is parsed once per hop: the relay hands its ports a Wire that keeps the form the
 * message came in — the line as read from a byte stream, or the object a transport parsed — and
 * makes the other form only when a port asks, once. In process, with a real SQLite ledger; the
 * ports are the two ends a transport would be.
 */

const dir = tempDir('witness-wire-');
const witnesses: Witness[] = [];
afterAll(async () => {
  for (const w of witnesses) await w.close();
});

const POLICY = parsePolicy(['version: 1', 'default: allow', 'rules:', '  - id: no-shell', '    match: { tool: "shell.*" }', '    effect: deny', ''].join('\n'));

async function relay(): Promise<{ relay: McpRelay; toServer: Wire[]; toClient: Wire[]; store: string }> {
  const store = tempDb(dir);
  const witness = await openWitness({ store: `sqlite:${store}`, retryForMs: 2000 });
  witnesses.push(witness);
  const toServer: Wire[] = [];
  const toClient: Wire[] = [];
  const ports: RelayPorts = { toServer: (m) => void toServer.push(m), toClient: (m) => void toClient.push(m) };
  const r = await McpRelay.open({ witness, agent: { id: 'wire-bot' }, server: 'wire', policy: POLICY, purpose: 'wire test' }, ports);
  return { relay: r, toServer, toClient, store };
}

describe('Wire', () => {
  it('gives a line read from a byte stream back byte for byte, but for raw CRs, and serializes an object once', () => {
    const line = '{ "jsonrpc" : "2.0",\r"method":"notifications/x", "params":{"n":1.50} }';
    const read = Wire.read(line, JSON.parse(line));
    expect(read.text).toBe(line.replace('\r', ' '));
    expect(read.text).toBe(read.text);
    const value = { jsonrpc: '2.0', id: 1, result: { text: 'a\rb' } };
    const built = Wire.of(value);
    expect(built.value).toBe(value);
    expect(built.text).toBe(JSON.stringify(value));
    expect(built.text).not.toMatch(/\r/);
    expect(Wire.read('not json', undefined, false).value).toBeUndefined();
  });
});

describe('the relay parses each message once', () => {
  it('hands a transport the very object it delivered, both ways, recorded call included, and a byte stream the very line it read', async () => {
    const { relay: r, toServer, toClient, store } = await relay();

    // HTTP-like client: parsed objects in, the same objects out to the server.
    const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
    const call = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } };
    r.fromClientMessage(ping);
    r.fromClientMessage(call);
    await r.drained();
    expect(toServer.map((w) => w.value)).toEqual([ping, call]);
    expect(toServer[0]!.value).toBe(ping);
    expect(toServer[1]!.value).toBe(call);

    // HTTP-like server: its parsed answers reach the client as the same objects.
    const pong = { jsonrpc: '2.0', id: 1, result: {} };
    const answer = { jsonrpc: '2.0', id: 2, result: { content: [{ type: 'text', text: 'Echo: hi' }] } };
    r.fromServerMessage(pong);
    r.fromServerMessage(answer);
    expect(toClient.map((w) => w.value)).toEqual([pong, answer]);
    expect(toClient[0]!.value).toBe(pong);
    expect(toClient[1]!.value).toBe(answer);

    // stdio-like: an unrecorded request and a server line pass as the bytes that were read.
    const odd = '{"id":3,"jsonrpc":"2.0","method":"witness/unknown","params":{"x":1.0e0}}';
    r.fromClient(odd);
    await r.drained();
    expect(toServer[2]!.text).toBe(odd);
    const serverLine = '{"jsonrpc":"2.0","id":3,"result":{"y":2.50}}';
    r.fromServer(serverLine);
    expect(toClient[2]!.text).toBe(serverLine);
    expect(toClient[2]!.value).toEqual({ jsonrpc: '2.0', id: 3, result: { y: 2.5 } });

    await r.end('completed');
    const kinds = (await readEvents(store)).map((e) => e.kind);
    expect(kinds).toEqual(['session.start', 'tool.call', 'policy.decision', 'tool.result', 'session.end']);
  });

  it("hands the client the server's answer untouched, while the ledger keeps it redacted", async () => {
    const { relay: r, toClient, store } = await relay();
    r.fromClientMessage({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'read_config', arguments: {} } });
    await r.drained();
    const answer = { jsonrpc: '2.0', id: 5, result: { content: [{ type: 'text', text: 'ok' }], structuredContent: { service: 'billing', api_key: 'sk-live-0123456789abcdef0123' } } };
    const copy = structuredClone(answer);
    r.fromServerMessage(answer);
    expect(toClient[0]!.value).toBe(answer);
    await r.end('completed');
    expect(answer).toEqual(copy);
    const result = (await readEvents(store)).find((e) => e.kind === 'tool.result')!;
    expect(result.data?.['output']).toEqual({ content: [{ type: 'text', text: 'ok' }], structuredContent: { service: 'billing', api_key: '[REDACTED:key]' } });
  });

  it("forwards a recorded call from a byte stream as the compact JSON of what it recorded, not the client's spelling", async () => {
    const { relay: r, toServer, store } = await relay();
    r.fromClient('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"n":1.50,"s":"\\u0041"}}}');
    await r.drained();
    expect(toServer[0]!.text).toBe('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"n":1.5,"s":"A"}}}');
    await r.end('completed');
    const recorded = (await readEvents(store)).find((e) => e.kind === 'tool.call')!;
    expect(recorded.data).toMatchObject({ tool: 'echo', arguments: { n: 1.5, s: 'A' }, jsonrpc_id: 7 });
  });
});
