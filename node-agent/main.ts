// CLI entry of the node-agent DaemonSet: configuration from env, SIGTERM closes it.
import { pino } from 'pino';
import { readEnv } from '../functions/core/runtime/config.js';
import { logUnhandledRejections } from '../functions/core/runtime/logger.js';
import { kubeletCheckpointer } from './kubelet-client.js';
import { startNodeAgent } from './server.js';
import { tokenGetter } from '../functions/core/runtime/token.js';

const env = readEnv([
  'KCR_NODE_AGENT_DIR',
  'KCR_NODE_AGENT_HOST',
  'KCR_NODE_AGENT_PORT',
  'KCR_NODE_AGENT_TOKEN',
  'KCR_NODE_AGENT_TOKEN_FILE',
  'KCR_NODE_AGENT_ALLOW_DELETE',
  'KCR_KUBELET_URL',
  'KCR_KUBELET_CA_FILE',
  'KCR_KUBELET_TOKEN_FILE',
  'KCR_LOG_LEVEL',
]);
const logger = pino({ name: 'node-agent', level: env.KCR_LOG_LEVEL });
logUnhandledRejections(logger);
const agent = await startNodeAgent({
  dir: env.KCR_NODE_AGENT_DIR,
  host: env.KCR_NODE_AGENT_HOST,
  port: env.KCR_NODE_AGENT_PORT,
  token: tokenGetter({ token: env.KCR_NODE_AGENT_TOKEN, tokenFile: env.KCR_NODE_AGENT_TOKEN_FILE }),
  allowDelete: env.KCR_NODE_AGENT_ALLOW_DELETE,
  ...(env.KCR_KUBELET_URL ? { kubelet: kubeletCheckpointer({ url: env.KCR_KUBELET_URL, caFile: env.KCR_KUBELET_CA_FILE, tokenFile: env.KCR_KUBELET_TOKEN_FILE }) } : {}),
  logger,
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    logger.info({ event: 'shutdown', signal }, 'node-agent shutting down');
    void agent.close().then(() => process.exit(0));
  });
}
