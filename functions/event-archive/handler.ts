// event-archive: keeps every CloudEvent that crosses the broker (its Trigger has
// no filter, and the broker's dead-letter sink points here too) as structured
// JSON in S3, so `kcr events` can list, show and replay it.
import type { ObjectStore } from '../adapters/object-store.js';
import { ALL_EVENT_TYPES, type EventType } from '../contract/events.js';
import type { FunctionHandler } from '../runtime/handler.js';
import { TransientError, errorMessage } from '../runtime/errors.js';
import { archiveKey, isDeadLetter, toStructured } from './archived-event.js';

export interface EventArchiveDeps {
  store: ObjectStore;
}

export function createEventArchive(deps: EventArchiveDeps): FunctionHandler<EventType> {
  const { store } = deps;
  return {
    name: 'event-archive',
    accepts: ALL_EVENT_TYPES,
    acceptsBatch: true,
    emits: false,
    async handle(event, ctx) {
      const key = archiveKey(event);
      try {
        // Same event, same key, same bytes: a redelivery overwrites with identical content.
        await store.putJson(key, toStructured(event));
      } catch (err) {
        // Transient S3 failures answer 503; others 500. Knative retries both, then dead-letters.
        const message = `archiving event ${event.id} (${event.type}) to s3://${store.bucket}/${key} failed: ${errorMessage(err)}`;
        throw err instanceof TransientError ? new TransientError(message, { cause: err }) : new Error(message, { cause: err });
      }
      ctx.log.debug({ key, deadLetter: isDeadLetter(event.extensions) }, 'event archived');
      return [];
    },
  };
}
