/*
 * The inner loops of walstream verify (src/walfile/walker.ts, crc32c.ts) for WebAssembly: CRC-32C
 * (Castagnoli, reflected 0x82F63B78, as port/pg_crc32c.h) by slicing-by-8 tables, and walk_pages(), which walks
 * whole pages of a segment as walkSegment() does for as long as nothing is out of the ordinary, and
 * stops at the start of the first page where something is (walkSegment then takes that page).
 */
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef unsigned char u8;

static u32 T[8][256];

/* CRC-32C of long pieces from the host (a native one when it has it); use_native says whether to call it. */
__attribute__((import_module("env"), import_name("native_crc")))
u32 native_crc(const unsigned char *p, unsigned int n, unsigned int previous);
static u32 use_native;

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

/* The walk's state at a page boundary, shared with walker.ts (wal-wasm.ts reads and writes it). */
struct walk_state {
  u32 prev_lo, prev_hi;         /* start of the last complete record (the next one's xl_prev) */
  u32 records;                  /* records completed in the pages walked (this call) */
  u32 has_pending;              /* a record started in this segment continues on the next page */
  u32 p_start, p_total, p_got;  /* its offset in the segment, xl_tot_len, bytes seen */
  u32 p_crc;                    /* CRC-32C so far of its bytes after the header (a finished value) */
  u8 header[24];                /* its first min(got, 24) bytes */
};
static struct walk_state S;

__attribute__((export_name("state")))
struct walk_state *state(void) { return &S; }

__attribute__((export_name("set_native")))
void set_native(u32 on) { use_native = on; }

static inline u32 rd16(const u8 *p) { return p[0] | (p[1] << 8); }

static u32 crc_piece(const u8 *p, u32 n, u32 previous) {
  if (use_native && n >= 1024) return native_crc(p, n, previous);
  return ~crc_raw(~previous, p, n);
}

/*
 * From page offset `page` (not 0), walk whole pages of the segment at d (`len` bytes, pages of
 * `block`) while each is ordinary: magic `magic`, info XLP_FIRST_IS_CONTRECORD as the state says (XLP_BKP_REMOVABLE allowed),
 * timeline `timeline` (and the page at or past `simple_from`), the right address and
 * continuation length; every record sound (prev-link, CRC-32C) and unremarkable (not XLOG_SWITCH,
 * not starting at or ending past ends_at, not ending at boundary_at, not the end of WAL). Needs a
 * known prev-link in S. Returns the first page not walked; S is the state at its start.
 */
__attribute__((export_name("walk_pages")))
u32 walk_pages(const u8 *d, u32 page, u32 len, u32 block, u32 seg_lo, u32 seg_hi, u32 magic, u32 timeline, u32 simple_from, i32 ends_at, i32 boundary_at) {
  S.records = 0;
  struct walk_state w = S;
  for (; (u64)page + block <= len; page += block) {
    const u8 *h = d + page;
    u32 info = rd16(h + 2);
    if (rd16(h) != magic || (info & ~5u) != 0 || rd32(h + 4) != timeline || page < simple_from) break;
    if (rd32(h + 8) != seg_lo + page || rd32(h + 12) != seg_hi) break;
    if (w.has_pending ? (!(info & 1) || rd32(h + 16) != w.p_total - w.p_got) : (info & 1)) break;
    u32 pos = page + 24, end = page + block;
    int odd = 0;
    while (pos < end) {
      if (w.has_pending) {
        u32 n = w.p_total - w.p_got;
        if (n > end - pos) n = end - pos;
        u32 k = 0;
        if (w.p_got < 24) {
          k = 24 - w.p_got;
          if (k > n) k = n;
          for (u32 i = 0; i < k; i++) w.header[w.p_got + i] = d[pos + i];
          if (w.p_got + k == 24 && (rd32(w.header + 8) != w.prev_lo || rd32(w.header + 12) != w.prev_hi)) { odd = 1; break; }
        }
        if (n > k) w.p_crc = crc_piece(d + pos + k, n - k, w.p_crc);
        w.p_got += n;
        pos += n;
        if (w.p_got < w.p_total) continue;
        u32 c = ~crc_raw(~w.p_crc, w.header, 20);
        if (c != rd32(w.header + 20) || (w.header[17] == 0 && (w.header[16] & ~0x0f) == 0x40)) { odd = 1; break; }
        pos = (pos + 7) & ~7u;
        if ((i32)pos > ends_at || (i32)pos == boundary_at) { odd = 1; break; }
        w.records++;
        w.prev_lo = seg_lo + w.p_start;
        w.prev_hi = seg_hi;
        w.has_pending = 0;
        continue;
      }
      if (pos + 4 > end) { odd = 1; break; }
      const u8 *r = d + pos;
      u32 total = rd32(r);
      if (total < 24 || (i32)pos >= ends_at) { odd = 1; break; }
      if ((u64)pos + total > end) {
        w.has_pending = 1;
        w.p_start = pos;
        w.p_total = total;
        w.p_got = 0;
        w.p_crc = 0;
        for (u32 i = 0; i < 24; i++) w.header[i] = 0; /* as walker.ts: bytes not seen yet are zero */
        continue;
      }
      if (rd32(r + 8) != w.prev_lo || rd32(r + 12) != w.prev_hi) { odd = 1; break; }
      u32 c = crc_piece(r + 24, total - 24, 0);
      c = ~crc_raw(~c, r, 20);
      if (c != rd32(r + 20) || (r[17] == 0 && (r[16] & ~0x0f) == 0x40)) { odd = 1; break; }
      u32 next = (pos + total + 7) & ~7u;
      if ((i32)next > ends_at || (i32)next == boundary_at) { odd = 1; break; }
      w.records++;
      w.prev_lo = seg_lo + pos;
      w.prev_hi = seg_hi;
      pos = next;
    }
    if (odd) break;
    S = w; /* the page is walked: its end is the new state */
  }
  return page;
}
