// A broker stand-in for tests: an HTTP server that records the CloudEvents it
// receives and can be told to fail.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HTTP, type CloudEvent } from 'cloudevents';

export interface TestSink {
  url: string;
  events: CloudEvent<unknown>[];
  /** Status to answer with; 202 accepts. */
  status: number;
  close(): Promise<void>;
}

export async function startSink(): Promise<TestSink> {
  const sink: TestSink = { url: '', events: [], status: 202, close: async () => undefined };
  const server = createServer((req, res) => {
    readBody(req).then(
      (body) => {
        if (sink.status < 300) {
          const parsed = HTTP.toEvent({ headers: req.headers as Record<string, string>, body });
          sink.events.push(...((Array.isArray(parsed) ? parsed : [parsed]) as CloudEvent<unknown>[]));
        }
        res.writeHead(sink.status).end();
      },
      () => res.writeHead(400).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sink.close = () => new Promise((resolve) => server.close(() => resolve()));
  return sink;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
