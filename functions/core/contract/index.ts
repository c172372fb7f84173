export * from './events.js';
export * from './build.js';
export * from './checkpoint-id.js';
export * from './kubelet-archive.js';
