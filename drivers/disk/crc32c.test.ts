// CRC-32C against the published check value, and the skipped checksum field.
import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';

describe('crc32c', () => {
  it('matches the standard check value and treats the skipped field as zeros', () => {
    expect(crc32c(Buffer.from('123456789', 'ascii'))).toBe(0xe3069283);
    expect(crc32c(Buffer.from('ab\x01\x02\x03\x04cd', 'latin1'), 2)).toBe(crc32c(Buffer.from('ab\0\0\0\0cd', 'latin1')));
  });
});
