// What every request handler of the simulated API server works with: the object
// API (store and registry), the kubelets behind it, and the open streams to end on close.

import type { ObjectApi } from '../api.js';
import type { NodeBackend } from './node-backend.js';

export interface Serving {
  api: ObjectApi;
  nodes: NodeBackend;
  /** Closes an open watch or log stream; the server calls them all when it stops. */
  closers: Set<() => void>;
  bookmarkIntervalMs: number;
}
