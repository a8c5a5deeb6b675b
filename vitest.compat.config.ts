import { defineConfig } from 'vitest/config';

// `npm run test:compat`: the compatibility matrix, one PostgreSQL major after another (servers from
// scripts/pg-versions.mjs). Separate from the default run, which excludes test/compat.
export default defineConfig({
  test: {
    include: ['test/compat/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
});
