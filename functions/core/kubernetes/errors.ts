// How the Kubernetes API's answers are classified: kept apart from the client
// (kubernetes.ts) so that a module can use them without loading client-node.
import { RefusedError } from '../runtime/errors.js';

/** A 4xx of the API server the caller cannot fix by retrying (other than 404 and 409). */
export class KubeApiError extends RefusedError {
  override readonly name = 'KubeApiError';
}

export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

export function statusMessage(body: unknown): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown };
    if (typeof parsed?.message === 'string') return parsed.message;
  } catch {
    // not JSON: the text is the message
  }
  return text.slice(0, 500);
}

export function isTransientStatus(code: number): boolean {
  return code === 429 || code >= 500;
}
