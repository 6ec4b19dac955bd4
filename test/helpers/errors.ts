import { expect } from 'vitest';
import { WitnessError, isWitnessError, type ErrorCode } from '../../src/core/index.js';

/** The WitnessError `fn` throws; fails the test if it throws nothing or something else. */
export function thrown(fn: () => unknown): WitnessError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WitnessError);
    return e as WitnessError;
  }
  throw new Error('expected a WitnessError, but nothing was thrown');
}

/** The code of what `fn` throws, or says that it threw nothing or a foreign error. */
export function codeOf(fn: () => unknown): ErrorCode | 'no error' | 'foreign error' {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return isWitnessError(e) ? e.code : 'foreign error';
  }
}
