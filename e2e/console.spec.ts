// The console as a new user meets it, in a real Chromium against a real `strata console`: make the
// demo disk (two filesystems), back it up, change it, back it up again, see the snapshot tree and
// the changed regions, restore with the wizard to a new image file, and check that file's contents.
import { expect, test, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startConsole, type RunningConsole } from './console-harness.js';

const SHOTS = path.join(ROOT, 'e2e', 'screenshots');

async function shot(page: Page, name: string): Promise<void> {
  // Notices would cover part of the view; the tests have read them already.
  const dismiss = page.getByRole('log', { name: 'Notifications' }).getByRole('button', { name: 'Dismiss' });
  while ((await dismiss.count()) > 0) await dismiss.first().click();
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

interface Volume {
  startBytes: number;
  filesystem: string;
}

/** The bytes of one file inside the demo image's ext4 (debugfs) or FAT (mtools) volume. */
function fileIn(image: string, volume: Volume, name: string, scratch: string): Buffer {
  const out = path.join(scratch, `${path.basename(image)}-${name}`);
  rmSync(out, { force: true });
  if (volume.filesystem === 'ext4') execFileSync('debugfs', ['-R', `dump /${name} ${out}`, `${image}?offset=${volume.startBytes}`], { stdio: 'ignore' });
  else execFileSync('mcopy', ['-n', '-i', `${image}@@${volume.startBytes}`, `::/${name}`, out]);
  return readFileSync(out);
}

function volumesOf(image: string): Volume[] {
  return (JSON.parse(execFileSync(path.join(ROOT, 'bin', 'strata'), ['inspect', image, '--json'], { encoding: 'utf8' })) as { volumes: Volume[] }).volumes;
}

let agent: RunningConsole;

test.beforeAll(async () => {
  agent = await startConsole();
});

test.afterAll(async () => {
  await agent?.stop();
});

test('without the token the console says how to connect, and the agent refuses it', async ({ page }) => {
  await page.goto(agent.url.replace(/#.*$/, ''));
  await expect(page.getByRole('heading', { name: 'This console is not connected to an agent' })).toBeVisible();
  const health = await page.request.get(new URL('/api/health', agent.url).href);
  expect(health.status()).toBe(200);
  const call = await page.request.post(new URL('/api/call/sources:list', agent.url).href, { data: {} });
  expect(call.status()).toBe(401);
});

test('a new user backs up the demo disk twice, compares, and restores it with the wizard', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(agent.url);
  // The token leaves the address bar at once.
  await expect(page).not.toHaveURL(/token=/);
  await expect(page.getByRole('status', { name: 'Agent connection' })).toContainText('Agent connected');

  // First start: nothing configured, a demo disk on offer.
  await expect(page.getByRole('heading', { name: 'Nothing is protected yet' })).toBeVisible();
  await shot(page, 'welcome');
  await page.getByRole('button', { name: 'Make a demo disk' }).click();
  const card = page.getByRole('region', { name: 'Source Demo disk' });
  await expect(card).toBeVisible();
  await expect(card.getByRole('cell', { name: 'ext4' })).toBeVisible();
  await expect(card.getByRole('cell', { name: 'vfat' })).toBeVisible();
  await expect(card.getByRole('img', { name: /Volumes of Demo disk: 2 volumes/ })).toBeVisible();

  // First backup: a full.
  await card.getByRole('button', { name: 'Back up now' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Backup of demo-disk.img finished.' })).toBeVisible();
  await expect(card.getByText('full', { exact: true })).toBeVisible();
  await shot(page, 'sources');

  // Change files on both volumes, then the second backup: an incremental.
  await card.getByRole('button', { name: 'Change some files' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Changed 3 files on the demo disk.' })).toBeVisible();
  await card.getByRole('button', { name: 'Back up now' }).click();
  await expect(card.getByText('incremental', { exact: true })).toBeVisible();

  // The disk map: the bitmap with the regions the last backup changed.
  await card.getByRole('button', { name: 'Disk map' }).click();
  await expect(page.getByRole('heading', { name: 'Disk map: Demo disk' })).toBeVisible();
  await expect(page.getByRole('img', { name: 'Valid-sector map of Demo disk' })).toBeVisible();
  await expect(page.getByText(/changed in the last backup/)).toBeVisible();
  await expect(page.getByRole('list', { name: 'Legend' })).toContainText('Changed in the last backup');
  await page.getByRole('button', { name: 'Zoom in' }).click();
  await shot(page, 'disk-map');

  // The snapshot tree: one chain of two snapshots (a chain without branches is drawn flat, oldest first).
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Snapshots' }).click();
  const tree = page.getByRole('tree', { name: 'Snapshots of Demo disk' });
  const items = tree.getByRole('treeitem');
  await expect(items).toHaveCount(2);
  await expect(items.nth(0)).toHaveAttribute('aria-label', /^Full snapshot/);
  await expect(items.nth(1)).toHaveAttribute('aria-label', /^Incremental snapshot/);
  await items.nth(0).click();
  await expect(page.getByRole('heading', { name: /^Snapshot [0-9a-f]{12}/ })).toBeVisible();
  await items.nth(1).click({ modifiers: ['Control'] });
  await expect(page.getByText(/differ between [0-9a-f]{12} and [0-9a-f]{12}, in \d+ region/)).toBeVisible();
  await expect(page.getByRole('region', { name: 'Differences on the disk' }).getByRole('img', { name: /Regions that differ/ })).toBeVisible();
  await shot(page, 'snapshots');

  // Type-ahead in the tree: typed characters move focus to the next snapshot whose name starts with
  // them; characters typed within half a second make one string; a repeated letter cycles. Focus
  // moves, the selection does not.
  const fullItem = tree.getByRole('treeitem', { name: /^Full snapshot/ });
  const incrementalItem = tree.getByRole('treeitem', { name: /^Incremental snapshot/ });
  await incrementalItem.focus();
  await page.keyboard.press('f');
  await expect(fullItem).toBeFocused();
  await page.keyboard.press('f');
  await expect(fullItem).toBeFocused();
  await page.waitForTimeout(600);
  await page.keyboard.type('Incr');
  await expect(incrementalItem).toBeFocused();
  await page.waitForTimeout(600);
  await page.keyboard.press('i');
  await expect(incrementalItem).toBeFocused();
  await page.keyboard.type('x');
  await expect(incrementalItem).toBeFocused();
  await page.waitForTimeout(600);
  await page.keyboard.type('fu');
  await expect(fullItem).toBeFocused();
  await expect(fullItem).toHaveAttribute('aria-selected', 'true');
  await expect(incrementalItem).toHaveAttribute('aria-selected', 'true');

  // Restore the newest snapshot from its Restore button: the wizard opens ready to run.
  await tree.getByRole('button', { name: /^Restore snapshot/ }).last().click();
  const confirm = page.getByRole('region', { name: 'Confirm the restore' });
  await expect(confirm).toBeVisible();
  await expect(confirm.getByLabel('Target check')).toContainText('Ready.');
  await shot(page, 'restore-confirm');
  await confirm.getByRole('button', { name: 'Restore now' }).click();
  const result = page.getByRole('status', { name: 'Restore result' });
  await expect(result).toContainText('Restored');
  await expect(result).toContainText('Verification');
  await shot(page, 'restore-result');
  const target = /to (\/\S+\.img):/.exec((await result.textContent()) ?? '')?.[1];
  expect(target, 'the result names the restored file').toBeTruthy();
  expect(existsSync(target!)).toBe(true);

  // The restored image holds the same files as the disk did at the second backup.
  const image = path.join(agent.stateDir, 'demo', 'demo-disk.img');
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-files-'));
  try {
    const volumes = volumesOf(target!);
    expect(volumes.map((v) => v.filesystem)).toEqual(['ext4', 'vfat']);
    const source = volumesOf(image);
    execFileSync('e2fsck', ['-fn', `${target}?offset=${volumes[0]!.startBytes}`], { stdio: 'ignore' });
    for (const name of ['report-3.txt', 'report-17.txt', 'report-30.txt']) {
      expect(fileIn(target!, volumes[0]!, name, scratch).equals(fileIn(image, source[0]!, name, scratch)), name).toBe(true);
    }
    const photos = execFileSync('mdir', ['-b', '-i', `${image}@@${source[1]!.startBytes}`, '::/'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().replace(/^::\//, ''))
      .filter((l) => /\.raw$/i.test(l));
    expect(photos.length).toBeGreaterThanOrEqual(7);
    for (const name of photos) expect(fileIn(target!, volumes[1]!, name, scratch).equals(fileIn(image, source[1]!, name, scratch)), name).toBe(true);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }

  // Jobs: two backups and the restore in the history.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
  const history = page.getByRole('table', { name: 'Job history' });
  await expect(history.getByRole('row').filter({ hasText: 'succeeded' })).toHaveCount(3);
  await expect(page.getByText('Nothing is running.')).toBeVisible();
  await shot(page, 'jobs');

  // Settings: the default repository the console made.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await expect(page.getByRole('region', { name: 'Repository' })).toContainText(path.join(agent.stateDir, 'repository'));
  await expect(page.getByRole('checkbox', { name: 'Pause all scheduled backups' })).not.toBeChecked();
  await shot(page, 'settings');

  expect(errors, 'no errors in the page').toEqual([]);
});
