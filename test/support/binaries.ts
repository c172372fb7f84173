// Tests that need a binary from Debian skip locally when it is missing, with a
// message; CI sets KCR_REQUIRE_BINARIES=1, which turns that skip into a failure.
import { findBinary } from '../../local/binaries.js';

export const binariesRequired = process.env.KCR_REQUIRE_BINARIES === '1';

/**
 * Returns the binary's path, or undefined when it is missing and allowed to be.
 * Throws when KCR_REQUIRE_BINARIES=1 and the binary is missing.
 */
export function optionalBinary(name: string, debianPackage = name): string | undefined {
  const path = findBinary(name);
  if (path) return path;
  const message = `${name} not found (Debian package ${debianPackage}); .ci/run installs it`;
  if (binariesRequired) throw new Error(`${message}; KCR_REQUIRE_BINARIES=1 makes this a failure`);
  console.warn(`skipping: ${message}`);
  return undefined;
}
