// event-archive: keeps every CloudEvent that crosses the broker (its Trigger has
// no filter, and the broker's dead-letter sink points here too) as structured
// JSON in S3, so `kcr events` can list, show and replay it. It is a raw handler:
// an event another function refused for its data still gets archived.
import type { ObjectStore } from '../core/storage/object-store.js';
import type { RawEvent, RawFunctionHandler } from '../core/runtime/handler.js';
import { TransientError, errorMessage } from '../core/runtime/errors.js';
import { archiveKey, isDeadLetter, type ArchivableEvent } from './archived-event.js';

export interface EventArchiveDeps {
  store: ObjectStore;
}

const CORE = new Set(['specversion', 'id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'dataschema', 'data']);

/** The key-relevant view of a raw event: the same key on every redelivery. */
function archivable(event: RawEvent): ArchivableEvent {
  const a = event.attributes;
  const extensions = Object.fromEntries(Object.entries(a).filter(([k, v]) => !CORE.has(k) && v !== undefined && v !== null).map(([k, v]) => [k, String(v)]));
  return {
    type: event.type,
    id: event.id,
    source: event.source,
    ...(typeof a.subject === 'string' ? { subject: a.subject } : {}),
    ...(typeof a.time === 'string' ? { time: a.time } : {}),
    data: a.data,
    extensions,
  };
}

export function createEventArchive(deps: EventArchiveDeps): RawFunctionHandler {
  const { store } = deps;
  return {
    name: 'event-archive',
    raw: true,
    acceptsBatch: true,
    emits: false,
    async handle(event, ctx) {
      const view = archivable(event);
      const key = archiveKey(view);
      try {
        // Same event, same key, same bytes: a redelivery overwrites with identical content.
        await store.putJson(key, event.attributes);
      } catch (err) {
        // Transient S3 failures answer 503; others 500. Knative retries both, then dead-letters.
        const message = `archiving event ${event.id} (${event.type}) to s3://${store.bucket}/${key} failed: ${errorMessage(err)}`;
        throw err instanceof TransientError ? new TransientError(message, { cause: err }) : new Error(message, { cause: err });
      }
      ctx.log.debug({ key, deadLetter: isDeadLetter(view.extensions) }, 'event archived');
      return [];
    },
  };
}
