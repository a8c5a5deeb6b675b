import { configDefaults, defineConfig } from 'vitest/config';

// Integration tests start real PostgreSQL clusters: on a 2-core machine they run one file at a time.
// test/compat (every supported PostgreSQL major) needs downloaded servers: `npm run test:compat`
// runs it with vitest.compat.config.ts, so the default run leaves it out.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, 'test/compat/**'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
