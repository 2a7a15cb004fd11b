import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{agent-core,drivers,native,agent,cli,electron,renderer,scripts,testdata,bench}/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'bench/work/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Block-device tests create loop devices and mounts; two files at a time keeps the
    // machine's two cores busy without starving the kernel's loop workers.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
