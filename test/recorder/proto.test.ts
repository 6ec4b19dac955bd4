import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/index.js';
import { Redactor, openWitness } from '../../src/index.js';
import { verifyLedger } from '../../src/store/index.js';
import { tempDb, tempDir } from '../helpers/tmp.js';
import { driverOf } from '../helpers/ledger.js';

/**
 * A "__proto__" member is ordinary JSON data; every copy the recorder makes (redaction, schema
 * validation) must keep it, or the ledger holds something else than what the agent sent. Values
 * are parsed from text: an object literal with "__proto__" in this file would set the prototype.
 */

const dir = tempDir('witness-proto-sdk-');
const agent = { id: 'proto-bot' };
const obj = (text: string): Record<string, unknown> => JSON.parse(text) as Record<string, unknown>;

describe('a "__proto__" member in what the SDK records', () => {
  it('survives redaction as an ordinary member, whatever it holds, and its own secrets are still redacted [R-HOSTILE]', () => {
    const r = new Redactor();
    for (const text of ['{"amount":10,"__proto__":"attacker-iban"}', '{"amount":10,"__proto__":{"x":1,"to":"attacker-iban"}}', '{"list":[{"__proto__":[1,2]}],"__proto__":null}']) {
      const out = r.redact(obj(text));
      expect(canonicalize(out), text).toBe(canonicalize(obj(text)));
      expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    }
    const secret = r.redact(obj('{"__proto__":{"password":"proto-qwz-pw","to":"x"}}'));
    expect(canonicalize(secret)).toBe('{"__proto__":{"password":"[REDACTED:key]","to":"x"}}');
  });

  it('is recorded in data, arguments, outputs, LLM parameters and session labels exactly as given, and the ledger verifies [R-HOSTILE]', async () => {
    const db = tempDb(dir);
    const errors: unknown[] = [];
    const w = await openWitness({ store: `sqlite:${db}`, strict: true, onError: (e) => errors.push(e) });
    try {
      const s = await w.session({ agent, labels: obj('{"team":"billing","__proto__":"label-proto"}') as Record<string, string> });
      const args = obj('{"amount":10,"__proto__":{"to":"attacker-iban"}}');
      const output = obj('{"ok":true,"__proto__":{"iban":"attacker-iban"}}');
      await s.tool('wire', args, () => output);
      await s.record('note', obj('{"text":"top-level member","__proto__":"note-proto"}') as { text: string });
      await s.llmCall({ model: 'm', input: [], output: 'ok', parameters: obj('{"temperature":0,"__proto__":{"seed":7}}') });
      await w.flush();
      const evs = await driverOf(w).readStream(s.id);
      const data = (kind: string) => evs.find((e) => e.kind === kind)!.data!;
      expect(canonicalize(data('session.start')['labels'])).toBe('{"__proto__":"label-proto","team":"billing"}');
      expect(canonicalize(data('tool.call')['arguments'])).toBe(canonicalize(args));
      expect(canonicalize(data('tool.result')['output'])).toBe(canonicalize(output));
      expect(canonicalize(data('note'))).toBe('{"__proto__":"note-proto","text":"top-level member"}');
      expect(canonicalize(data('llm.call')['parameters'])).toBe('{"__proto__":{"seed":7},"temperature":0}');
      // What the gateway digests for an approval is the same redacted value, member included.
      expect(canonicalize(w.redactData(args))).toBe(canonicalize(args));
      const report = await verifyLedger(driverOf(w));
      expect(report.failures).toEqual([]);
    } finally {
      await w.close();
    }
    expect(errors).toEqual([]);
  });
});
