import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveArchiveName, startNodeAgent, type NodeAgent } from '../../node-agent/server.js';
import { writeCheckpointArchive } from '../../simulator/archive-writer.js';
import { rawRequest } from '../support/http.js';
import { capturingLogger } from '../support/logs.js';

const TOKEN = 's3cret-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const ARCHIVE = 'checkpoint-redis-0_shop-redis-2026-11-23T18:15:04Z.tar';
/** A name the kubelet could have written but for its length: `bytes` long. */
const longName = (bytes: number) => `checkpoint-${'a'.repeat(bytes - 47)}_shop-redis-2026-11-23T18:15:04Z.tar`;

describe('resolveArchiveName', () => {
  it('accepts a kubelet archive name, percent-encoded or not', () => {
    expect(resolveArchiveName(`/checkpoints/${ARCHIVE}`)).toEqual({ ok: true, name: ARCHIVE });
    expect(resolveArchiveName(`/checkpoints/${encodeURIComponent(ARCHIVE)}`)).toEqual({ ok: true, name: ARCHIVE });
    expect(resolveArchiveName(`/checkpoints/${longName(255)}`)).toEqual({ ok: true, name: longName(255) });
  });
  it('rejects a name longer than a file name can be (255 bytes) with 400, counting bytes', () => {
    // 'é' is two bytes in UTF-8: 128 of them are 256 bytes in 128 characters.
    for (const encoded of [longName(256), longName(5000), encodeURIComponent('é'.repeat(128))]) {
      expect(resolveArchiveName(`/checkpoints/${encoded}`)).toEqual({ ok: false, status: 400, reason: 'archive name longer than 255 bytes' });
    }
  });
  it.each([
    ['/checkpoints/../etc/passwd', 400],
    ['/checkpoints/..%2f..%2fetc%2fpasswd', 400],
    ['/checkpoints/%2e%2e', 400],
    ['/checkpoints/%2E%2E%2Fsecret.tar', 400],
    ['/checkpoints/a%5cb', 400],
    ['/checkpoints/x%00.tar', 400],
    ['/checkpoints/%zz', 400],
    ['/checkpoints/', 400],
    ['/checkpoints/passwd', 404],
    ['/checkpoints/checkpoint-x_y-z-notatime.tar', 404],
    ['/other', 404],
  ])('rejects %s with %i', (path, status) => {
    const r = resolveArchiveName(path);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.status).toBe(status);
  });
});

describe('node-agent over HTTP', () => {
  let root: string;
  let dir: string;
  let agent: NodeAgent;
  let noDelete: NodeAgent;
  let log: ReturnType<typeof capturingLogger>;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'kcr-agent-'));
    dir = join(root, 'checkpoints');
    mkdirSync(dir);
    writeFileSync(join(root, 'secret.txt'), 'outside the checkpoint dir');
    await writeCheckpointArchive(join(dir, ARCHIVE), { pod: 'redis-0', namespace: 'shop', podUid: 'uid-1', container: 'redis', pagesBytes: 3 << 20 });
    log = capturingLogger();
    agent = await startNodeAgent({ dir, token: TOKEN, allowDelete: true, logger: log.logger });
    noDelete = await startNodeAgent({ dir, token: () => TOKEN, allowDelete: false, logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    await agent?.close();
    await noDelete?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('answers /healthz without a token', async () => {
    const res = await rawRequest(agent.url, 'GET', '/healthz');
    expect(res.status).toBe(200);
  });

  it('streams an archive byte for byte with its Content-Length', async () => {
    const res = await rawRequest(agent.url, 'GET', `/checkpoints/${ARCHIVE}`, auth);
    const onDisk = readFileSync(join(dir, ARCHIVE));
    expect(res.status).toBe(200);
    expect(Number(res.headers['content-length'])).toBe(onDisk.length);
    expect(createHash('sha256').update(res.body).digest('hex')).toBe(createHash('sha256').update(onDisk).digest('hex'));
  });

  it('answers HEAD with the size and no body', async () => {
    const res = await rawRequest(agent.url, 'HEAD', `/checkpoints/${ARCHIVE}`, auth);
    expect(res.status).toBe(200);
    expect(Number(res.headers['content-length'])).toBe(readFileSync(join(dir, ARCHIVE)).length);
    expect(res.body.length).toBe(0);
  });

  it('requires the bearer token (401) and logs the attempt', async () => {
    const none = await rawRequest(agent.url, 'GET', `/checkpoints/${ARCHIVE}`);
    const wrong = await rawRequest(agent.url, 'GET', `/checkpoints/${ARCHIVE}`, { authorization: 'Bearer nope' });
    const basic = await rawRequest(agent.url, 'GET', `/checkpoints/${ARCHIVE}`, { authorization: `Basic ${TOKEN}` });
    expect([none.status, wrong.status, basic.status]).toEqual([401, 401, 401]);
    expect(wrong.body.toString()).not.toContain(ARCHIVE);
    const reasons = log.lines.filter((l) => l.event === 'request-rejected').map((l) => l.reason);
    expect(reasons).toContain('missing bearer token');
    expect(reasons).toContain('wrong bearer token');
  });

  it.each([['/checkpoints/../secret.txt'], ['/checkpoints/..%2fsecret.txt'], ['/checkpoints/%2e%2e%2fsecret.txt'], ['/checkpoints/%2e%2e']])(
    'refuses traversal %s with 400 and logs it',
    async (path) => {
      const res = await rawRequest(agent.url, 'GET', path, auth);
      expect(res.status).toBe(400);
      expect(res.body.toString()).not.toContain('outside the checkpoint dir');
      expect(log.lines.some((l) => l.event === 'request-rejected' && l.path === path && l.status === 400)).toBe(true);
    },
  );

  it('refuses names that are not kubelet archives with 404', async () => {
    writeFileSync(join(dir, 'notes.txt'), 'not an archive');
    const res = await rawRequest(agent.url, 'GET', '/checkpoints/notes.txt', auth);
    expect(res.status).toBe(404);
    expect(res.body.toString()).not.toContain('not an archive');
  });

  it.each(['GET', 'HEAD', 'DELETE'])('refuses an over-long archive name on %s with 400 before touching the disk', async (method) => {
    const path = `/checkpoints/${longName(5000)}`;
    const res = await rawRequest(agent.url, method, path, auth);
    expect(res.status).toBe(400);
    expect(log.lines.some((l) => l.event === 'request-rejected' && l.path === path && l.method === method && l.reason === 'archive name longer than 255 bytes')).toBe(true);
  });

  it('answers 404 for a missing archive whose name has the longest length allowed', async () => {
    expect((await rawRequest(agent.url, 'GET', `/checkpoints/${longName(255)}`, auth)).status).toBe(404);
    expect((await rawRequest(agent.url, 'DELETE', `/checkpoints/${longName(255)}`, auth)).status).toBe(404);
  });

  it('answers 404 for an archive that does not exist', async () => {
    const res = await rawRequest(agent.url, 'GET', '/checkpoints/checkpoint-gone-0_shop-redis-2026-11-23T18:15:04Z.tar', auth);
    expect(res.status).toBe(404);
  });

  it('does not follow a symlink named like an archive', async () => {
    const name = 'checkpoint-evil-0_shop-redis-2026-11-23T18:20:00Z.tar';
    symlinkSync(join(root, 'secret.txt'), join(dir, name));
    const res = await rawRequest(agent.url, 'GET', `/checkpoints/${name}`, auth);
    expect(res.status).toBe(404);
    expect(res.body.toString()).not.toContain('outside the checkpoint dir');
    expect(log.lines.some((l) => l.reason === 'archive is a symlink' && l.name === name)).toBe(true);
    const del = await rawRequest(agent.url, 'DELETE', `/checkpoints/${name}`, auth);
    expect(del.status).toBe(404);
    expect(existsSync(join(root, 'secret.txt'))).toBe(true);
  });

  it('does not serve a hard link or a directory named like an archive', async () => {
    const hard = 'checkpoint-hard-0_shop-redis-2026-11-23T18:21:00Z.tar';
    linkSync(join(root, 'secret.txt'), join(dir, hard));
    const sub = 'checkpoint-dir-0_shop-redis-2026-11-23T18:22:00Z.tar';
    mkdirSync(join(dir, sub));
    expect((await rawRequest(agent.url, 'GET', `/checkpoints/${hard}`, auth)).status).toBe(404);
    expect((await rawRequest(agent.url, 'GET', `/checkpoints/${sub}`, auth)).status).toBe(404);
  });

  it('refuses DELETE when deleting is disabled, keeping the file', async () => {
    const res = await rawRequest(noDelete.url, 'DELETE', `/checkpoints/${ARCHIVE}`, auth);
    expect(res.status).toBe(405);
    expect(res.body.toString()).toContain('disabled');
    expect(existsSync(join(dir, ARCHIVE))).toBe(true);
  });

  it('DELETE needs the token, then removes the archive; a second DELETE is 404', async () => {
    const name = 'checkpoint-del-0_shop-redis-2026-11-23T18:30:00Z.tar';
    writeFileSync(join(dir, name), 'x');
    expect((await rawRequest(agent.url, 'DELETE', `/checkpoints/${name}`)).status).toBe(401);
    expect(existsSync(join(dir, name))).toBe(true);
    expect((await rawRequest(agent.url, 'DELETE', `/checkpoints/${name}`, auth)).status).toBe(204);
    expect(existsSync(join(dir, name))).toBe(false);
    expect((await rawRequest(agent.url, 'DELETE', `/checkpoints/${name}`, auth)).status).toBe(404);
  });

  it('refuses other methods with 405', async () => {
    const res = await rawRequest(agent.url, 'PUT', `/checkpoints/${ARCHIVE}`, auth);
    expect(res.status).toBe(405);
  });
});
