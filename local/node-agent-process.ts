// A node-agent as its own process (node-agent/main.ts, what the DaemonSet
// runs), serving one simulated node's checkpoint directory on loopback and
// taking checkpoints from that node's kubelet port. Its tokens come from files,
// as the DaemonSet's come from a mounted Secret and a projected volume.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stopChild } from './child-process.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

interface NodeAgentProcessOptions {
  /** The node's checkpoint directory. */
  dir: string;
  /** The file holding the bearer token. */
  tokenFile: string;
  allowDelete: boolean;
  /** Its node's kubelet: the HTTPS URL, the CA that signed it, the file of the agent's ServiceAccount token. */
  kubelet?: { url: string; caFile: string; tokenFile: string };
  /** Where the agent's JSON log lines go (appended); unset: stderr. */
  logPath?: string;
  logLevel?: string;
}

export interface NodeAgentProcess {
  url: string;
  port: number;
  pid: number;
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 20_000;

export async function startNodeAgentProcess(options: NodeAgentProcessOptions): Promise<NodeAgentProcess> {
  const log = options.logPath ? createWriteStream(options.logPath, { flags: 'a' }) : undefined;
  const out = log ?? process.stderr;
  const where = options.logPath ? ` (log: ${options.logPath})` : '';
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'node-agent', 'main.ts')], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      KCR_NODE_AGENT_DIR: options.dir,
      KCR_NODE_AGENT_TOKEN_FILE: options.tokenFile,
      KCR_NODE_AGENT_HOST: '127.0.0.1',
      KCR_NODE_AGENT_PORT: '0',
      KCR_NODE_AGENT_ALLOW_DELETE: String(options.allowDelete),
      ...(options.kubelet ? { KCR_KUBELET_URL: options.kubelet.url, KCR_KUBELET_CA_FILE: options.kubelet.caFile, KCR_KUBELET_TOKEN_FILE: options.kubelet.tokenFile } : {}),
      KCR_LOG_LEVEL: options.logLevel ?? 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.stderr?.pipe(out, { end: false });
  // Should this process die without stopping the stack, the agent goes with it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    await stopChild(child, closed);
    log?.end();
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node-agent for ${options.dir} did not start within ${START_TIMEOUT_MS} ms${where}`)), START_TIMEOUT_MS);
      child.once('exit', (code, signal) => reject(new Error(`node-agent for ${options.dir} exited with ${code ?? signal} before listening${where}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        out.write(`${line}\n`);
        const entry = parseJson(line);
        if (entry?.event === 'listening' && typeof entry.port === 'number') {
          clearTimeout(timer);
          resolve(entry.port);
        }
      });
    });
    return { url: `http://127.0.0.1:${port}`, port, pid: child.pid!, close: stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
