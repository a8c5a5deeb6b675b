/**
 * The help a new user reads first (#16): `receive --help` groups its options, an unknown option is one
 * `walstream:` line with a --help hint, and the main help names restore's arguments.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');

describe('walstream help', () => {
  it('receive --help groups options: connection, archive, slot, behaviour, monitoring', () => {
    const help = execFileSync(process.execPath, [CLI, 'receive', '--help'], { encoding: 'utf8' });
    const headings = ['Connection options:', 'Archive options:', 'Slot options:', 'Behaviour:', 'Monitoring options:'];
    const at = headings.map((h) => help.indexOf(`\n${h}\n`));
    expect(at.every((i) => i > 0), help).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    const section = (h: string) => help.slice(help.indexOf(`\n${h}\n`), at.find((i) => i > help.indexOf(`\n${h}\n`)) ?? help.length);
    expect(section('Connection options:')).toContain('--dbname');
    expect(section('Archive options:')).toContain('--compress');
    expect(section('Slot options:')).toContain('--create-slot');
    expect(section('Behaviour:')).toContain('--endpos');
  });

  it('an unknown option is one walstream: line with a --help hint, exit 1', () => {
    const r = spawnSync(process.execPath, [CLI, 'receive', '--bogus'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^walstream: .*unknown option '--bogus'.*--help/);
  });

  it('the main help shows restore WALFILE DEST', () => {
    const help = execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
    expect(help).toMatch(/restore \[?<WALFILE>\]? <DEST>|restore.*WALFILE.*DEST/);
  });
});
