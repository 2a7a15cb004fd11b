// A block device with live tracking, as a user sets it up in the console: add a loop device as a
// source, switch tracking on, back it up, write to it, and see the writes on the disk map before the
// next backup, which then reads only them. Needs root (loop devices, the kernel's tracepoints).
import { expect, test } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startConsole, type RunningConsole } from './console-harness.js';

const MiB = 1 << 20;
const isRoot = process.getuid?.() === 0;

let agent: RunningConsole;
let scratch: string;
let device = '';
let fileBlock = 0;

test.beforeAll(async () => {
  test.skip(!isRoot, 'Loop devices and block tracepoints need root; run the suite as root (CI does).');
  scratch = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-dev-'));
  const image = path.join(scratch, 'disk.img');
  const content = path.join(scratch, 'content');
  mkdirSync(content);
  writeFileSync(path.join(content, 'big.bin'), randomBytes(16 * MiB));
  execFileSync('truncate', ['-s', String(32 * MiB), image]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-L', 'tracked', '-d', content, image]);
  // Where the file's ninth MiB lies on the disk: writes there change a block the backup must keep.
  const bmap = execFileSync('debugfs', ['-R', 'bmap /big.bin 2048', image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  fileBlock = Number(bmap.trim());
  device = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim();
  agent = await startConsole();
});

test.afterAll(async () => {
  await agent?.stop();
  if (device) execFileSync('losetup', ['-d', device]);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('a tracked device shows what was written since its last backup, and the next backup reads only that', async ({ page }) => {
  await page.goto(agent.url);
  await page.getByLabel('Path').fill(device);
  await page.getByLabel('Name').fill('Tracked disk');
  await page.getByRole('button', { name: 'Add source' }).click();
  const card = page.getByRole('region', { name: 'Source Tracked disk' });
  await expect(card.getByRole('cell', { name: 'ext4' })).toBeVisible();

  const tracking = card.getByRole('checkbox', { name: /Track changes live/ });
  await tracking.click(); // the box follows the agent's answer, not the click
  await expect(tracking).toBeChecked();
  await expect(card.getByText('live', { exact: true })).toBeVisible();
  await card.getByRole('button', { name: 'Back up now' }).click();
  await expect(card.getByText('full', { exact: true })).toBeVisible();

  // 64 KiB straight to the device, into the blocks of a file (used, so the backup must keep them).
  expect(fileBlock).toBeGreaterThan(0);
  execFileSync('dd', ['if=/dev/urandom', `of=${device}`, 'bs=4K', 'count=16', `seek=${fileBlock}`, 'oflag=direct', 'status=none']);
  await card.getByRole('button', { name: 'Disk map' }).click();
  await expect(page.getByText(/64 KiB written since the last backup/)).toBeVisible();
  await expect(page.getByRole('list', { name: 'Legend' })).toContainText('Changed since the last backup (live tracker)');

  await page.getByRole('button', { name: 'All sources' }).click();
  await card.getByRole('button', { name: 'Back up now' }).click();
  await expect(card.getByText('incremental', { exact: true })).toBeVisible();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
  const last = page.getByRole('table', { name: 'Job history' }).getByRole('row').nth(1);
  await expect(last).toContainText('succeeded');
  await expect(last).toContainText('read 64 KiB, new 64 KiB');
});
