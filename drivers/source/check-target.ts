// The restore wizard's look before it leaps: what a target path is, whether the snapshot fits, and
// whether restoring would overwrite something in use. Read-only; openTarget enforces the same rules.
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import type { TargetCheck } from '../../agent-core/api/console-config.js';
import { deviceSizeBytes } from '../../native/index.js';
import { loopDevicesBackedBy, mountOfDevice } from './device-usage.js';

export async function checkTarget(targetPath: string, neededBytes: number): Promise<TargetCheck> {
  const base = { path: targetPath, neededBytes, mountedAt: null, usedBy: [] as string[] };
  if (!path.isAbsolute(targetPath)) {
    return { ...base, kind: 'missing', sizeBytes: null, ok: false, needsForce: false, problems: ['Give the target as an absolute path, such as /home/me/restored.img or /dev/sdc.'] };
  }
  let st;
  try {
    st = await stat(targetPath);
  } catch {
    // A new image file: its folder must exist and be writable.
    try {
      const dir = await stat(path.dirname(targetPath));
      if (!dir.isDirectory()) throw new Error('not a folder');
    } catch {
      return { ...base, kind: 'missing', sizeBytes: null, ok: false, needsForce: false, problems: [`The folder ${path.dirname(targetPath)} does not exist; create it first or choose another path.`] };
    }
    return { ...base, kind: 'missing', sizeBytes: null, ok: true, needsForce: false, problems: [] };
  }
  if (st.isFile()) {
    const usedBy = loopDevicesBackedBy(targetPath);
    const problems: string[] = [];
    if (usedBy.length > 0) problems.push(`The file is attached as ${usedBy.join(', ')}; detach it (losetup -d) before restoring over it.`);
    if (st.size > 0) problems.push('The file already exists; restoring replaces its content.');
    return { ...base, kind: 'file', sizeBytes: st.size, usedBy, ok: problems.length === 0, needsForce: problems.length > 0, problems };
  }
  if (st.isBlockDevice()) {
    let sizeBytes: number | null = null;
    const problems: string[] = [];
    try {
      const handle = await open(targetPath, constants.O_RDONLY);
      try {
        sizeBytes = deviceSizeBytes(handle.fd);
      } finally {
        await handle.close();
      }
    } catch {
      problems.push(`The device cannot be opened; restore as a user who may write to it (root).`);
    }
    const tooSmall = sizeBytes !== null && sizeBytes < neededBytes;
    if (tooSmall) problems.push(`The device holds ${sizeBytes} bytes but the snapshot needs ${neededBytes}; choose a larger one.`);
    const mount = await mountOfDevice(targetPath).catch(() => null);
    if (mount) problems.push(`The device${mount.itself ? '' : ` (through ${mount.device.name})`} is mounted at ${mount.mountPoint}; unmount it first.`);
    const fatal = tooSmall || sizeBytes === null;
    return { ...base, kind: 'block-device', sizeBytes, mountedAt: mount?.mountPoint ?? null, ok: problems.length === 0, needsForce: !fatal && problems.length > 0, problems };
  }
  return { ...base, kind: 'other', sizeBytes: null, ok: false, needsForce: false, problems: ['The target is neither a file nor a block device; give an image file path or a device such as /dev/sdc.'] };
}
