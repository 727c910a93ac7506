/*
** chars.c: characters of UTF-8 text, for indexing it word by word.
**
** bp_char_next decodes one character (a code point with the combining marks
** that follow it) and says what it is to a full-text index: a separator
** (white space, punctuation, controls: not indexed), part of a word (the
** letters and digits of scripts that put spaces between words, Latin,
** Greek, Cyrillic, ...), or a character that stands alone (Han, kana,
** Hangul, Thai and the other scripts written without spaces, and symbols):
** in those scripts any run of characters may be a word, so each is indexed
** on its own. bp_text_fold lower-cases text code point by code point (utf8proc's simple
** one-to-one mapping, the same for documents and queries). Character data
** is utf8proc's; nothing here allocates.
*/
#include "internal.h"

#include <string.h>
#include <utf8proc.h>

/* Scripts written without spaces between words, by code point range. */
static bool written_without_spaces(int32_t c) {
  return (c >= 0x0E00 && c <= 0x0EFF) || /* Thai, Lao */
         (c >= 0x1000 && c <= 0x109F) || /* Myanmar */
         (c >= 0x1100 && c <= 0x11FF) || /* Hangul Jamo */
         (c >= 0x1780 && c <= 0x17FF) || /* Khmer */
         (c >= 0x2E80 && c <= 0x2FDF) || /* CJK and Kangxi radicals */
         (c >= 0x3005 && c <= 0x3007) || /* 々 〆 〇 */
         (c >= 0x3021 && c <= 0x3029) || /* Hangzhou numerals */
         (c >= 0x3031 && c <= 0x3035) || /* kana repeat marks */
         (c >= 0x3038 && c <= 0x303C) ||
         (c >= 0x3040 && c <= 0x31FF) ||   /* kana, Bopomofo, compatibility Jamo */
         (c >= 0x3400 && c <= 0x4DBF) ||   /* CJK extension A */
         (c >= 0x4E00 && c <= 0x9FFF) ||   /* CJK unified ideographs */
         (c >= 0xA960 && c <= 0xA97F) ||   /* Hangul Jamo extended A */
         (c >= 0xAC00 && c <= 0xD7FF) ||   /* Hangul syllables, Jamo extended B */
         (c >= 0xF900 && c <= 0xFAFF) ||   /* CJK compatibility ideographs */
         (c >= 0xFF66 && c <= 0xFFDC) ||   /* halfwidth kana and Hangul */
         (c >= 0x1B000 && c <= 0x1B16F) || /* kana supplement, extended */
         (c >= 0x20000 && c <= 0x3FFFF);   /* CJK extensions B and later */
}

static int classify(int32_t c) {
  if (c < 0) return BP_CHAR_ALONE; /* a byte that is not UTF-8: indexed as it is */
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
      return BP_CHAR_WORD;
    return c <= ' ' || c == 0x7F ? BP_CHAR_SPACE : BP_CHAR_PUNCTUATION;
  }
  if (written_without_spaces(c)) {
    /* Their punctuation (、。「」) separates; their marks join the character before. */
    utf8proc_category_t category = utf8proc_category(c);
    if (category >= UTF8PROC_CATEGORY_PC && category <= UTF8PROC_CATEGORY_PO)
      return BP_CHAR_PUNCTUATION;
    if (category >= UTF8PROC_CATEGORY_MN && category <= UTF8PROC_CATEGORY_ME)
      return BP_CHAR_MARK;
    return BP_CHAR_ALONE;
  }
  switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return BP_CHAR_WORD;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: return BP_CHAR_MARK;
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO: return BP_CHAR_ALONE;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO: return BP_CHAR_PUNCTUATION;
    default: /* spaces, controls, format characters, unassigned */ return BP_CHAR_SPACE;
  }
}

/* One code point at bytes[offset]: its length, and the code point or -1. */
static size_t decode(const char *bytes, size_t len, size_t offset, int32_t *code_point) {
  utf8proc_int32_t c;
  utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)bytes + offset,
                                        (utf8proc_ssize_t)(len - offset), &c);
  if (n <= 0) {
    *code_point = -1;
    return 1;
  }
  *code_point = c;
  return (size_t)n;
}

size_t bp_char_next(const char *bytes, size_t len, size_t offset, int32_t *code_point,
                    int *kind) {
  size_t n = decode(bytes, len, offset, code_point);
  *kind = classify(*code_point);
  if (*kind == BP_CHAR_MARK) *kind = BP_CHAR_ALONE; /* a mark with nothing before it */
  if (*kind == BP_CHAR_SPACE || *kind == BP_CHAR_PUNCTUATION) return n;
  /* The combining marks after a letter or a character belong to it. */
  while (offset + n < len) {
    int32_t next;
    size_t m = decode(bytes, len, offset + n, &next);
    if (next < 0 || classify(next) != BP_CHAR_MARK) break;
    n += m;
  }
  return n;
}

size_t bp_text_fold(const char *bytes, size_t len, char *out, size_t capacity) {
  size_t written = 0;
  for (size_t i = 0; i < len;) {
    int32_t c;
    size_t n = decode(bytes, len, i, &c);
    utf8proc_uint8_t folded[4];
    size_t m = n;
    if (c >= 0) m = (size_t)utf8proc_encode_char(utf8proc_tolower(c), folded);
    if (written + m > capacity) break;
    memcpy(out + written, c >= 0 ? (const char *)folded : bytes + i, m);
    written += m;
    i += n;
  }
  return written;
}
