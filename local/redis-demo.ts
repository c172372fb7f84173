// The demo's real stateful server (podman runtime only): Debian's redis-server in a
// locally built image, persistence off (its data lives only in process memory), reached
// over a unix socket in a hostPath volume (CRIU cannot dump TCP sockets on this kernel).
// It is filled with random values, and after a kill and a restore the same keys and
// values must be there. The client is Debian's redis-cli on the host.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';

export const REDIS_SOCKET = 'redis.sock';

/** A Deployment running Redis with persistence off, listening only on a unix socket in `socketDir`. */
export function redisDeployment(image: string, socketDir: string, annotations: Record<string, string>): V1Deployment {
  mkdirSync(socketDir, { recursive: true });
  const args = ['--unixsocket', `/sock/${REDIS_SOCKET}`, '--unixsocketperm', '777', '--port', '0', '--save', '', '--appendonly', 'no'];
  return {
    metadata: { name: 'redis', annotations },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'redis' } },
      template: {
        metadata: { labels: { app: 'redis' } },
        spec: {
          containers: [{ name: 'app', image, args, volumeMounts: [{ name: 'sock', mountPath: '/sock' }] }],
          volumes: [{ name: 'sock', hostPath: { path: socketDir, type: 'Directory' } }],
        },
      },
    },
  };
}

/** Runs redis-cli against the socket; `input` is piped as commands, one per line. */
export function redisCli(socketDir: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('redis-cli', ['-s', join(socketDir, REDIS_SOCKET), ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim());
    });
    // redis-cli exits at once when the socket is not there yet: its stdin is then closed.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

export interface RedisSample {
  keys: number;
  sample: Map<string, string>;
}

/** Sets `keys` keys to random 100-character values; returns a sample of them to check after a restore. */
export async function fillRedis(socketDir: string, keys: number): Promise<RedisSample> {
  const sample = new Map<string, string>();
  const lines: string[] = [];
  for (let i = 0; i < keys; i++) {
    const value = randomBytes(50).toString('hex');
    if (i % Math.max(1, Math.floor(keys / 5)) === 0) sample.set(`key:${i}`, value);
    lines.push(`SET key:${i} ${value}`);
  }
  await redisCli(socketDir, [], `${lines.join('\n')}\n`);
  return { keys, sample };
}

/** What Redis holds of a sample: DBSIZE, and the keys whose value differs. */
export async function checkRedis(socketDir: string, expected: RedisSample): Promise<{ dbsize: number; wrong: string[] }> {
  const dbsize = Number(await redisCli(socketDir, ['DBSIZE']));
  const wrong: string[] = [];
  for (const [key, value] of expected.sample) if ((await redisCli(socketDir, ['GET', key])) !== value) wrong.push(key);
  return { dbsize, wrong };
}
