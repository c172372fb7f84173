// How the simulated API server reads request bodies and writes answers: JSON
// objects, Status errors (with Retry-After), and the body parsing every verb shares.

import type http from 'node:http';
import { badRequest, type Status } from '../errors.js';

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendStatus(res: http.ServerResponse, status: Status): void {
  const headers: Record<string, string> = {};
  if (status.details?.retryAfterSeconds !== undefined) headers['retry-after'] = String(status.details.retryAfterSeconds);
  const text = JSON.stringify(status);
  res.writeHead(status.code, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

export async function readBody(req: http.IncomingMessage, optional: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const b = Buffer.concat(chunks);
  void optional;
  return b;
}

export function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw badRequest('the request body is empty');
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${errMessage(err)}`);
  }
}
