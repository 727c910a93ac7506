/*
** sentencepiece.c: SentencePiece model files (ModelProto, protocol buffers),
** written from a BytePiece model and read into one.
**
** Writing follows the reference's own conversion of ensure_unicode models,
** byte for byte: <unk>, <s>, </s> at ids 0, 1, 2 (where BytePiece has <pad>,
** <bos>, <eos>); then every piece at its BytePiece id with its score as a
** float: the printable ASCII bytes except the backslash as text pieces (the
** space as U+2581, SentencePiece's visible space), the other single bytes as
** byte pieces <0xNN>, longer pieces as text with spaces as U+2581; then byte
** pieces scored -100 for the printable bytes, so that byte fallback has all
** 256. The trainer spec says Unigram with byte fallback, the normalizer
** "identity" without a dummy prefix or whitespace folding. So SentencePiece
** gives the BytePiece ids, wherever its own search finds the same pieces.
**
** Reading takes a Unigram model's text and byte pieces with their scores,
** numbered in the file's order (see bp_model_from_sentencepiece in
** bytepiece.h).
*/
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SentencePiece's piece types. */
enum {
  SP_NORMAL = 1,
  SP_UNKNOWN = 2,
  SP_CONTROL = 3,
  SP_USER_DEFINED = 4,
  SP_UNUSED = 5,
  SP_BYTE = 6
};
/* What SentencePiece's Unigram search charges a character with no piece,
** below the lowest score (kUnkPenalty). */
#define SP_UNKNOWN_PENALTY 10.0
#define SPACE_MARK "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK */

/* ---- Writing --------------------------------------------------------------- */

static bool pb_varint(bp_buffer *b, uint64_t v) {
  uint8_t bytes[10];
  return bp_buffer_append(b, bytes, bp_put_varint(bytes, v));
}

static bool pb_key(bp_buffer *b, int field, int wire_type) {
  return pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire_type);
}

static bool pb_bytes(bp_buffer *b, int field, const void *data, size_t n) {
  return pb_key(b, field, 2) && pb_varint(b, n) && bp_buffer_append(b, data, n);
}

static bool pb_uint(bp_buffer *b, int field, uint64_t v) {
  return pb_key(b, field, 0) && pb_varint(b, v);
}

static bool pb_float(bp_buffer *b, int field, float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  uint8_t bytes[4];
  bp_put_u32(bytes, bits);
  return pb_key(b, field, 5) && bp_buffer_append(b, bytes, 4);
}

/* Appends one SentencePiece message (type 0: leave the field out, NORMAL). */
static bool put_piece(bp_buffer *model, bp_buffer *piece, const void *text, size_t n,
                      float score, int type) {
  piece->length = 0;
  return pb_bytes(piece, 1, text, n) && pb_float(piece, 2, score) &&
         (type == 0 || pb_uint(piece, 3, (uint64_t)type)) &&
         pb_bytes(model, 1, piece->data, piece->length);
}

/* A single byte SentencePiece keeps as text: printable ASCII but '\'. */
static bool byte_as_text(uint8_t byte) { return byte >= 0x20 && byte <= 0x7E && byte != '\\'; }

static bool has_space_mark(const uint8_t *bytes, size_t n) {
  for (size_t i = 0; i + 3 <= n; i++)
    if (memcmp(bytes + i, SPACE_MARK, 3) == 0) return true;
  return false;
}

int bp_model_to_sentencepiece(const bp_model *m, uint8_t **out, size_t *out_len,
                              bp_error *err) {
  *out = NULL;
  *out_len = 0;
  for (uint32_t id = BP_FIRST_PIECE_ID; id < bp_model_vocab_size(m); id++) {
    uint32_t n;
    const uint8_t *bytes = bp_model_piece(m, id, &n);
    if (n > 1 && bp_utf8_invalid_offset((const char *)bytes, n) < n)
      return bp_fail(err, BP_INVALID,
                     "piece id %u is not valid UTF-8, and SentencePiece "
                     "pieces are text: only models trained with ensure_unicode convert",
                     id);
    if (has_space_mark(bytes, n))
      return bp_fail(err, BP_INVALID,
                     "piece id %u contains U+2581, which SentencePiece "
                     "reads as a space",
                     id);
  }
  bp_buffer model = {0}, piece = {0}, text = {0}, spec = {0};
  bool ok = put_piece(&model, &piece, "<unk>", 5, 0.0f, SP_UNKNOWN) &&
            put_piece(&model, &piece, "<s>", 3, 0.0f, SP_CONTROL) &&
            put_piece(&model, &piece, "</s>", 4, 0.0f, SP_CONTROL);
  char byte_name[8];
  for (uint32_t id = BP_FIRST_PIECE_ID; ok && id < bp_model_vocab_size(m); id++) {
    uint32_t n;
    const uint8_t *bytes = bp_model_piece(m, id, &n);
    float score = (float)bp_model_score(m, id);
    if (n == 1 && !byte_as_text(bytes[0])) {
      snprintf(byte_name, sizeof byte_name, "<0x%02X>", bytes[0]);
      ok = put_piece(&model, &piece, byte_name, 6, score, SP_BYTE);
      continue;
    }
    text.length = 0;
    for (uint32_t i = 0; ok && i < n; i++)
      ok = bytes[i] == ' ' ? bp_buffer_append(&text, SPACE_MARK, 3)
                           : bp_buffer_append(&text, &bytes[i], 1);
    ok = ok && put_piece(&model, &piece, text.data, text.length, score, 0);
  }
  uint32_t pieces = bp_model_vocab_size(m);
  for (int byte = 0; ok && byte < 256; byte++) {
    if (!byte_as_text((uint8_t)byte)) continue;
    snprintf(byte_name, sizeof byte_name, "<0x%02X>", byte);
    ok = put_piece(&model, &piece, byte_name, 6, -100.0f, SP_BYTE);
    pieces++;
  }
  /* TrainerSpec: model_type UNIGRAM, vocab_size, split_by_unicode_script
  ** false, byte_fallback true. NormalizerSpec: name "identity", no
  ** precompiled map, add_dummy_prefix false, remove_extra_whitespaces false. */
  ok = ok && pb_uint(&spec, 3, 1) && pb_uint(&spec, 4, pieces) && pb_uint(&spec, 21, 0) &&
       pb_uint(&spec, 35, 1) && pb_bytes(&model, 2, spec.data, spec.length);
  spec.length = 0;
  ok = ok && pb_bytes(&spec, 1, "identity", 8) && pb_bytes(&spec, 2, "", 0) &&
       pb_uint(&spec, 3, 0) && pb_uint(&spec, 4, 0) &&
       pb_bytes(&model, 3, spec.data, spec.length);
  bp_free(piece.data);
  bp_free(text.data);
  bp_free(spec.data);
  if (!ok) {
    bp_free(model.data);
    return bp_fail_nomem(err);
  }
  *out = (uint8_t *)model.data;
  *out_len = model.length;
  return BP_OK;
}

/* ---- Reading --------------------------------------------------------------- */

typedef struct pb_reader {
  const uint8_t *p, *end;
} pb_reader;

/* Protobuf's reading, unlike the model value's bp_get_varint: any form is
** accepted (a non-shortest encoding, bits past 64 dropped), as protobuf
** parsers accept them. */
static bool pb_read_varint(pb_reader *r, uint64_t *v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
    uint8_t byte = *r->p++;
    result |= (uint64_t)(byte & 0x7F) << shift;
    if (!(byte & 0x80)) {
      *v = result;
      return true;
    }
  }
  return false;
}

/* The next field: its number, wire type, and value (a varint, or the
** bytes of a length-delimited or fixed-size field). */
typedef struct pb_field {
  uint64_t number;
  int wire_type;
  uint64_t varint;
  const uint8_t *data;
  size_t size;
} pb_field;

static bool pb_next(pb_reader *r, pb_field *f) {
  uint64_t key;
  if (!pb_read_varint(r, &key)) return false;
  f->number = key >> 3;
  f->wire_type = (int)(key & 7);
  f->data = r->p;
  switch (f->wire_type) {
    case 0: return pb_read_varint(r, &f->varint);
    case 1: f->size = 8; break;
    case 5: f->size = 4; break;
    case 2: {
      uint64_t n;
      if (!pb_read_varint(r, &n) || n > (uint64_t)(r->end - r->p)) return false;
      f->data = r->p;
      f->size = (size_t)n;
      break;
    }
    default: return false; /* groups are not used by ModelProto */
  }
  if (f->size > (size_t)(r->end - r->p)) return false;
  r->p += f->size;
  return true;
}

/* A piece on its way into the model. */
typedef struct sp_piece {
  uint8_t *bytes;
  uint32_t length;
  double score;
  bool is_byte; /* from a byte piece <0xNN> */
  bool dropped; /* a second piece with the same bytes */
  size_t index; /* its position in the SentencePiece model */
  size_t slot;  /* its position among the pieces kept */
} sp_piece;

static int compare_length_then_bytes(const void *a, const void *b) {
  const sp_piece *x = a, *y = b;
  if (x->length != y->length) return x->length < y->length ? -1 : 1;
  int c = memcmp(x->bytes, y->bytes, x->length);
  if (c) return c;
  /* Equal bytes: a text piece before a byte piece, then model order. */
  if (x->is_byte != y->is_byte) return x->is_byte ? 1 : -1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static int hex_digit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Reads one SentencePiece message into *piece; *keep is false for the
** pieces BytePiece has no place for (unknown, control, unused). */
static int read_piece(const char *source, const uint8_t *data, size_t size, size_t index,
                      sp_piece *piece, bool *keep, bp_error *err) {
  pb_reader r = {data, data + size};
  pb_field f;
  const uint8_t *text = NULL;
  size_t text_len = 0;
  float score = 0.0f;
  uint64_t type = SP_NORMAL;
  *keep = false;
  while (r.p < r.end) {
    if (!pb_next(&r, &f))
      return bp_fail(err, BP_FORMAT, "%s: piece %zu is corrupt", source, index);
    if (f.number == 1 && f.wire_type == 2) {
      text = f.data;
      text_len = f.size;
    } else if (f.number == 2 && f.wire_type == 5) {
      uint32_t bits = bp_get_u32(f.data);
      memcpy(&score, &bits, sizeof score);
    } else if (f.number == 3 && f.wire_type == 0) {
      type = f.varint;
    }
  }
  if (type == SP_UNKNOWN || type == SP_CONTROL || type == SP_UNUSED) return BP_OK;
  if (type != SP_NORMAL && type != SP_USER_DEFINED && type != SP_BYTE)
    return bp_fail(err, BP_FORMAT, "%s: piece %zu has an unknown type %llu", source, index,
                   (unsigned long long)type);
  if (!text || text_len == 0)
    return bp_fail(err, BP_FORMAT, "%s: piece %zu is empty", source, index);
  if (!isfinite(score) || score > 0)
    return bp_fail(err, BP_FORMAT,
                   "%s: piece %zu has score %g; scores must be finite and "
                   "at most 0",
                   source, index, (double)score);
  piece->index = index;
  piece->score = score;
  piece->is_byte = type == SP_BYTE;
  piece->dropped = false;
  if (piece->is_byte) {
    int high = text_len == 6 ? hex_digit(text[3]) : -1,
        low = text_len == 6 ? hex_digit(text[4]) : -1;
    if (memcmp(text, "<0x", 3) != 0 || text[5] != '>' || high < 0 || low < 0)
      return bp_fail(err, BP_FORMAT, "%s: byte piece %zu is not written <0xNN>", source, index);
    piece->bytes = bp_malloc(1);
    if (!piece->bytes) return bp_fail_nomem(err);
    piece->bytes[0] = (uint8_t)(high << 4 | low);
    piece->length = 1;
  } else {
    piece->bytes = bp_malloc(text_len);
    if (!piece->bytes) return bp_fail_nomem(err);
    size_t n = 0;
    for (size_t i = 0; i < text_len;) {
      if (i + 3 <= text_len && memcmp(text + i, SPACE_MARK, 3) == 0) {
        piece->bytes[n++] = ' ';
        i += 3;
      } else {
        piece->bytes[n++] = text[i++];
      }
    }
    if (n > BP_MAX_PIECE_BYTES) {
      bp_free(piece->bytes);
      return bp_fail(err, BP_FORMAT, "%s: piece %zu is %zu bytes long; the limit is %d", source,
                     index, n, BP_MAX_PIECE_BYTES);
    }
    piece->length = (uint32_t)n;
  }
  *keep = true;
  return BP_OK;
}

/* Reads the pieces of a ModelProto (field 1) and checks its model type
** (field 2's field 3) is Unigram. *pieces (to free with free_sp_pieces) holds
** the *count pieces kept, each with its index in the file. */
static int read_model_proto(const uint8_t *data, size_t len, const char *source,
                            sp_piece **pieces, size_t *count, bp_error *err) {
  pb_reader r = {data, data + len};
  pb_field f;
  size_t capacity = 0, index = 0;
  uint64_t model_type = 1;
  *pieces = NULL;
  *count = 0;
  while (r.p < r.end) {
    const uint8_t *field_start = r.p;
    if (!pb_next(&r, &f))
      return bp_fail(err, BP_FORMAT, "%s: not a SentencePiece model (corrupt at byte %zu)",
                     source, (size_t)(field_start - data));
    if (f.number == 2 && f.wire_type == 2) {
      pb_reader spec = {f.data, f.data + f.size};
      pb_field g;
      while (spec.p < spec.end && pb_next(&spec, &g))
        if (g.number == 3 && g.wire_type == 0) model_type = g.varint;
      continue;
    }
    if (f.number != 1 || f.wire_type != 2) continue;
    if (*count == capacity) {
      capacity = capacity ? 2 * capacity : 1024;
      sp_piece *grown = bp_realloc(*pieces, capacity * sizeof *grown);
      if (!grown) return bp_fail_nomem(err);
      *pieces = grown;
    }
    bool keep;
    int rc = read_piece(source, f.data, f.size, index++, &(*pieces)[*count], &keep, err);
    if (rc != BP_OK) return rc;
    if (keep) {
      (*pieces)[*count].slot = *count;
      (*count)++;
    }
  }
  static const char *const type_names[] = {"", "Unigram", "BPE", "word", "character"};
  if (model_type != 1)
    return bp_fail(err, BP_FORMAT, "%s: a SentencePiece %s model; only Unigram models convert",
                   source, model_type <= 4 ? type_names[model_type] : "unknown");
  if (index == 0)
    return bp_fail(err, BP_FORMAT, "%s: not a SentencePiece model (no pieces)", source);
  return BP_OK;
}

static void free_sp_pieces(sp_piece *pieces, size_t count) {
  for (size_t i = 0; i < count; i++) bp_free(pieces[i].bytes);
  bp_free(pieces);
}

/* The same bytes twice: a byte piece is then only the fallback for a text
** piece (sorted first). The one the file lists first keeps its place, with
** the text piece's score, and the other is marked dropped; two text pieces
** cannot both have the bytes. */
static int drop_duplicates(sp_piece *pieces, size_t count, const char *source, bp_error *err) {
  if (count < 2) return BP_OK;
  sp_piece *sorted = bp_malloc(count * sizeof *sorted); /* slot leads back to pieces */
  if (!sorted) return bp_fail_nomem(err);
  memcpy(sorted, pieces, count * sizeof *sorted);
  qsort(sorted, count, sizeof *sorted, compare_length_then_bytes);
  int rc = BP_OK;
  for (size_t i = 1; i < count; i++) {
    sp_piece *first = &sorted[i - 1], *second = &sorted[i];
    if (first->length != second->length ||
        memcmp(first->bytes, second->bytes, first->length) != 0)
      continue;
    if (!second->is_byte) {
      rc = bp_fail(err, BP_FORMAT,
                   "%s: pieces %zu and %zu are the same bytes (with U+2581 "
                   "read as a space)",
                   source, first->index, second->index);
      break;
    }
    /* first is the text piece (or another byte piece); the piece listed
    ** earlier in the file stays. */
    sp_piece *text_piece = &pieces[first->slot], *byte_piece = &pieces[second->slot];
    if (byte_piece->index < text_piece->index && !text_piece->is_byte) {
      byte_piece->score = text_piece->score;
      text_piece->dropped = true;
    } else {
      byte_piece->dropped = true;
    }
    *second = *first; /* what a third copy compares with */
  }
  bp_free(sorted);
  return rc;
}

/* The model of the pieces not dropped: ids in the file's order, from 3;
** bytes without a piece last. */
static int build_from_pieces(const sp_piece *pieces, size_t count, const char *source,
                             bp_model **out, bp_error *err) {
  double lowest = 0.0;
  for (size_t i = 0; i < count; i++)
    if (!pieces[i].is_byte && pieces[i].score < lowest) lowest = pieces[i].score;
  /* Byte pieces are SentencePiece's fallback for characters without a
  ** piece: single bytes left unscored (0), and bytes missing altogether, get
  ** the price SentencePiece charges such a character (a float, as the file's
  ** scores, so that writing the model out and reading it back is exact). */
  double fallback = (float)(lowest - SP_UNKNOWN_PENALTY);
  bool present[256] = {false};
  for (size_t i = 0; i < count; i++)
    if (pieces[i].length == 1) present[pieces[i].bytes[0]] = true;
  bp_piece *built = bp_malloc((count + 256) * sizeof *built);
  if (!built) return bp_fail_nomem(err);
  uint8_t all_bytes[256];
  for (int b = 0; b < 256; b++) all_bytes[b] = (uint8_t)b;
  size_t n = 0;
  for (size_t i = 0; i < count; i++) {
    if (pieces[i].dropped) continue;
    double score = pieces[i].length == 1 && pieces[i].score == 0.0 ? fallback : pieces[i].score;
    built[n] = (bp_piece){pieces[i].bytes, pieces[i].length, (uint32_t)(n + BP_FIRST_PIECE_ID),
                          0, score};
    n++;
  }
  for (int b = 0; b < 256; b++) {
    if (present[b]) continue;
    built[n] = (bp_piece){&all_bytes[b], 1, (uint32_t)(n + BP_FIRST_PIECE_ID), 0, fallback};
    n++;
  }
  int rc = bp_model_build_scored(built, n, out, err);
  if (rc == BP_FORMAT) {
    char message[sizeof err->message];
    memcpy(message, err->message, sizeof message);
    bp_fail(err, BP_FORMAT, "%s: %s", source, message);
  }
  bp_free(built);
  return rc;
}

int bp_model_from_sentencepiece(const uint8_t *data, size_t len, const char *source,
                                bp_model **out, bp_error *err) {
  *out = NULL;
  sp_piece *pieces;
  size_t count;
  int rc = read_model_proto(data, len, source, &pieces, &count, err);
  if (rc == BP_OK) rc = drop_duplicates(pieces, count, source, err);
  if (rc == BP_OK) rc = build_from_pieces(pieces, count, source, out, err);
  free_sp_pieces(pieces, count);
  return rc;
}
