// The error contract shared by every layer and every transport: a code, a retryable flag and a
// sentence a person can act on. Expected failures carry no stack trace to the user. No zod here:
// worker threads load this file, and the schemas live in error-schema.ts.

export const ERROR_CODES = [
  'NotFound',
  'Corrupt',
  'Locked',
  'PermissionDenied',
  'DeviceBusy',
  'NoSpace',
  'Cancelled',
  'Unsupported',
  'InvalidInput',
  'Internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The shape an error takes on the wire and in JSON output (schema: error-schema.ts). */
export interface ErrorPayload {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
}

/** Exit status of the CLI for each code; 0 is success and 1 is reserved for "verification found problems". */
export const EXIT_STATUS: Record<ErrorCode, number> = {
  InvalidInput: 2,
  NotFound: 3,
  Corrupt: 4,
  Locked: 5,
  PermissionDenied: 6,
  DeviceBusy: 7,
  NoSpace: 8,
  Cancelled: 9,
  Unsupported: 10,
  Internal: 70,
};

const DEFAULT_RETRYABLE: Record<ErrorCode, boolean> = {
  NotFound: false,
  Corrupt: false,
  Locked: true,
  PermissionDenied: false,
  DeviceBusy: true,
  NoSpace: false,
  Cancelled: false,
  Unsupported: false,
  InvalidInput: false,
  Internal: false,
};

export class StrataError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'StrataError';
    this.code = code;
    this.retryable = options.retryable ?? DEFAULT_RETRYABLE[code];
  }

  toPayload(): ErrorPayload {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}

export function isStrataError(value: unknown): value is StrataError {
  return value instanceof StrataError;
}

/**
 * Turns anything thrown into a StrataError. Node system errors map to the matching code; anything
 * else is Internal and keeps its cause for the log.
 */
export function toStrataError(value: unknown, context = 'The operation'): StrataError {
  if (value instanceof StrataError) return value;
  // The shape of a Node system error, spelled out so this file needs no Node typings (the renderer uses it).
  const err = value as { code?: string; path?: string; message?: string } | undefined;
  const detail = err?.path ? ` (${err.path})` : '';
  switch (err?.code) {
    case 'ENOENT':
      return new StrataError('NotFound', `${context} failed: a file or device does not exist${detail}.`, { cause: value });
    case 'EACCES':
    case 'EPERM':
      return new StrataError('PermissionDenied', `${context} failed: permission denied${detail}; run as a user who may read it (root for raw devices).`, { cause: value });
    case 'EBUSY':
      return new StrataError('DeviceBusy', `${context} failed: the device is busy${detail}; unmount it or stop the program using it.`, { cause: value });
    case 'ENOSPC':
    case 'EDQUOT':
      return new StrataError('NoSpace', `${context} failed: no space left on the device${detail}; free space or choose another location.`, { cause: value });
    case 'EROFS':
      return new StrataError('PermissionDenied', `${context} failed: the file system is read-only${detail}.`, { cause: value });
    default:
      return new StrataError('Internal', `${context} failed unexpectedly: ${err?.message ?? String(value)}`, { cause: value });
  }
}
