import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Child-process and SQLite tests are I/O bound; two cores on CI.
    pool: 'forks',
    maxWorkers: 2,
    // Fails a test file that wrote into the real ~/.witness/hooks-backup or an agent's real user settings.
    setupFiles: ['test/setup/real-home-guard.ts'],
  },
});
