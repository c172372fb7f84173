import { defineConfig } from 'vitest/config';

// Tests of pure decisions and static files: no server, no process, no cluster.
// `npm run test:unit` runs them alone in seconds; `npm test` runs everything.
const UNIT = [
  'test/architecture/**/*.test.ts',
  'test/contract/**/*.test.ts',
  'test/docs/**/*.test.ts',
  'test/manifests/{image,rbac,routing,schemas,security}.test.ts',
  'test/adapters/object-store.test.ts',
  'test/bench/cpu-profile.test.ts',
  'test/build-image/checkpoint-image.test.ts',
  'test/local/{filters,broker-parts,ping-parts,s3-choice}.test.ts',
  'test/node-agent/token.test.ts',
  'test/request-checkpoint/{excluded-namespaces,kubelet-outcome}.test.ts',
  'test/restore-pod/{checkpoint-catalog,container-failure,handler,plan,restore-state,runtime-support}.test.ts',
  'test/runtime/secret-placeholders.test.ts',
  'test/schedule-sync/schedule.test.ts',
  'test/store-artifact/checkpoint-archive.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    // Swift's four Python servers take seconds of CPU to start, minutes on a loaded machine.
    hookTimeout: process.env.KCR_TEST_S3 === 'swift' ? 180_000 : 60_000,
    // Integration tests start servers on loopback; two cores, so keep files few at a time.
    fileParallelism: true,
    maxWorkers: 2,
    // A worker runs file after file with the modules it imported already loaded:
    // loading client-node, minio and express again for every file was ~40 % of
    // the suite's CPU. So a test file stops what it starts and restores what it
    // stubs (spies, fake timers), and nothing may rely on a fresh module state.
    isolate: false,
    // The suite runs on the simulated runtime, child processes of local/main.ts too; only the
    // real-runtime tests ask for podman themselves.
    env: { KCR_RUNTIME: 'simulated' },
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: UNIT } },
    ],
  },
});
