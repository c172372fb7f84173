// Tests that need a binary from Debian skip locally when it is missing, with a
// message; CI sets KCR_REQUIRE_BINARIES=1, which turns that skip into a failure.
import { findBinary } from '../../local/binaries.js';
import { SWIFT_PACKAGES, swiftInstalled } from '../../local/swift-s3.js';

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

/**
 * Whether Swift (swift-proxy, swift-account, swift-container, swift-object)
 * is installed, for tests that run on every S3 server there is; missing, they
 * skip it with a message, or fail when KCR_REQUIRE_BINARIES=1.
 */
export function swiftAvailable(): boolean {
  if (swiftInstalled()) return true;
  const message = `Swift not found (Debian packages ${SWIFT_PACKAGES.join(' ')} from trixie); .ci/run installs them`;
  if (binariesRequired) throw new Error(`${message}; KCR_REQUIRE_BINARIES=1 makes this a failure`);
  console.warn(`skipping Swift: ${message}`);
  return false;
}
