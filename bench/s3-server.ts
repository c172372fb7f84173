// The S3 server of the artifact benchmark in a process of its own: OpenStack
// Swift with s3api (local/swift-s3.ts; the default, a production object store)
// or the embedded s3rver (local/embedded-s3.ts), which in the bench's own
// process would share one event loop with the node-agent. Prints one JSON line
// (S3ServerInfo) once ready; stops (and removes its storage) on SIGTERM.
//
//   node --import tsx bench/s3-server.ts [swift|s3rver]
import { startEmbeddedS3 } from '../local/embedded-s3.js';
import { startSwiftS3 } from '../local/swift-s3.js';

export interface S3ServerInfo {
  kind: 'swift' | 's3rver';
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /** How long the server took to answer ListBuckets. */
  startMs: number;
}

const kind = process.argv[2] ?? 'swift';
if (kind !== 'swift' && kind !== 's3rver') throw new Error(`bench/s3-server.ts takes swift or s3rver, not ${kind}`);
const started = performance.now();
const s3 = kind === 'swift' ? await startSwiftS3() : await startEmbeddedS3();
const info: S3ServerInfo = { kind, endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, region: s3.region, startMs: performance.now() - started };
process.stdout.write(`${JSON.stringify(info)}\n`);
process.once('SIGTERM', () => {
  void s3.stop().then(() => process.exit(0));
});
