/**
 * Three test projects:
 *   unit         Node, no GPU: test/unit/**.
 *   gpu-node     Node with Dawn (npm `webgpu`) on whatever Vulkan driver the
 *                machine has (lavapipe without a GPU): test/gpu/**, and
 *                test/gpu-node/** (GPU tests that need Node: processes, files).
 *   gpu-browser  the same test/gpu/** files in headless Chromium (Debian's
 *                /usr/bin/chromium, SwiftShader without a GPU) via Playwright.
 *   real-files   Node with Dawn, like gpu-node: files made by llama.cpp's
 *                llama-quantize against llama.cpp (test/real-files/**; a
 *                covering subset, or the whole matrix with WEBMOE_REAL_FILES=all).
 *   e2e          Node driving Chromium through Playwright against built pages
 *                (the demo app) served from 127.0.0.1: test/e2e/**.
 *   store-browser the weight store on real IndexedDB in the same headless
 *                Chromium (no GPU needed): test/browser/**.
 *   pack         Node: builds and packs the package, installs the tarball into a
 *                temporary project and uses it from Node, from a plain page
 *                in Chromium and from a fresh Vite app (dev server and
 *                production build): test/pack/**.
 * Both GPU projects print the adapter and its features once at the start and
 * fail, never skip, when there is no adapter. GPU tests that compare with
 * llama.cpp get its results from Node: directly in gpu-node (setup file
 * test/setup/gpu-node-llama.ts), through the `llamaCppReference` browser
 * command in gpu-browser (see test/gpu/support/llama-cpp.ts). Files in
 * GPU_NODE_ONLY are too slow for SwiftShader and run in gpu-node alone. See shared WEBGPU-ON-CPU notes:
 * --disable-software-rasterizer must never be added (no adapter then), and an
 * own --enable-features would replace Playwright's list.
 */

import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './test/setup/chromium';
import type { LlamaCppRequest } from './test/gpu/support/llama-cpp';
import type * as LlamaCppNode from './test/setup/llama-cpp-reference';

const GPU_TESTS = ['test/gpu/**/*.test.ts'];
/** GPU tests that need Node itself (child processes, the filesystem): gpu-node only. */
const NODE_GPU_TESTS = ['test/gpu-node/**/*.test.ts'];
// expert-cache: the cache's choices do not depend on the adapter, and Chromium streams experts in the
// e2e suites (the demo under a 0.5 MB budget, the store faults under 0.6 MiB).
const GPU_NODE_ONLY = ['test/gpu/olmoe-shape-parity.test.ts', 'test/gpu/expert-cache.test.ts'];

// Software adapters are slow: a pipeline compile or a small dispatch can take seconds.
const GPU_TEST_TIMEOUT_MS = 120_000;

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          environment: 'node',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'gpu-node',
          environment: 'node',
          include: [...GPU_TESTS, ...NODE_GPU_TESTS],
          pool: 'forks',
          globalSetup: ['test/setup/gpu-node-report.ts'],
          setupFiles: ['test/setup/gpu-node-globals.ts', 'test/setup/gpu-node-llama.ts'],
          testTimeout: GPU_TEST_TIMEOUT_MS,
          hookTimeout: GPU_TEST_TIMEOUT_MS,
        },
      },
      {
        test: {
          name: 'real-files',
          environment: 'node',
          include: ['test/real-files/**/*.test.ts'],
          pool: 'forks',
          globalSetup: ['test/setup/gpu-node-report.ts'],
          setupFiles: ['test/setup/gpu-node-globals.ts'],
          testTimeout: GPU_TEST_TIMEOUT_MS,
          hookTimeout: GPU_TEST_TIMEOUT_MS,
        },
      },
      {
        test: {
          name: 'e2e',
          environment: 'node',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: GPU_TEST_TIMEOUT_MS,
          hookTimeout: GPU_TEST_TIMEOUT_MS,
        },
      },
      {
        test: {
          name: 'pack',
          environment: 'node',
          include: ['test/pack/**/*.test.ts'],
          // Builds, packs and installs the package once for all of the project's files.
          globalSetup: ['test/pack/support/global-setup.ts'],
          testTimeout: GPU_TEST_TIMEOUT_MS,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          name: 'gpu-browser',
          include: GPU_TESTS,
          exclude: GPU_NODE_ONLY,
          setupFiles: ['test/setup/gpu-browser-report.ts'],
          testTimeout: GPU_TEST_TIMEOUT_MS,
          hookTimeout: GPU_TEST_TIMEOUT_MS,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS },
            }),
            instances: [{ browser: 'chromium' }],
            commands: {
              llamaCppReference: async ({ project }, request: LlamaCppRequest) =>
                (await project.import<typeof LlamaCppNode>('./test/setup/llama-cpp-reference.ts')).computeLlamaCppReference(request),
            },
          },
        },
      },
      {
        test: {
          name: 'store-browser',
          include: ['test/browser/**/*.test.ts'],
          testTimeout: 60_000,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS },
            }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});
