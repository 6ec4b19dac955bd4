import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { recordAnthropic } from '../../src/integrations/anthropic.js';
import { recordOpenAI } from '../../src/integrations/openai.js';
import type { Session } from '../../src/index.js';

/** A client subclass of the user's own: the wrapper must hand back that class, not the SDK's base. */
class MyAnthropic extends Anthropic {
  readonly team = 'refunds';
}

// Checked by `tsc` (npm run typecheck covers test/): the wrapped clients keep the SDK's own types.
function typesOnly(session: Session): void {
  const a = recordAnthropic(new Anthropic({ apiKey: 'k' }), session);
  expectTypeOf(a).toEqualTypeOf<Anthropic>();
  expectTypeOf(a.messages.create).toEqualTypeOf<Anthropic['messages']['create']>();
  expectTypeOf(recordAnthropic(new MyAnthropic({ apiKey: 'k' }), session)).toEqualTypeOf<MyAnthropic>();
  const o = recordOpenAI(new OpenAI({ apiKey: 'k' }), session);
  expectTypeOf(o).toEqualTypeOf<OpenAI>();
  expectTypeOf(o.chat.completions.create).toEqualTypeOf<OpenAI['chat']['completions']['create']>();
  expectTypeOf(o.responses.create).toEqualTypeOf<OpenAI['responses']['create']>();
  // @ts-expect-error: an OpenAI client is not an Anthropic one (the checks above can fail).
  recordAnthropic(new OpenAI({ apiKey: 'k' }), session);
}

describe('the wrapped clients keep the SDK types', () => {
  it('is checked by tsc; at run time the subclass survives the wrapper', () => {
    expect(typeof typesOnly).toBe('function');
    const s = {} as Session;
    const mine = recordAnthropic(new MyAnthropic({ apiKey: 'k' }), s);
    expect(mine).toBeInstanceOf(MyAnthropic);
    expect(mine.team).toBe('refunds');
  });
});
