// Opens what the user named as a backup source: an image file or a block device, each with its
// driver; anything else is refused with a sentence saying what to give instead.
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
      throw new StrataError('NotFound', `The source ${path} does not exist; give a disk image file or a block device such as /dev/sdb.`);
    }
    throw toStrataError(err, `Opening the source ${path}`);
  }
  try {
    if (st.isFile()) return await FileSource.open(path);
    if (st.isBlockDevice()) return await BlockDeviceSource.open(path);
  } catch (err) {
    throw toStrataError(err, `Opening the source ${path}`);
  }
  const what = st.isDirectory() ? 'a directory' : st.isCharacterDevice() ? 'a character device' : 'neither a file nor a block device';
  throw new StrataError('InvalidInput', `The source ${path} is ${what}; give a disk image file or a block device such as /dev/sdb.`);
}
