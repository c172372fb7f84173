// The in-cluster pod reader moved to functions/core/kubernetes/ (build-image
// reads pods with it too); test/store-artifact/node-agent-discovery.test.ts
// still imports it from here.
export { InClusterPods, SERVICE_ACCOUNT_DIR, type InClusterPodsOptions } from '../core/kubernetes/in-cluster-pods.js';
