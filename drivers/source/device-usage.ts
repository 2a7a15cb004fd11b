// Who is using a block device or an image file: mounts of the device, of its partitions and of
// whatever is stacked on it (dm, md), and loop devices backed by a file. Read from /proc and /sys.
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';

/** A block device as sysfs names it, with its major:minor. */
export interface BlockDeviceNode {
  readonly name: string;
  readonly majMin: string;
}

export interface MountEntry {
  /** The st_dev of the mount: the device's major:minor, except for btrfs and other anonymous devices. */
  readonly majMin: string;
  readonly mountPoint: string;
  /** The mount source as given to mount (/dev/loop3, /dev/mapper/vg-root, tmpfs, …). */
  readonly source: string;
}

/** A device in use, with the device (itself, a partition or a holder) that is mounted. */
export interface DeviceMount {
  readonly device: BlockDeviceNode;
  readonly mountPoint: string;
  /** False when what is mounted is a partition of the device or a device stacked on it. */
  readonly itself: boolean;
}

/** major:minor of a device node; bigint stat because Linux packs dev_t in 64 bits. */
export async function deviceNumber(devicePath: string): Promise<string> {
  const rdev = (await stat(devicePath, { bigint: true })).rdev;
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** mountinfo escapes space, tab, newline and backslash in paths as three octal digits. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses /proc/self/mountinfo (proc(5)): optional fields end at a lone "-", then type and source. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields.length < separator + 3) continue;
    out.push({ majMin: fields[2]!, mountPoint: unescapeMountPath(fields[4]!), source: unescapeMountPath(fields[separator + 2]!) });
  }
  return out;
}

function readTrimmed(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * The device, its partitions and every device stacked on any of them (the holders: LVM and
 * dm-crypt volumes, md arrays), each once. Empty if sysfs does not know the device.
 */
export function stackedDevices(majMin: string, sysRoot = '/sys'): BlockDeviceNode[] {
  const out: BlockDeviceNode[] = [];
  const seen = new Set<string>();
  const visit = (dir: string): void => {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      return;
    }
    if (seen.has(real)) return;
    seen.add(real);
    const number = readTrimmed(path.join(real, 'dev'));
    if (number === null) return;
    out.push({ name: path.basename(real), majMin: number });
    for (const entry of listDir(real)) {
      if (existsSync(path.join(real, entry, 'partition'))) visit(path.join(real, entry));
    }
    for (const holder of listDir(path.join(real, 'holders'))) visit(path.join(sysRoot, 'class', 'block', holder));
  };
  visit(path.join(sysRoot, 'dev', 'block', majMin));
  return out;
}

/** The canonical path of a mount source that names a device node, else null. */
function deviceSource(source: string): string | null {
  if (!source.startsWith('/dev/')) return null;
  try {
    return realpathSync(source);
  } catch {
    return source;
  }
}

/**
 * The first mount of any of the devices (the first is the device asked about, as stackedDevices
 * lists it). Matches the mount's device number and, for filesystems
 * that report an anonymous one (btrfs), its source path.
 */
export function findMount(devices: readonly BlockDeviceNode[], mounts: readonly MountEntry[]): DeviceMount | null {
  for (const mount of mounts) {
    const source = deviceSource(mount.source);
    const device = devices.find((d) => d.majMin === mount.majMin || source === `/dev/${d.name}`);
    if (device) return { device, mountPoint: mount.mountPoint, itself: device === devices[0] };
  }
  return null;
}

/** Where the device at devicePath, a partition of it or a device stacked on it is mounted, if anywhere. */
export async function mountOfDevice(devicePath: string): Promise<DeviceMount | null> {
  const devices = stackedDevices(await deviceNumber(devicePath));
  return findMount(devices, parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')));
}

/** A loop device's window onto its backing file. */
export interface LoopMapping {
  readonly device: string;
  /** Where the device starts in the file (losetup --offset). */
  readonly offsetBytes: number;
  /** The device's size (the file's size less the offset, or losetup --sizelimit, rounded down to 512 bytes). */
  readonly sizeBytes: number;
}

/** Loop devices whose backing file is filePath (compared as canonical paths), with their windows onto it. */
export function loopMappingsOf(filePath: string, sysRoot = '/sys'): LoopMapping[] {
  let target: string;
  try {
    target = realpathSync(filePath);
  } catch {
    return [];
  }
  const out: LoopMapping[] = [];
  for (const name of listDir(path.join(sysRoot, 'block'))) {
    if (!name.startsWith('loop')) continue;
    const dir = path.join(sysRoot, 'block', name);
    if (readTrimmed(path.join(dir, 'loop', 'backing_file')) !== target) continue;
    out.push({
      device: `/dev/${name}`,
      offsetBytes: Number(readTrimmed(path.join(dir, 'loop', 'offset')) ?? 0),
      sizeBytes: Number(readTrimmed(path.join(dir, 'size')) ?? 0) * 512,
    });
  }
  return out;
}

/** Loop devices whose backing file is filePath (compared as canonical paths). */
export function loopDevicesBackedBy(filePath: string, sysRoot = '/sys'): string[] {
  return loopMappingsOf(filePath, sysRoot).map((m) => m.device);
}
