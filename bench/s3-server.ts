// The embedded s3rver (local/embedded-s3.ts) in a process of its own for the artifact
// benchmark: in the bench's own process it would share one event loop with the
// node-agent, and each would slow the other down. Prints one JSON line
// (S3ServerInfo) once listening; stops and removes its storage on SIGTERM.
//
//   node --import tsx bench/s3-server.ts
import { startEmbeddedS3 } from '../local/embedded-s3.js';

export interface S3ServerInfo {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
}

const s3 = await startEmbeddedS3();
const info: S3ServerInfo = { endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, region: s3.region };
process.stdout.write(`${JSON.stringify(info)}\n`);
process.once('SIGTERM', () => {
  void s3.stop().then(() => process.exit(0));
});
