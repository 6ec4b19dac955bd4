import { claudeCode } from './claude-code.js';
import { codex } from './codex.js';
import { cursor } from './cursor.js';
import { gemini } from './gemini.js';
import type { HookAdapter, HookAgent } from './types.js';

/** Every coding agent's adapter, by the name `witness hook <agent>` and `witness hooks install <agent>` take. */
const ADAPTERS: Record<HookAgent, HookAdapter> = {
  'claude-code': claudeCode,
  codex,
  cursor,
  gemini,
};

export function hookAdapter(kind: HookAgent): HookAdapter {
  return ADAPTERS[kind];
}

export function isHookAgent(kind: string): kind is HookAgent {
  return Object.prototype.hasOwnProperty.call(ADAPTERS, kind);
}
