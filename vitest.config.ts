import { defineConfig } from 'vitest/config';

// Integration tests start real PostgreSQL clusters: on a 2-core machine they run one file at a time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
