import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // One temp folder per run, removed at the end even when tests fail (tests/global-setup.ts).
    globalSetup: ['tests/global-setup.ts'],
    // Process-heavy tests (real children, SIGKILL crash loops) share two cores on CI.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
