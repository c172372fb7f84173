// event-archive as a process: the S3 store from the KCR_S3_* variables, then the runtime.
import { S3ObjectStore, s3OptionsFromEnv } from '../core/storage/s3.js';
import type { RawFunctionHandler } from '../core/runtime/handler.js';
import { createEventArchive } from './handler.js';

/** The handler with its dependencies built from the environment; creates the bucket when missing. */
export async function eventArchiveFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<RawFunctionHandler> {
  const store = new S3ObjectStore(s3OptionsFromEnv(env));
  await store.ensureBucket();
  return createEventArchive({ store });
}
