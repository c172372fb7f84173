// The objects a fresh cluster starts with: the four system namespaces and one Node
// per simulated node (Ready, with capacity, addresses and node info like a kubeadm node).

import { randomBytes } from 'node:crypto';
import type { ObjectApi } from '../api.js';
import type { ResourceRegistry } from '../resources.js';
import { nowRfc3339, type KubeObject } from '../types.js';

export function seedBaseObjects(api: ObjectApi, registry: ResourceRegistry, nodeNames: string[]): void {
  const nsType = registry.find('', 'v1', 'namespaces')!;
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    api.create(nsType, undefined, { metadata: { name: ns } });
  }
  const nodeType = registry.find('', 'v1', 'nodes')!;
  nodeNames.forEach((name, i) => api.create(nodeType, undefined, nodeObject(name, i)));
}

function nodeObject(name: string, index: number): KubeObject {
  const now = nowRfc3339();
  return {
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': 'amd64',
      },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0' },
    },
    spec: { podCIDR: `10.244.${index}.0/24`, podCIDRs: [`10.244.${index}.0/24`] },
    status: {
      capacity: { cpu: '4', memory: '8148204Ki', pods: '110', 'ephemeral-storage': '102350Mi' },
      allocatable: { cpu: '4', memory: '8045804Ki', pods: '110', 'ephemeral-storage': '96589Mi' },
      conditions: [
        { type: 'MemoryPressure', status: 'False', lastHeartbeatTime: now, lastTransitionTime: now, reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available' },
        { type: 'DiskPressure', status: 'False', lastHeartbeatTime: now, lastTransitionTime: now, reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' },
        { type: 'PIDPressure', status: 'False', lastHeartbeatTime: now, lastTransitionTime: now, reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' },
        { type: 'Ready', status: 'True', lastHeartbeatTime: now, lastTransitionTime: now, reason: 'KubeletReady', message: 'kubelet is posting ready status' },
      ],
      addresses: [
        { type: 'InternalIP', address: `192.168.49.${index + 2}` },
        { type: 'Hostname', address: name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: randomBytes(16).toString('hex'),
        systemUUID: randomBytes(16).toString('hex'),
        bootID: randomBytes(16).toString('hex'),
        kernelVersion: '6.1.0-28-amd64',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        containerRuntimeVersion: 'cri-o://1.31.0',
        kubeletVersion: 'v1.31.0',
        kubeProxyVersion: 'v1.31.0',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
    },
  };
}
