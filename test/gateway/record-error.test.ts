import { afterAll, describe, expect, it } from 'vitest';
import { GatewayRecorder } from '../../src/gateway/record.js';
import { openWitness } from '../../src/recorder/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';

const dir = tempDir('witness-record-error-');
const witness = await openWitness({ store: `sqlite:${tempDb(dir)}` });
afterAll(() => witness.close());

describe('the gateway recording an error', () => {
  it("keeps its own sentence, code and source when the context it adds carries fields of the same names (an upstream frame's `message`)", async () => {
    const agent = { id: 'support-bot' };
    const session = await witness.session({ agent });
    const recorder = new GatewayRecorder(witness, session, agent);
    recorder.error('The upstream MCP server sent a request; it was dropped.', 'protocol_error', 'gateway', { message: 'frame text', code: 'spoofed', source: 'agent', head: '{"jsonrpc"' });
    await recorder.settle();
    const events = await witness.reader.readStream(session.id);
    const error = events.find((e) => e.kind === 'error');
    expect(error?.data).toMatchObject({ message: 'The upstream MCP server sent a request; it was dropped.', code: 'protocol_error', source: 'gateway', head: '{"jsonrpc"' });
  });
});
