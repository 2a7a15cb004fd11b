// End-to-end tests in a real browser: Debian's Chromium (Playwright's own download cannot be
// reached here) against `strata console` on a temporary state directory. The Electron test in
// e2e/ skips itself, with its reason, where the Electron binary is missing.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: 'e2e',
  outputDir: '.test-results/playwright',
  timeout: 180_000,
  expect: { timeout: 30_000 },
  workers: 1,
  fullyParallel: false,
  reporter: [['list'], ['json', { outputFile: '.test-results/playwright.json' }]],
  use: {
    launchOptions: { executablePath: process.env.STRATA_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] },
    viewport: { width: 1400, height: 1000 },
    trace: 'off',
  },
});
