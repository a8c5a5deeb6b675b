/**
 * The on-disk layout of WAL that verification reads: page headers (access/xlog_internal.h
 * XLogPageHeaderData, XLogLongPageHeaderData) and record headers (access/xlogrecord.h XLogRecord).
 * Integers are in the server's byte order: little-endian on every platform walstream runs against.
 */

/** SizeOfXLogShortPHD: MAXALIGN(sizeof(XLogPageHeaderData)). */
export const SHORT_PAGE_HEADER = 24;
/** SizeOfXLogLongPHD: MAXALIGN(sizeof(XLogLongPageHeaderData)). */
export const LONG_PAGE_HEADER = 40;
/** SizeOfXLogRecord: the record header up to and including xl_crc. */
export const RECORD_HEADER = 24;
/** offsetof(XLogRecord, xl_crc): the header bytes the CRC covers. */
export const RECORD_CRC_OFFSET = 20;

/** xlp_info bits (xlog_internal.h). */
export const XLP_FIRST_IS_CONTRECORD = 0x0001;
export const XLP_LONG_HEADER = 0x0002;
/** Since PostgreSQL 15: the page starts after an aborted record that was overwritten (XLOG_OVERWRITE_CONTRECORD follows). */
export const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008;
/** XLP_ALL_FLAGS as of PostgreSQL 15 (0x0007 before it). */
export const XLP_ALL_FLAGS = 0x000f;

/** RM_XLOG_ID, and XLOG_SWITCH in xl_info's high bits (catalog/pg_control.h; XLR_INFO_MASK is 0x0F). */
export const RM_XLOG_ID = 0;
export const XLOG_SWITCH = 0x40;
export const XLR_INFO_MASK = 0x0f;

/** MAXALIGN for 8-byte alignment: where the next record starts after one ends. */
export function maxAlign(offset: number): number {
  return (offset + 7) & ~7;
}

export const u16 = (bytes: Uint8Array, i: number): number => bytes[i] | (bytes[i + 1] << 8);
export const u32 = (bytes: Uint8Array, i: number): number => (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) >>> 0;
/** A little-endian 64-bit integer at `i` as a bigint (xlp_pageaddr, xl_prev, xlp_sysid). */
export const u64 = (bytes: Uint8Array, i: number): bigint => (BigInt(u32(bytes, i + 4)) << 32n) | BigInt(u32(bytes, i));
