// Failure injection: the rules tests add (failNext, dropNext) that make the next
// matching API calls fail with a chosen status or lose their connection, and where
// the API server applies them to a request.

import type http from 'node:http';
import { ApiError, reasonForCode } from '../errors.js';
import type { RequestInfo } from './request-info.js';

/**
 * Where an injected fault drops the connection: before the request is served
 * (nothing happened), or once it was served, after the answer's headers (the
 * work is done, its answer lost).
 */
export type ConnectionDrop = 'before-answer' | 'mid-answer';

interface FailureMatch {
  verb?: string;
  /** Resource plural, optionally with subresource: `pods`, `nodes/proxy`, `deployments`. */
  resource?: string;
  /** Tested against the request path (without query). */
  path?: RegExp;
  remaining: number;
}

/** An API error with this status, or a dropped connection. */
export type FailureRule = FailureMatch & ({ code: number; reason?: string; message?: string; retryAfterSeconds?: number } | { drop: ConnectionDrop });

/** Throws the API error of the first matching rule; true when it dropped the connection instead. */
export function injectFailure(failures: FailureRule[], info: RequestInfo, path: string, req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const resource = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  const rule = failures.find(
    (f) =>
      f.remaining > 0 &&
      (f.verb === undefined || f.verb === info.verb) &&
      (f.resource === undefined || f.resource === resource || f.resource === info.resource) &&
      (f.path === undefined || f.path.test(path)),
  );
  if (!rule) return false;
  rule.remaining--;
  if (rule.remaining <= 0) failures.splice(failures.indexOf(rule), 1);
  if ('drop' in rule) {
    if (rule.drop === 'before-answer') {
      req.socket.destroy();
      return true;
    }
    // Served as usual, but the connection closes once the headers are out.
    res.end = (() => {
      res.flushHeaders();
      res.socket?.end();
      return res;
    }) as typeof res.end;
    return false;
  }
  const reason = rule.reason ?? reasonForCode(rule.code);
  const message = rule.message ?? defaultFailureMessage(rule.code, info);
  const details: Record<string, unknown> = {};
  if (info.name) details.name = info.name;
  details.kind = info.resource;
  if (rule.retryAfterSeconds !== undefined) details.retryAfterSeconds = rule.retryAfterSeconds;
  throw new ApiError(rule.code, reason, message, details);
}

function defaultFailureMessage(code: number, info: RequestInfo): string {
  const subject = info.name ? `${info.resource} "${info.name}"` : info.resource;
  switch (code) {
    case 429:
      return 'Too many requests, please try again later.';
    case 500:
      return 'Internal error occurred: injected failure';
    case 503:
      return 'the server is currently unable to handle the request';
    case 504:
      return 'the server was unable to return a response in the time allotted, but may still be processing the request';
    case 404:
      return `${subject} not found`;
    case 409:
      return `Operation cannot be fulfilled on ${subject}: the object has been modified; please apply your changes to the latest version and try again`;
    default:
      return `injected failure (${code}) for ${info.verb} ${subject}`;
  }
}
