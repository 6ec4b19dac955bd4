import { afterAll } from 'vitest';
import { changesSince, snapshot } from '../helpers/real-home.js';

/**
 * Run before every test file (vitest.config.ts, setupFiles): fails the file when the real
 * ~/.witness/hooks-backup (or $WITNESS_STATE_DIR's) or an agent's real user settings changed while
 * it ran, which is what a `witness hooks install|uninstall` without a temporary HOME and
 * WITNESS_STATE_DIR does (test/helpers/real-home.ts, temporaryHome). Taken here, before the test
 * file is imported, the snapshot sees the environment vitest was started with.
 */
const before = snapshot();

afterAll(() => {
  const changed = changesSince(before);
  if (changed.length > 0)
    throw new Error(
      `The real home directory changed while this test file ran: ${changed.join('; ')}. Run witness hooks install|uninstall under temporaryHome() from test/helpers/real-home.ts (another test run at the same time can also cause this).`,
    );
});
