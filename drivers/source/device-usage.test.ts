// Finding who uses a device: mountinfo parsing, the partition and holder walk through sysfs (real
// loop devices, and a fabricated sysfs for dm holders, which this kernel cannot create), mounts
// matched by number or by source, and loop devices found by their backing file.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Scratch } from '../../test-support/disk.js';
import { deviceNumber, findMount, loopDevicesBackedBy, loopMappingsOf, mountOfDevice, parseMountInfo, stackedDevices } from './device-usage.js';

const MiB = 1 << 20;
const scratch = new Scratch();
afterAll(() => scratch.cleanup());

describe('device usage', () => {
  it('parses mountinfo lines with optional fields and escaped paths', () => {
    const text = [
      '36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue',
      '40 27 0:45 / /srv/pool rw,relatime - btrfs /dev/loop7 rw,space_cache=v2',
      '22 27 0:21 / /proc rw,relatime - proc proc rw',
      '',
    ].join('\n');
    expect(parseMountInfo(text)).toEqual([
      { majMin: '98:0', mountPoint: '/mnt/with space', source: '/dev/root' },
      { majMin: '0:45', mountPoint: '/srv/pool', source: '/dev/loop7' },
      { majMin: '0:21', mountPoint: '/proc', source: 'proc' },
    ]);
  });

  it('matches a mount by device number, or by source when the number is anonymous', () => {
    const mounts = parseMountInfo('40 27 0:45 / /srv/pool rw - btrfs /dev/loop7 rw\n41 27 7:3 / /data rw - ext4 /dev/loop3 rw\n');
    expect(findMount([{ name: 'loop7', majMin: '7:7' }], mounts)).toEqual({ device: { name: 'loop7', majMin: '7:7' }, mountPoint: '/srv/pool', itself: true });
    expect(findMount([{ name: 'loop9', majMin: '7:9' }, { name: 'loop9p1', majMin: '7:3' }], mounts)).toMatchObject({ mountPoint: '/data', itself: false });
    expect(findMount([{ name: 'loop9', majMin: '7:9' }], mounts)).toBeNull();
  });

  it('walks a loop device, its partitions and nothing else', async () => {
    const dev = scratch.loop(scratch.image('walk.img', 16 * MiB));
    const part = scratch.partition(dev, 1, MiB, 4 * MiB);
    const name = path.basename(dev);
    const devices = stackedDevices(await deviceNumber(dev));
    expect(devices.map((d) => d.name)).toEqual([name, path.basename(part)]);
    expect(devices[0]!.majMin).toMatch(/^7:\d+$/);
    expect(devices[1]!.majMin).toBe(await deviceNumber(part));
    expect(await mountOfDevice(dev)).toBeNull();
  });

  it('follows holders of the device and of its partitions, each once', () => {
    // The shape of a real sysfs: /sys/dev/block/M:m links to the device's directory, partitions
    // are subdirectories with a "partition" file, holders/ names devices under /sys/class/block.
    const sys = scratch.path('fake-sys');
    const device = (dir: string, majMin: string): void => {
      mkdirSync(path.join(dir, 'holders'), { recursive: true });
      writeFileSync(path.join(dir, 'dev'), `${majMin}\n`);
    };
    const disk = path.join(sys, 'devices/virtual/block/sdx');
    device(disk, '8:16');
    device(path.join(disk, 'sdx1'), '8:17');
    writeFileSync(path.join(disk, 'sdx1', 'partition'), '1\n');
    for (const dm of ['dm-0', 'dm-1']) device(path.join(sys, 'devices/virtual/block', dm), dm === 'dm-0' ? '253:0' : '253:1');
    mkdirSync(path.join(sys, 'dev/block'), { recursive: true });
    mkdirSync(path.join(sys, 'class/block'), { recursive: true });
    symlinkSync(disk, path.join(sys, 'dev/block/8:16'));
    for (const name of ['dm-0', 'dm-1']) symlinkSync(path.join(sys, 'devices/virtual/block', name), path.join(sys, 'class/block', name));
    // LVM on the partition (dm-0), a snapshot stacked on both the partition and dm-0 (dm-1).
    writeFileSync(path.join(disk, 'sdx1/holders/dm-0'), '');
    writeFileSync(path.join(disk, 'sdx1/holders/dm-1'), '');
    writeFileSync(path.join(sys, 'devices/virtual/block/dm-0/holders/dm-1'), '');

    const devices = stackedDevices('8:16', sys);
    expect(devices).toEqual([
      { name: 'sdx', majMin: '8:16' },
      { name: 'sdx1', majMin: '8:17' },
      { name: 'dm-0', majMin: '253:0' },
      { name: 'dm-1', majMin: '253:1' },
    ]);
    const mounts = parseMountInfo('50 27 253:1 / /home rw - xfs /dev/mapper/vg-home rw\n');
    expect(findMount(devices, mounts)).toEqual({ device: { name: 'dm-1', majMin: '253:1' }, mountPoint: '/home', itself: false });
    expect(stackedDevices('9:9', sys)).toEqual([]);
  });

  it('finds the loop devices backed by a file, by its canonical path', () => {
    const file = scratch.image('backing.img', 4 * MiB);
    const link = scratch.path('link.img');
    symlinkSync(file, link);
    expect(loopDevicesBackedBy(link)).toEqual([]);
    const dev = scratch.loop(file);
    expect(loopDevicesBackedBy(link)).toEqual([dev]);
    expect(loopDevicesBackedBy(scratch.path('missing.img'))).toEqual([]);
  });

  it('reports each loop device’s window onto the file: offset and size', () => {
    const file = scratch.image('windows.img', 4 * MiB);
    const whole = scratch.loop(file);
    const window = scratch.loop(file, { offsetBytes: 1 * MiB, sizeBytes: 2 * MiB });
    const byDevice = new Map(loopMappingsOf(file).map((m) => [m.device, m]));
    expect(byDevice.get(whole)).toEqual({ device: whole, offsetBytes: 0, sizeBytes: 4 * MiB });
    expect(byDevice.get(window)).toEqual({ device: window, offsetBytes: 1 * MiB, sizeBytes: 2 * MiB });
    expect(byDevice.size).toBe(2);
  });
});
