/** Reading a password from the terminal without echo (-W). */
import * as fs from 'node:fs';
import * as tty from 'node:tty';
import { WalstreamError } from '../errors.js';

/** Prompt on /dev/tty and read one line with echo off; rejects when there is no terminal. */
export async function promptPassword(prompt: string): Promise<string> {
  let fd: number;
  try {
    fd = fs.openSync('/dev/tty', 'r+');
  } catch {
    throw new WalstreamError('BAD_OPTION', '-W needs a terminal to prompt on: set PGPASSWORD or use ~/.pgpass instead');
  }
  const input = new tty.ReadStream(fd);
  const output = new tty.WriteStream(fd);
  output.write(prompt);
  input.setRawMode(true);
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (err?: Error) => {
      input.setRawMode(false);
      input.pause();
      output.write('\n');
      input.destroy();
      if (err) reject(err);
      else resolve(text);
    };
    input.on('data', (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new WalstreamError('STOPPED', 'password prompt interrupted'));
        if (ch === '\u007f') text = text.slice(0, -1);
        else text += ch;
      }
    });
  });
}
