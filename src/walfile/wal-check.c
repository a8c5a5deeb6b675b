/*
 * The inner loops of walstream verify (src/walfile/walker.ts, crc32c.ts) for WebAssembly: CRC-32C
 * (Castagnoli, reflected 0x82F63B78, as port/pg_crc32c.h) by slicing-by-8 tables, and the run of
 * whole, sound records on one page that walker.ts wholeRecords() passes over.
 */
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef unsigned char u8;

static u32 T[8][256];
static u32 run_records, run_last;

__attribute__((export_name("init")))
void init(void) {
  for (u32 i = 0; i < 256; i++) {
    u32 c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    T[0][i] = c;
  }
  for (u32 i = 0; i < 256; i++)
    for (int s = 1; s < 8; s++) T[s][i] = (T[s - 1][i] >> 8) ^ T[0][T[s - 1][i] & 0xff];
}

static inline u32 rd32(const u8 *p) { u32 v; __builtin_memcpy(&v, p, 4); return v; }

/* The CRC register over p[0, n), without the initial and final inversions. */
static u32 crc_raw(u32 crc, const u8 *p, u32 n) {
  while (n && ((unsigned long)p & 3)) { crc = T[0][(crc ^ *p++) & 0xff] ^ (crc >> 8); n--; }
  while (n >= 8) {
    u32 a = crc ^ rd32(p), b = rd32(p + 4);
    crc = T[7][a & 0xff] ^ T[6][(a >> 8) & 0xff] ^ T[5][(a >> 16) & 0xff] ^ T[4][a >> 24]
        ^ T[3][b & 0xff] ^ T[2][(b >> 8) & 0xff] ^ T[1][(b >> 16) & 0xff] ^ T[0][b >> 24];
    p += 8; n -= 8;
  }
  while (n--) crc = T[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

/* crc32c() of crc32c.ts: CRC-32C of p[0, n) continuing from `previous` (a finished CRC; 0 to start). */
__attribute__((export_name("crc")))
u32 crc(const u8 *p, u32 n, u32 previous) { return ~crc_raw(~previous, p, n); }

/*
 * wholeRecords() of walker.ts over the segment at d: returns the offset of the first record from
 * `pos` that is not whole on the page [.., page_end) and sound with nothing to note; run_records()
 * and run_last() say how many were passed and where the last began. ends_at and boundary_at are
 * offsets (ends_at clamped to [-1, 2^31-1] by the caller; boundary_at -1 for none).
 */
__attribute__((export_name("whole_records")))
u32 whole_records(const u8 *d, u32 pos, u32 page_end, u32 prev_lo, u32 prev_hi, u32 seg_lo, u32 seg_hi, i32 ends_at, i32 boundary_at) {
  u32 records = 0, last = 0;
  while ((u64)pos + 4 <= page_end) {
    const u8 *r = d + pos;
    u32 total = rd32(r);
    if (total < 24 || (i32)pos >= ends_at || (u64)pos + total > page_end) break;
    if (rd32(r + 8) != prev_lo || rd32(r + 12) != prev_hi) break;
    u32 c = crc_raw(0xffffffffu, r + 24, total - 24);
    c = ~crc_raw(c, r, 20);
    if (c != rd32(r + 20)) break;
    u32 end = (pos + total + 7) & ~7u;
    if ((i32)end > ends_at || (i32)end == boundary_at) break;
    if (r[17] == 0 && (r[16] & ~0x0f) == 0x40) break; /* XLOG_SWITCH */
    records++;
    last = pos;
    prev_lo = seg_lo + pos;
    prev_hi = seg_hi;
    pos = end;
  }
  run_records = records;
  run_last = last;
  return pos;
}

__attribute__((export_name("run_records")))
u32 get_run_records(void) { return run_records; }

__attribute__((export_name("run_last")))
u32 get_run_last(void) { return run_last; }
