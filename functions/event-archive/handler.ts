// event-archive: keeps every CloudEvent that crosses the broker (its Trigger has
// no filter, and the broker's dead-letter sink points here too) as structured
// JSON in S3, so `kcr events` can list, show and replay it. It is a raw handler:
// an event another function refused for its data still gets archived.
import type { ObjectStore } from '../core/storage/object-store.js';
import type { RawFunctionHandler } from '../core/runtime/handler.js';
import { archiveEvent, isDeadLetter } from './archived-event.js';

const NAME = 'event-archive';

export interface EventArchiveDeps {
  store: ObjectStore;
}

export function createEventArchive(deps: EventArchiveDeps): RawFunctionHandler {
  const { store } = deps;
  return {
    name: NAME,
    raw: true,
    // Each event of a batch is archived in turn (docs/events.md).
    acceptsBatch: true,
    emits: false,
    async handle(event, ctx) {
      // A transient S3 failure answers 503, others 500: Knative retries both, then dead-letters.
      const key = await archiveEvent(store, event);
      ctx.log.debug({ key, deadLetter: isDeadLetter(event.attributes) }, 'event archived');
      return [];
    },
  };
}
