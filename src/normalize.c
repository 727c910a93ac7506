/*
** normalize.c: Unicode NFC, with a quick check that lets text which is
** already NFC (nearly all real text) skip normalization.
**
** The quick check walks the UTF-8 once: ASCII eight bytes at a time, other
** code points through a bitmap of those NFC might change or combine with a
** neighbour (canonical combining class not 0, a canonical decomposition that
** does not recompose, or the second half of a canonical composition). When
** no such code point occurs, NFC is the identity. The bitmap is derived from
** utf8proc's tables once, on first use. Normalization itself is utf8proc's.
*/
#include "internal.h"

#include <pthread.h>
#include <string.h>
#include <utf8proc.h>

#define CODE_POINTS 0x110000
static uint8_t unstable[CODE_POINTS / 8];
static pthread_once_t unstable_once = PTHREAD_ONCE_INIT;

static void mark(int32_t cp) { unstable[cp >> 3] |= (uint8_t)(1u << (cp & 7)); }
static bool is_unstable(int32_t cp) { return unstable[cp >> 3] >> (cp & 7) & 1; }

static void build_unstable_table(void) {
  const int options = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
  for (int32_t cp = 0; cp < CODE_POINTS; cp++) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    const utf8proc_property_t *property = utf8proc_get_property(cp);
    if (property->combining_class != 0) mark(cp);
    bool canonical_decomposition =
        property->decomp_seqindex != UINT16_MAX && property->decomp_type == 0;
    if (!canonical_decomposition) continue;
    utf8proc_int32_t decomposed[32];
    int last_property = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(cp, decomposed, 32, options, &last_property);
    if (n <= 0 || n > 32) {
      mark(cp);
      continue;
    }
    utf8proc_int32_t last = decomposed[n - 1];
    utf8proc_ssize_t composed = utf8proc_normalize_utf32(decomposed, n, options);
    if (composed == 1 && decomposed[0] == cp)
      mark(last); /* cp is a primary composite: its last part may combine */
    else
      mark(cp); /* NFC replaces cp */
  }
  /* Hangul vowel and trailing jamo combine with the syllable before them. */
  for (int32_t cp = 0x1161; cp <= 0x1175; cp++) mark(cp);
  for (int32_t cp = 0x11A8; cp <= 0x11C2; cp++) mark(cp);
}

/* Decodes one well-formed UTF-8 sequence at p (Unicode table 3-7); returns
** its length, or 0 if the bytes there are ill-formed. */
static size_t utf8_decode(const uint8_t *p, const uint8_t *end, int32_t *cp) {
  uint8_t b0 = p[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t available = (size_t)(end - p);
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (available < 2 || (p[1] & 0xC0) != 0x80) return 0;
    *cp = (b0 & 0x1F) << 6 | (p[1] & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    uint8_t low = b0 == 0xE0 ? 0xA0 : 0x80, high = b0 == 0xED ? 0x9F : 0xBF;
    if (available < 3 || p[1] < low || p[1] > high || (p[2] & 0xC0) != 0x80) return 0;
    *cp = (b0 & 0x0F) << 12 | (p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    uint8_t low = b0 == 0xF0 ? 0x90 : 0x80, high = b0 == 0xF4 ? 0x8F : 0xBF;
    if (available < 4 || p[1] < low || p[1] > high || (p[2] & 0xC0) != 0x80 ||
        (p[3] & 0xC0) != 0x80)
      return 0;
    *cp = (b0 & 0x07) << 18 | (p[1] & 0x3F) << 12 | (p[2] & 0x3F) << 6 | (p[3] & 0x3F);
    return 4;
  }
  return 0;
}

static bool all_ascii_8(const uint8_t *p) {
  uint64_t word;
  memcpy(&word, p, 8);
  return (word & 0x8080808080808080ull) == 0;
}

/* Whether the three bytes at p are a well-formed sequence of U+0800 to
** U+FFFF (not a surrogate): the common case of CJK text, decoded here
** without utf8_decode's other branches. */
static inline bool utf8_three_bytes(const uint8_t *p, int32_t *cp) {
  uint32_t w = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
  if ((w & 0xF0C0C0) != 0xE08080) return false;
  int32_t v = (int32_t)((w >> 4 & 0xF000) | (w >> 2 & 0x0FC0) | (w & 0x3F));
  /* Overlong forms decode below U+0800; surrogates are not characters. */
  if (v < 0x800 || (v >= 0xD800 && v < 0xE000)) return false;
  *cp = v;
  return true;
}

/* Called on every text a function encodes, so it is written for short
** rows too: a run of ASCII is crossed eight bytes at a time and then byte
** by byte up to the next other byte (at most eight), three-byte sequences
** are decoded inline, and the table is made ready once per call, not once
** per code point. */
bool bp_nfc_quick_check(const uint8_t *text, size_t len, size_t *invalid_at) {
  const uint8_t *p = text, *end = text + len;
  bool stable = true, table_ready = false;
  *invalid_at = len;
  for (;;) {
    while (end - p >= 8 && all_ascii_8(p)) p += 8;
    /* Fewer than eight bytes remain, or a byte >= 0x80 is among the next
    ** eight: either way this stops within eight bytes. */
    while (p < end && *p < 0x80) p++;
    if (p == end) return stable;
    int32_t cp;
    size_t n;
    if (end - p >= 3 && utf8_three_bytes(p, &cp)) {
      n = 3;
    } else if (!(n = utf8_decode(p, end, &cp))) {
      *invalid_at = (size_t)(p - text);
      return false;
    }
    /* Nothing below U+0300 changes or combines under NFC. */
    if (cp >= 0x300 && stable) {
      if (!table_ready) {
        pthread_once(&unstable_once, build_unstable_table);
        table_ready = true;
      }
      if (is_unstable(cp)) stable = false;
    }
    p += n;
  }
}

size_t bp_utf8_invalid_offset(const char *bytes, size_t len) {
  size_t invalid_at;
  bp_nfc_quick_check((const uint8_t *)bytes, len, &invalid_at);
  return invalid_at;
}

size_t bp_utf8_drop_invalid(char *bytes, size_t len) {
  uint8_t *p = (uint8_t *)bytes, *end = p + len, *out = p;
  while (p < end) {
    int32_t cp;
    size_t n = utf8_decode(p, end, &cp);
    if (n) {
      memmove(out, p, n);
      out += n;
      p += n;
    } else {
      p++; /* no well-formed sequence starts here: drop the byte */
    }
  }
  return (size_t)(out - (uint8_t *)bytes);
}

int bp_nfc(const uint8_t *text, size_t len, uint8_t **out, size_t *out_len, bp_error *err) {
  *out = NULL;
  *out_len = 0;
  const int options = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
  if (len > (size_t)INT32_MAX) return bp_fail(err, BP_TOOBIG, "text longer than 2 GiB");
  utf8proc_ssize_t n = utf8proc_decompose(text, (utf8proc_ssize_t)len, NULL, 0, options);
  if (n < 0) {
    if (n == UTF8PROC_ERROR_INVALIDUTF8)
      return bp_fail(err, BP_INVALID, "invalid UTF-8 at byte offset %zu",
                     bp_utf8_invalid_offset((const char *)text, len));
    return bp_fail(err, BP_TOOBIG, "text cannot be normalized: %s", utf8proc_errmsg(n));
  }
  utf8proc_int32_t *buffer = bp_malloc((size_t)n * sizeof *buffer + 1);
  if (!buffer) return bp_fail_nomem(err);
  n = utf8proc_decompose(text, (utf8proc_ssize_t)len, buffer, n, options);
  if (n >= 0) n = utf8proc_reencode(buffer, n, options);
  if (n < 0) {
    bp_free(buffer);
    return bp_fail(err, BP_INVALID, "text cannot be normalized: %s", utf8proc_errmsg(n));
  }
  *out = (uint8_t *)buffer;
  *out_len = (size_t)n;
  return BP_OK;
}

int bp_normalize(const char *text, size_t len, char **normalized, size_t *normalized_len,
                 bp_error *err) {
  size_t invalid_at;
  *normalized = NULL;
  *normalized_len = len;
  if (bp_nfc_quick_check((const uint8_t *)text, len, &invalid_at)) return BP_OK;
  if (invalid_at < len)
    return bp_fail(err, BP_INVALID, "invalid UTF-8 at byte offset %zu", invalid_at);
  return bp_nfc((const uint8_t *)text, len, (uint8_t **)normalized, normalized_len, err);
}

const char *bp_unicode_library_version(void) { return utf8proc_version(); }

/* Normalization with a map back to the original: the text is cut before
** every code point that NFC neither changes nor combines with what precedes
** it (the quick check's stable ones, ASCII included); NFC of the whole is
** the NFC of each such segment, one after the other. A segment without an
** unstable code point is copied; the others are normalized, and every byte
** of their NFC form maps to the whole original segment. */
int bp_nfc_mapped(const char *text, size_t len, bp_spans *out, bp_error *err) {
  size_t invalid_at;
  if (bp_nfc_quick_check((const uint8_t *)text, len, &invalid_at)) {
    out->text = text;
    out->length = len;
    return BP_OK;
  }
  if (invalid_at < len)
    return bp_fail(err, BP_INVALID, "invalid UTF-8 at byte offset %zu", invalid_at);
  pthread_once(&unstable_once, build_unstable_table);
  bp_buffer normalized = {0};
  size_t *starts = NULL, *ends = NULL, capacity = 0;
  const uint8_t *p = (const uint8_t *)text, *end = p + len;
  int rc = BP_OK;
  while (p < end && rc == BP_OK) {
    /* A segment: a stable code point (or the start), then unstable ones. */
    const uint8_t *segment = p;
    int32_t cp;
    p += utf8_decode(p, end, &cp);
    // NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage): the quick check found no ill-formed sequence, so utf8_decode set cp
    bool changes = is_unstable(cp); /* only the text's first code point can be */
    while (p < end) {
      size_t n = utf8_decode(p, end, &cp);
      if (!is_unstable(cp)) break;
      changes = true;
      p += n;
    }
    size_t before = normalized.length;
    if (changes) {
      uint8_t *nfc;
      size_t nfc_len;
      rc = bp_nfc(segment, (size_t)(p - segment), &nfc, &nfc_len, err);
      if (rc != BP_OK) break;
      bool ok = bp_buffer_append(&normalized, nfc, nfc_len);
      bp_free(nfc);
      if (!ok) rc = bp_fail_nomem(err);
    } else if (!bp_buffer_append(&normalized, segment, (size_t)(p - segment))) {
      rc = bp_fail_nomem(err);
    }
    if (rc != BP_OK) break;
    if (normalized.length >= capacity) {
      capacity = (normalized.length + 1) * 2;
      size_t *s = bp_realloc(starts, capacity * sizeof *s);
      if (s) starts = s;
      size_t *e = s ? bp_realloc(ends, capacity * sizeof *e) : NULL;
      if (e) ends = e;
      if (!s || !e) {
        rc = bp_fail_nomem(err);
        break;
      }
    }
    size_t original_start = (size_t)(segment - (const uint8_t *)text);
    size_t original_end = (size_t)(p - (const uint8_t *)text);
    for (size_t i = before; i < normalized.length; i++) {
      /* Unchanged segments map byte for byte. */
      starts[i] = changes ? original_start : original_start + (i - before);
      ends[i] = changes ? original_end : original_start + (i - before) + 1;
    }
  }
  if (rc != BP_OK) {
    bp_buffer_free(&normalized);
    bp_free(starts);
    bp_free(ends);
    return rc;
  }
  out->owned = normalized.data ? normalized.data : bp_malloc(1);
  if (!out->owned) {
    bp_free(starts);
    bp_free(ends);
    return bp_fail_nomem(err);
  }
  out->text = out->owned;
  out->length = normalized.length;
  out->original_starts = starts;
  out->original_ends = ends;
  return BP_OK;
}
