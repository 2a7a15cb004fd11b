// Opens what the user named as a backup source: an image file or a block device.
import { stat } from 'node:fs/promises';
import { StrataError, toStrataError } from '../../agent-core/api/errors.js';
import type { BlockSource } from '../../agent-core/block-source.js';
import { BlockDeviceSource } from './block-device-source.js';
import { FileSource } from './file-source.js';

export async function openSource(path: string): Promise<BlockSource> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new StrataError('NotFound', `${path} does not exist; give an image file or a block device such as /dev/sdb.`);
    }
    throw toStrataError(err, `Opening ${path}`);
  }
  try {
    if (st.isFile()) return await FileSource.open(path);
    if (st.isBlockDevice()) return await BlockDeviceSource.open(path);
  } catch (err) {
    throw toStrataError(err, `Opening ${path}`);
  }
  throw new StrataError('InvalidInput', `${path} is neither an image file nor a block device; give a disk image or a device such as /dev/sdb.`);
}
