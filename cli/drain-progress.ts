// What `kcr drain` tells a person while it works: on a terminal one progress bar
// per container through its stages (requested, stored, image built, evicted,
// moved), with other notes printed above the bars; otherwise (a pipe, a log
// file, CI) one line per step, as plain text a script can grep.
import cliProgress from 'cli-progress';
import type { CliIo } from './io.js';

/** A container's way through a drain; its bar's value is the stage's position. */
export const STAGES = ['requested', 'stored', 'image built', 'evicted', 'moved'] as const;
export type Stage = (typeof STAGES)[number];

export interface DrainProgress {
  /** The containers to follow, known once their checkpoints are requested. */
  start(containers: { pod: string; container: string }[]): void;
  /** A container reached a stage; `line` is what the plain output prints for it (none: nothing). */
  stage(pod: string, container: string, stage: Stage, status: string, line?: string): void;
  /** A container will go no further. */
  stopped(pod: string, container: string, why: string): void;
  /** What is not one container's progress (skipped pods, the cordon, refused evictions). */
  note(line: string): void;
  /** Ends the bars before the summary is printed. */
  done(): void;
}

type Stream = CliIo['stderr'];

/** Bars on a terminal, lines elsewhere; nothing at all for `-o json|yaml|name`, whose stdout is the answer. */
export function drainProgress(stderr: Stream, quiet: boolean): DrainProgress {
  if (quiet) return { start: () => undefined, stage: () => undefined, stopped: () => undefined, note: () => undefined, done: () => undefined };
  return stderr.isTTY ? barProgress(stderr) : lineProgress(stderr);
}

function lineProgress(stderr: Stream): DrainProgress {
  return {
    start: () => undefined,
    stage: (_pod, _container, _stage, _status, line) => {
      if (line) stderr.write(`${line}\n`);
    },
    stopped: () => undefined,
    note: (line) => void stderr.write(`${line}\n`),
    done: () => undefined,
  };
}

function barProgress(stderr: Stream): DrainProgress {
  const multi = new cliProgress.MultiBar(
    { format: '  {name} [{bar}] {stage}/{stages} {status}', hideCursor: true, stream: stderr as unknown as NodeJS.WritableStream, barsize: 20, autopadding: true },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  let width = 0;
  const bar = (pod: string, container: string): cliProgress.SingleBar => {
    const name = `${pod} ${container}`;
    let b = bars.get(name);
    if (!b) {
      b = multi.create(STAGES.length, 0, { name: name.padEnd(width), stage: 0, stages: STAGES.length, status: '' });
      bars.set(name, b);
    }
    return b;
  };
  return {
    start: (containers) => {
      // One width for every name, so that the bars line up.
      width = Math.max(0, ...containers.map((c) => `${c.pod} ${c.container}`.length));
      for (const c of containers) bar(c.pod, c.container);
    },
    stage: (pod, container, stage, status) => {
      const value = STAGES.indexOf(stage) + 1;
      bar(pod, container).update(value, { stage: value, status });
    },
    stopped: (pod, container, why) => bar(pod, container).update({ status: `✗ ${why}` }),
    note: (line) => multi.log(`${line}\n`),
    done: () => {
      // stop() draws the bars but not the notes still buffered for the next redraw: one redraw first.
      multi.update();
      multi.stop();
    },
  };
}
