import { describe, expect, it } from 'vitest';
import { AGENTS } from '../../src/cli/commands/hook.js';
import { HOOK_AGENTS, hookAdapter, isHookAgent } from '../../src/integrations/index.js';

describe('the coding agents witness hook knows', () => {
  it('are the same list in the CLI (which loads nothing to register) and in the adapters', () => {
    expect([...AGENTS].sort()).toEqual([...HOOK_AGENTS].sort());
  });

  it('each have an adapter that names itself and a settings file for the project and the user', () => {
    for (const kind of HOOK_AGENTS) {
      const a = hookAdapter(kind);
      expect(a.kind).toBe(kind);
      expect(a.settingsFile.project).not.toBe('');
      expect(a.settingsFile.user).not.toBe('');
    }
    expect(isHookAgent('claude-code')).toBe(true);
    expect(isHookAgent('toString')).toBe(false);
    expect(isHookAgent('vim')).toBe(false);
  });
});
