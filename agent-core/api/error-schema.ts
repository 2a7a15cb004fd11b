// Schemas of the error contract, for transports that validate what crosses them.
import * as z from 'zod';
import { ERROR_CODES, type ErrorPayload } from './errors.js';

export const ErrorCodeSchema = z.enum(ERROR_CODES);

export const ErrorPayloadSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  retryable: z.boolean(),
}) satisfies z.ZodType<ErrorPayload>;
