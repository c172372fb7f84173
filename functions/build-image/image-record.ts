// image.json's record lives with the other stored records; this name stays
// for test/local/registry-gc.test.ts, which still imports it from here.
export { ImageRecord } from '../core/storage/records.js';
