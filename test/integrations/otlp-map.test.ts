import { describe, expect, it } from 'vitest';
import { mapSpan, otlpStreamPrefix, readTraceRequest, spanEventId, streamFor, type OtlpSpan } from '../../src/integrations/index.js';

const TRACE = '5b8efff798038103d269b633813fc60c';
const SPAN = 'eee19b7ec3c1b174';
const SECRET = Buffer.alloc(32, 1);
const as = (agent: string) => ({ agent, secret: SECRET });

function span(attributes: OtlpSpan['attributes'] = {}, more: Partial<OtlpSpan> = {}): OtlpSpan {
  return { traceId: TRACE, spanId: SPAN, name: 's', kind: 1, attributes, events: [], links: [], resource: {}, ...more };
}

function request(attributes: unknown[]): unknown {
  return { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: TRACE, spanId: SPAN, name: 's', attributes }] }] }] };
}

describe('the OTLP span mapping', () => {
  it("derives an event id per secret, agent, trace and span: the same span maps to the same id, another agent's or another ledger's to another", () => {
    const id = spanEventId(as('a'), TRACE, SPAN);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(spanEventId(as('a'), TRACE, SPAN)).toBe(id);
    expect(spanEventId(as('b'), TRACE, SPAN)).not.toBe(id);
    expect(spanEventId({ agent: 'a', secret: Buffer.alloc(32, 2) }, TRACE, SPAN)).not.toBe(id);
    expect(spanEventId(as('a'), TRACE, SPAN, 'result')).not.toBe(id);
  });

  it("names the stream by the key's agent, percent-encoded, so no conversation id or agent name reaches another agent's namespace", () => {
    expect(streamFor(span({ 'gen_ai.conversation.id': 'c1' }), as('bot'))).toBe('otlp:bot:c1');
    expect(streamFor(span(), as('bot'))).toBe(`otlp:bot:${TRACE}`);
    // Agent "a:b" and agent "a" with conversation "b:c" do not meet.
    expect(streamFor(span({ 'gen_ai.conversation.id': 'c' }), as('a:b'))).toBe('otlp:a%3Ab:c');
    expect(streamFor(span({ 'gen_ai.conversation.id': 'b:c' }), as('a'))).toBe('otlp:a:b:c');
    expect(streamFor(span({ 'gen_ai.conversation.id': 'x'.repeat(300) }), as('a'.repeat(512)))).toMatch(/^otlp:sha256-[0-9a-f]{64}:sha256-[0-9a-f]{64}$/);
    expect(streamFor(span(), as('a'.repeat(512))).startsWith(otlpStreamPrefix('a'.repeat(512)))).toBe(true);
  });

  it('keeps a claimed gen_ai.agent.id as a claim and every attribute as sent', () => {
    const [note] = mapSpan(span({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': 'root', 'x.y': [1, 'two'] }), as('bot'));
    expect(note).toMatchObject({ kind: 'note', action: 'invoke_agent', data: { otlp: { claimed_agent: { id: 'root' }, attributes: { 'x.y': [1, 'two'] } } } });
  });

  it('maps an execute_tool span with an error status to a call and an error result linked to it', () => {
    const events = mapSpan(span({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 't', 'gen_ai.tool.call.arguments': 'not json' }, { status: { code: 2, message: 'boom' } }), as('bot'));
    expect(events.map((e) => e.kind)).toEqual(['tool.call', 'tool.result']);
    expect(events[0]!.data).toMatchObject({ tool: 't', arguments: 'not json' });
    expect(events[1]).toMatchObject({ parent: events[0]!.id, outcome: 'error', data: { is_error: true, error: { message: 'boom' } } });
  });
});

describe('the OTLP request reader', () => {
  it('keeps an attribute named __proto__ as data, never as the prototype', () => {
    const [s] = readTraceRequest(request([{ key: '__proto__', value: { kvlistValue: { values: [{ key: 'polluted', value: { boolValue: true } }] } } }]));
    expect(Object.getPrototypeOf(s!.attributes)).toBe(Object.prototype);
    expect(Object.keys(s!.attributes)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('refuses nesting deeper than 16 and an int64 that is not an integer', () => {
    let v: unknown = { stringValue: 'leaf' };
    for (let i = 0; i < 20; i++) v = { arrayValue: { values: [v] } };
    expect(() => readTraceRequest(request([{ key: 'deep', value: v }]))).toThrow(/deeper than 16/);
    expect(() => readTraceRequest(request([{ key: 'n', value: { intValue: '1.5' } }]))).toThrow(/64-bit integer/);
  });

  it('keeps an int64 beyond 2^53 as its decimal string', () => {
    const [s] = readTraceRequest(request([{ key: 'big', value: { intValue: '9007199254740993' } }]));
    expect(s!.attributes['big']).toBe('9007199254740993');
  });
});
