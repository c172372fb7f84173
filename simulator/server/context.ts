// What every request handler of the simulated API server works with: the object
// API (store and registry), the kubelets behind it, the token table, and the open
// streams to end on close.

import type { ObjectApi } from '../api.js';
import type { Identities } from './identities.js';
import type { NodeBackend } from './node-backend.js';

export interface Serving {
  api: ObjectApi;
  nodes: NodeBackend;
  /** Who each bearer token is (TokenReview, TokenRequest). */
  identities: Identities;
  /** Closes an open watch or log stream; the server calls them all when it stops. */
  closers: Set<() => void>;
  bookmarkIntervalMs: number;
}
