// What the CLI touches outside itself, injectable so tests run it in-process.
import type { ObjectStore } from '../functions/core/storage/object-store.js';
import { S3ObjectStore } from '../functions/core/storage/s3.js';

export interface S3Settings {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  bucket: string;
}

interface Output {
  write(text: string): unknown;
  /** A terminal (process.stderr on one): progress is drawn as bars there. */
  isTTY?: boolean;
  columns?: number;
}

export interface CliIo {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
  now?: () => Date;
  fetch?: typeof fetch;
  openStore: (settings: S3Settings) => ObjectStore;
  /** `kcr`, or `kubectl kcr` when run as the kubectl plugin: what help and examples call it. */
  programName?: string;
  /** Ends what runs until interrupted (`get -w`): main.ts aborts it on SIGINT/SIGTERM. */
  signal?: AbortSignal;
}

export type CliIoInput = Omit<CliIo, 'openStore'> & Partial<Pick<CliIo, 'openStore'>>;

export function openS3Store(settings: S3Settings): ObjectStore {
  return new S3ObjectStore(settings);
}
