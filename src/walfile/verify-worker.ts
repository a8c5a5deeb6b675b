/**
 * A verify worker thread (parallel.ts WalkPool): reads and walks the segments it is sent, in order,
 * reading each while the one before is walked, and posts each verdict back (never the segment's bytes).
 */
import { parentPort } from 'node:worker_threads';
import { type WalkTask, WalkQueue } from './parallel.js';

const queue = new WalkQueue((result) => parentPort!.postMessage(result));
parentPort!.on('message', (task: WalkTask) => queue.push(task));
