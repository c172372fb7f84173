// AWS Signature V4 headers for one S3 request with an unsigned payload, for
// the plain tools that cannot sign with Swift's `account:user` access key
// (curl's --aws-sigv4 takes the key from --user, where a colon ends it), and
// for a readiness probe that needs no S3 client.
import { createHash, createHmac } from 'node:crypto';

interface SignedRequest {
  method: string;
  url: URL;
  accessKey: string;
  secretKey: string;
  region: string;
  /** Signed as they are given (lowercase names). */
  headers?: Record<string, string>;
  now?: Date;
}

const UNSIGNED = 'UNSIGNED-PAYLOAD';
const encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** host, x-amz-date, x-amz-content-sha256 and authorization, plus `headers`: everything to send. */
export function sigV4Headers(r: SignedRequest): Record<string, string> {
  const amzDate = (r.now ?? new Date())
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = { ...r.headers, host: r.url.host, 'x-amz-content-sha256': UNSIGNED, 'x-amz-date': amzDate };
  const names = Object.keys(headers).sort();
  const query = [...r.url.searchParams]
    .map(([k, v]) => [encode(k), encode(v)])
    .sort(([a = '', x = ''], [b = '', y = '']) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const path = r.url.pathname
    .split('/')
    .map((s) => encode(decodeURIComponent(s)))
    .join('/');
  const canonical = [r.method, path, query, ...names.map((n) => `${n}:${(headers[n] ?? '').trim()}`), '', names.join(';'), UNSIGNED].join('\n');
  const scope = `${day}/${r.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
  const key = hmac(hmac(hmac(hmac(`AWS4${r.secretKey}`, day), r.region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  return { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${r.accessKey}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}` };
}
