// image.json, the record build-image writes last: what restore-pod and retention read.
import { z } from 'zod';

/** image.json: deterministic content only, so a rebuild writes the same bytes. */
export const ImageRecord = z.object({
  reference: z.string(),
  digest: z.string(),
  size: z.number().int().nonnegative(),
  mediaType: z.string(),
  repository: z.string(),
  host: z.string(),
  target: z.enum(['registry', 'oci-layout']),
  tag: z.string(),
  indexDigest: z.string(),
  manifestDigest: z.string(),
  configDigest: z.string(),
  layer: z.object({ mediaType: z.string(), digest: z.string(), size: z.number().int().nonnegative() }),
});
export type ImageRecord = z.infer<typeof ImageRecord>;
