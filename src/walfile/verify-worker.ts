/**
 * A verify worker thread (parallel.ts WalkPool): reads and walks the segments it is sent, one at a
 * time, and posts each verdict back (never the segment's bytes).
 */
import { parentPort } from 'node:worker_threads';
import { type WalkTask, runWalkTask } from './parallel.js';

let queue: Promise<void> = Promise.resolve();
parentPort!.on('message', (task: WalkTask) => {
  queue = queue.then(async () => {
    parentPort!.postMessage(await runWalkTask(task));
  });
});
