// The node-agent bearer token, shared by the agent and its client: a file
// mounted from a Secret (re-read when it changes, so rotation needs no restart)
// or, for local runs, a plain value.
import { readFileSync, statSync } from 'node:fs';
import { isSecretPlaceholder, placeholderHint } from './config.js';
import { ConfigError } from './errors.js';

interface TokenSource {
  token?: string | undefined;
  tokenFile?: string | undefined;
}

const PLACEHOLDER_HINT = placeholderHint('node-agent.env', 'kcr-node-agent-token');

/** Returns a getter for the current token; throws a ConfigError when neither source is set or the token is the committed placeholder. */
export function tokenGetter({ token, tokenFile }: TokenSource): () => string {
  if (tokenFile) {
    let cached = { mtimeMs: -1, value: '' };
    const read = () => {
      const { mtimeMs } = statSync(tokenFile);
      if (mtimeMs !== cached.mtimeMs) cached = { mtimeMs, value: readFileSync(tokenFile, 'utf8').trim() };
      if (!cached.value) throw new ConfigError(`node-agent token file ${tokenFile} is empty`);
      if (isSecretPlaceholder(cached.value)) throw new ConfigError(`node-agent token in ${tokenFile} ${PLACEHOLDER_HINT}`);
      return cached.value;
    };
    read(); // fail at start-up, not on the first request
    return read;
  }
  if (token && isSecretPlaceholder(token)) throw new ConfigError(`KCR_NODE_AGENT_TOKEN ${PLACEHOLDER_HINT}`);
  if (token) return () => token;
  throw new ConfigError('a node-agent token is required: set KCR_NODE_AGENT_TOKEN_FILE (a mounted Secret) or KCR_NODE_AGENT_TOKEN');
}
