// The event contract (docs/events.md, docs/architecture.md): one zod schema per CloudEvent type.
// The TypeScript types are inferred from the schemas, so they cannot drift apart.
import { z } from 'zod';
import { CHECKPOINT_ID_PATTERN } from './checkpoint-id.js';

const dns1123Label = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label')
  .max(63);
const dns1123Subdomain = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a DNS-1123 subdomain')
  .max(253);
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
const rfc3339 = z.string().refine((s) => /^\d{4}-\d{2}-\d{2}T/.test(s) && !Number.isNaN(Date.parse(s)), 'must be an RFC 3339 time');

export const WorkloadKind = z.enum(['Deployment', 'StatefulSet']);
export type WorkloadKind = z.infer<typeof WorkloadKind>;
/** A checkpointed pod belongs to a workload, or stands alone (kind Pod). */
export const OwnerKind = z.enum(['Deployment', 'StatefulSet', 'Pod']);
export type OwnerKind = z.infer<typeof OwnerKind>;

const CheckpointIdSchema = z.string().regex(CHECKPOINT_ID_PATTERN, 'must be a kcr checkpoint id (yyyymmddThhmmssZ-<12 hex>)');

export const WorkloadRef = z.object({ namespace: dns1123Label, kind: WorkloadKind, name: dns1123Subdomain }).strict();
export type WorkloadRef = z.infer<typeof WorkloadRef>;

/** The resync PingSource (sources/resync.yaml) asks schedule-sync to reconcile every workload. */
export const ResyncPing = z.object({ resync: z.literal(true) }).strict();
export const PingData = z.union([WorkloadRef, ResyncPing]);
export type PingData = z.infer<typeof PingData>;

/** The data of an ApiServerSource event in Resource mode: the whole Kubernetes object. */
export const ResourceEventData = z
  .object({
    apiVersion: z.string().min(1),
    kind: z.string().min(1),
    metadata: z.object({ name: z.string().min(1), namespace: z.string().optional(), uid: z.string().optional() }).loose(),
  })
  .loose();
export type ResourceEventData = z.infer<typeof ResourceEventData>;

export const CheckpointRequestedData = z.union([WorkloadRef, z.object({ namespace: dns1123Label, pod: dns1123Subdomain, container: dns1123Label.optional() }).strict()]);
export type CheckpointRequestedData = z.infer<typeof CheckpointRequestedData>;

export const CheckpointCreatedData = z
  .object({
    id: CheckpointIdSchema,
    namespace: dns1123Label,
    workload: z.object({ kind: OwnerKind, name: dns1123Subdomain }).strict(),
    pod: dns1123Subdomain,
    podUid: z.string().min(1),
    container: dns1123Label,
    node: dns1123Subdomain,
    archivePath: z.string().startsWith('/').max(4096),
    checkpointedAt: rfc3339,
  })
  .strict();
export type CheckpointCreatedData = z.infer<typeof CheckpointCreatedData>;

export const Artifact = z.object({ uri: z.string().regex(/^s3:\/\/[^/]+\/.+/, 'must be s3://bucket/key'), size: z.number().int().nonnegative(), sha256: sha256Hex }).strict();
export const CheckpointStoredData = CheckpointCreatedData.extend({ artifact: Artifact }).strict();
export type CheckpointStoredData = z.infer<typeof CheckpointStoredData>;

export const ImageRef = z
  .object({
    reference: z.string().regex(/^[^@\s]+@sha256:[0-9a-f]{64}$/, 'must reference the image by digest (repo@sha256:…)'),
    digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    size: z.number().int().nonnegative(),
  })
  .strict();
export const ImageBuiltData = CheckpointStoredData.extend({ image: ImageRef }).strict();
export type ImageBuiltData = z.infer<typeof ImageBuiltData>;

export const RestoreStrategy = z.enum(['in-place', 'replacement', 'cold-start']);
export const PodRestoredData = z
  .object({
    namespace: dns1123Label,
    pod: dns1123Subdomain,
    container: dns1123Label,
    checkpointId: CheckpointIdSchema,
    image: z.string().min(1),
    strategy: RestoreStrategy,
  })
  .strict();
export type PodRestoredData = z.infer<typeof PodRestoredData>;

/**
 * `kcr restore --to`: restore a pod, or every pod of a workload, to a chosen
 * checkpoint of its own workload and container. A hint: restore-pod re-reads
 * the pods, the checkpoint's records and the opt-in before it patches.
 */
export const RestoreRequestedData = z.union([
  z.object({ namespace: dns1123Label, pod: dns1123Subdomain, checkpointId: CheckpointIdSchema }).strict(),
  z.object({ namespace: dns1123Label, kind: WorkloadKind, name: dns1123Subdomain, checkpointId: CheckpointIdSchema }).strict(),
]);
export type RestoreRequestedData = z.infer<typeof RestoreRequestedData>;

export const FailureStage = z.enum(['schedule', 'request', 'store', 'build', 'restore', 'archive']);
export type FailureStage = z.infer<typeof FailureStage>;
/** "The ref so far + {stage, reason}": every field of the pipeline optional but the namespace. */
export const FailedData = ImageBuiltData.partial()
  .extend({
    namespace: dns1123Label,
    kind: WorkloadKind.optional(),
    name: dns1123Subdomain.optional(),
    checkpointId: CheckpointIdSchema.optional(),
    stage: FailureStage,
    reason: z.string().min(1),
  })
  .strict();
export type FailedData = z.infer<typeof FailedData>;

export const ScheduleAction = z.enum(['created', 'updated', 'deleted', 'rejected']);
export type ScheduleAction = z.infer<typeof ScheduleAction>;
export const ScheduleSyncedData = WorkloadRef.extend({
  schedule: z.string(),
  action: ScheduleAction,
  reason: z.string().optional(),
}).strict();
export type ScheduleSyncedData = z.infer<typeof ScheduleSyncedData>;

export const EventTypes = {
  ping: 'dev.knative.sources.ping',
  resourceAdd: 'dev.knative.apiserver.resource.add',
  resourceUpdate: 'dev.knative.apiserver.resource.update',
  resourceDelete: 'dev.knative.apiserver.resource.delete',
  checkpointRequested: 'io.kcr.checkpoint.requested',
  checkpointCreated: 'io.kcr.checkpoint.created',
  checkpointStored: 'io.kcr.checkpoint.stored',
  imageBuilt: 'io.kcr.image.built',
  podRestored: 'io.kcr.pod.restored',
  restoreRequested: 'io.kcr.restore.requested',
  checkpointFailed: 'io.kcr.checkpoint.failed',
  restoreFailed: 'io.kcr.restore.failed',
  scheduleSynced: 'io.kcr.schedule.synced',
} as const;

/** Every type of the contract, with the schema its `data` must satisfy. */
export const ContractSchemas = {
  [EventTypes.ping]: PingData,
  [EventTypes.resourceAdd]: ResourceEventData,
  [EventTypes.resourceUpdate]: ResourceEventData,
  [EventTypes.resourceDelete]: ResourceEventData,
  [EventTypes.checkpointRequested]: CheckpointRequestedData,
  [EventTypes.checkpointCreated]: CheckpointCreatedData,
  [EventTypes.checkpointStored]: CheckpointStoredData,
  [EventTypes.imageBuilt]: ImageBuiltData,
  [EventTypes.podRestored]: PodRestoredData,
  [EventTypes.restoreRequested]: RestoreRequestedData,
  [EventTypes.checkpointFailed]: FailedData,
  [EventTypes.restoreFailed]: FailedData,
  [EventTypes.scheduleSynced]: ScheduleSyncedData,
} as const;

export type EventType = keyof typeof ContractSchemas;
export type EventData<T extends EventType> = z.infer<(typeof ContractSchemas)[T]>;
export const ALL_EVENT_TYPES = Object.keys(ContractSchemas) as EventType[];

export function isContractType(type: string): type is EventType {
  return Object.hasOwn(ContractSchemas, type);
}

export type DataCheck<T extends EventType> = { ok: true; data: EventData<T> } | { ok: false; error: string };

/** Validates `data` against the contract for `type`; the error names each bad field. */
export function checkData<T extends EventType>(type: T, data: unknown): DataCheck<T> {
  const result = ContractSchemas[type].safeParse(data);
  if (result.success) return { ok: true, data: result.data as EventData<T> };
  const issues = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(data)'}: ${i.message}`);
  return { ok: false, error: `data does not match ${type}: ${issues.join('; ')}` };
}
