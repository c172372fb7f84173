import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start servers on loopback; two cores, so keep files few at a time.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
