// kcr drain's progress: bars on a terminal (one per container, its stage and
// status), one plain line per step elsewhere, nothing for -o json.
import { describe, expect, it } from 'vitest';
import { drainProgress, STAGES } from '../../cli/drain-progress.js';

function stream(isTTY: boolean) {
  const out = { text: '', isTTY, columns: 120, write: (s: string) => ((out.text += s), true) };
  return out;
}

/** What a terminal would show last: escape sequences removed. */
const plain = (s: string) => s.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g'), '');

function walk(p: ReturnType<typeof drainProgress>) {
  p.start([
    { pod: 'ns/web-0', container: 'app' },
    { pod: 'ns/db-0', container: 'postgres' },
  ]);
  p.stage('ns/web-0', 'app', 'requested', 'checkpoint requested', 'checkpoint requested: ns/web-0 (app)');
  p.stage('ns/db-0', 'postgres', 'requested', 'checkpoint requested', 'checkpoint requested: ns/db-0 (postgres)');
  p.stage('ns/web-0', 'app', 'stored', 'stored c1, building its image');
  p.stage('ns/web-0', 'app', 'image built', 'committed c1, image built', '[1/2] ns/web-0 app: committed c1, image built');
  p.note('node/node-a cordoned');
  p.stage('ns/web-0', 'app', 'evicted', 'evicted, waiting for its replacement', 'evicted ns/web-0');
  p.stage('ns/web-0', 'app', 'moved', '✓ web-0 on node-b from c1');
  p.stopped('ns/db-0', 'postgres', 'no checkpoint in time: not evicted');
  p.done();
}

describe('kcr drain progress', () => {
  it('draws a bar per container on a terminal, at its last stage with its status', () => {
    const s = stream(true);
    walk(drainProgress(s, false));
    const shown = plain(s.text);
    expect(shown).toMatch(new RegExp(`ns/web-0 app {5}\\[█{20}\\] ${STAGES.length}/${STAGES.length} ✓ web-0 on node-b from c1`));
    expect(shown).toMatch(/ns\/db-0 postgres \[█{4}░{16}\] 1\/5 ✗ no checkpoint in time: not evicted/);
    expect(shown).toContain('node/node-a cordoned\n');
  });

  it('prints one line per step when stderr is not a terminal', () => {
    const s = stream(false);
    walk(drainProgress(s, false));
    expect(s.text).toBe(
      ['checkpoint requested: ns/web-0 (app)', 'checkpoint requested: ns/db-0 (postgres)', '[1/2] ns/web-0 app: committed c1, image built', 'node/node-a cordoned', 'evicted ns/web-0', ''].join('\n'),
    );
  });

  it('prints nothing when the output is -o json (stdout is the answer)', () => {
    const s = stream(true);
    walk(drainProgress(s, true));
    expect(s.text).toBe('');
  });
});
