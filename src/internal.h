/*
** internal.h: helpers shared by the library's source files and not part of
** the public interface: error reporting, a growable byte buffer, SHA-256,
** little-endian and varint byte readers and writers, the Aho-Corasick
** matcher, the zip reader and NFC normalization.
*/
#ifndef BYTEPIECE_INTERNAL_H
#define BYTEPIECE_INTERNAL_H

#include "bytepiece.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Sets err->code and a printf-style message; returns the code. */
int bp_fail(bp_error *err, int code, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int bp_fail_nomem(bp_error *err);

/* A growable byte buffer. Zero-initialize before first use. */
typedef struct bp_buffer {
  char *data;
  size_t length;
  size_t capacity;
} bp_buffer;
bool bp_buffer_reserve(bp_buffer *b, size_t extra);
bool bp_buffer_append(bp_buffer *b, const void *bytes, size_t n);
void bp_buffer_free(bp_buffer *b);

/* SHA-256 (FIPS 180-4). */
void bp_sha256(const uint8_t *data, size_t len, uint8_t digest[32]);

/* ---- Bytes ----------------------------------------------------------------
** Little-endian fixed-size integers and LEB128 varints, as the model value,
** the zip format and protobuf store them. Callers check bounds first.
*/
static inline uint32_t bp_get_u16(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static inline uint32_t bp_get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t bp_get_u64(const uint8_t *p) {
  return (uint64_t)bp_get_u32(p) | (uint64_t)bp_get_u32(p + 4) << 32;
}
static inline void bp_put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void bp_put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes v in its shortest form, at most 10 bytes; returns the bytes
** written. */
static inline size_t bp_put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* The model value's strict reading: returns the bytes read, or 0 when the
** varint is truncated or does not fit 64 bits; SIZE_MAX when it is not in
** its shortest form (a last byte 0 after others). bp_put_varint writes only
** the shortest, so that equal models have equal values and digests.
** (Protobuf's reading, in sentencepiece.c, accepts any form.) */
static inline size_t bp_get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v) {
  uint64_t result = 0;
  for (size_t n = 0; n < 10 && p + n < end; n++) {
    uint64_t byte = p[n];
    if (n == 9 && byte > 1) return 0;
    result |= (byte & 0x7F) << (7 * n);
    if (!(byte & 0x80)) {
      if (n > 0 && byte == 0) return SIZE_MAX;
      *v = result;
      return n + 1;
    }
  }
  return 0;
}

/* ---- Matcher --------------------------------------------------------------
** An Aho-Corasick automaton over all pieces, stored as a double-array trie.
** Feeding it one byte at a time yields, for each end position, every piece
** that ends there, longest first: exactly the candidate order of the
** reference's Viterbi.
**
** A state, and every link between cells, is a cell's byte offset in the
** array (its slot times sizeof(bp_matcher_cell)), not its slot: a transition
** then adds and compares offsets, with no scaling of a slot number to an
** address at each load (about 9 fewer instructions per byte of text).
*/
typedef struct bp_matcher_cell {
  int32_t base;  /* the child for byte b is at offset base + b * sizeof(cell) */
  int32_t check; /* the parent's offset; negative for the root and free slots */
  int32_t fail;  /* offset of the longest proper suffix that is a trie node */
  int32_t out;   /* index of the longest piece that is a suffix here, or -1 */
} bp_matcher_cell;

typedef struct bp_matcher_piece {
  double score;     /* log(count) - log(total) */
  uint32_t length;  /* bytes */
  int32_t next_out; /* next shorter piece that is a suffix of this one, or -1 */
} bp_matcher_piece;

typedef struct bp_matcher {
  bp_matcher_cell *cells;
  size_t cell_count;
  bp_matcher_piece *pieces; /* by piece index (id - 3) */
  /* What building cost: trie nodes, and probes of free slots while placing
  ** them, at most a constant times the nodes (tests check it). */
  size_t trie_nodes;
  uint64_t placement_probes;
} bp_matcher;

/* Builds the automaton over pieces[i] = bytes + offsets[i] .. offsets[i+1].
** `pieces` of the result must already hold score and length. Time is about
** linear in the pieces' total length; `interrupt` (may be NULL) is checked
** after sorting and every 65536 trie nodes, BP_INTERRUPT when it asks to
** stop. */
int bp_matcher_build(bp_matcher *mt, const uint8_t *bytes, const uint32_t *offsets, size_t n,
                     const bp_interrupt *interrupt, bp_error *err);
void bp_matcher_free(bp_matcher *mt);

/* The cell of a state (a byte offset, see above). */
static inline const bp_matcher_cell *bp_matcher_at(const bp_matcher_cell *cells,
                                                   int32_t state) {
  return (const bp_matcher_cell *)((const char *)cells + state);
}

/* The root is offset 0; every byte has an edge from it because every single
** byte is a piece, so the failure walk below always ends. */
static inline int32_t bp_matcher_step(const bp_matcher_cell *cells, int32_t state,
                                      uint8_t byte) {
  int32_t edge = (int32_t)byte * (int32_t)sizeof(bp_matcher_cell);
  for (;;) {
    const bp_matcher_cell *from = bp_matcher_at(cells, state);
    int32_t next = from->base + edge;
    if (bp_matcher_at(cells, next)->check == state) return next;
    state = from->fail;
  }
}

/* ---- Model internals ------------------------------------------------------ */

/* p^alpha of every piece, for one alpha: sampling's weights. */
typedef struct bp_alpha_weights {
  double alpha;
  double *weights; /* by piece index */
  struct bp_alpha_weights *next;
} bp_alpha_weights;

struct bp_model {
  int references;       /* atomically updated */
  uint32_t piece_count; /* vocab_size - 3 */
  uint32_t max_piece_bytes;
  uint32_t *offsets; /* piece i is bytes[offsets[i] .. offsets[i+1]) */
  uint8_t *bytes;
  uint64_t *counts; /* NULL in a model with scores only */
  bp_matcher matcher;
  uint8_t digest[32]; /* SHA-256 of the serialized payload */
  double lowest_score;
  /* The weights of the last few alphas sampled with, built on first use and
  ** kept until the model is freed; the only mutable part of a model. */
  pthread_mutex_t weights_lock;
  bp_alpha_weights *alpha_weights;
  int alpha_weights_count;
};

/* bp_model_build with a choice about the digest: compute it, take one
** already verified, or leave it zero for a model that never leaves the
** library (training's intermediate models; bp_model_serialize writes
** the digest a model holds, so such a model is never serialized). */
enum { BP_DIGEST_COMPUTE, BP_DIGEST_KNOWN, BP_DIGEST_NONE };
int bp_model_build_with_digest(const bp_piece *pieces, size_t n, bool scored, int digest_source,
                               const uint8_t known_digest[32], const bp_interrupt *interrupt,
                               bp_model **out, bp_error *err);

/* exp(x) for x <= 0 and log(s) for s >= 1, from basic IEEE operations only,
** so that sampling draws the same on every platform (model.c).
** bp_exp_nonpositive is total: NaN and -infinity give 0, x > 0 gives 1. */
double bp_exp_nonpositive(double x);
double bp_log_at_least_one(double s);

/* The weights p^alpha of all pieces of m: shared (*owned NULL) or, once
** several alphas are cached, a new array for the caller to free (*owned).
** NULL when out of memory. */
const double *bp_model_alpha_weights(bp_model *m, double alpha, double **owned);

/* The Viterbi segmentation of raw bytes taken as one chunk (no newline
** chunking, no normalization): the reference's Tokenizer._tokenize, used by
** training to re-split pieces. */
int bp_segment_whole(const bp_model *m, const uint8_t *bytes, size_t len, bp_ids *out,
                     bp_error *err);

/* ---- Encoding -------------------------------------------------------------- */

/* Positions segmented between interrupt checks and window slides: 1 MB.
** Tests make it small to put stride ends inside short texts. */
extern size_t bp_segment_stride;

/* ---- Files ---------------------------------------------------------------- */

/* Reads a whole file into a new buffer (to free with bp_free). */
int bp_read_file(const char *path, char **data, size_t *len, bp_error *err);

/* If `data` is a zip archive, extracts its single member ending in ".model"
** (or its only member) into a new buffer and returns BP_OK with *member set;
** if it is not a zip archive, returns BP_OK with *member NULL. */
int bp_zip_extract_model(const char *path, const uint8_t *data, size_t len, char **member,
                         size_t *member_len, bp_error *err);

/* ---- Normalization ------------------------------------------------------- */

/* True when every code point of the (valid UTF-8) text is one that NFC never
** changes or combines: then the text is already NFC. Sets *invalid_at to the
** offset of the first ill-formed byte, or len. */
bool bp_nfc_quick_check(const uint8_t *text, size_t len, size_t *invalid_at);

/* NFC of valid UTF-8 text into a new buffer (to free with bp_free). */
int bp_nfc(const uint8_t *text, size_t len, uint8_t **out, size_t *out_len, bp_error *err);

/* NFC of UTF-8 text into out->text and out->length (the input itself when
** it is NFC already), with the map back to the original in
** out->original_starts and out->original_ends (NULL then): for every byte
** of the NFC text, the original bytes it came from. Where NFC changed a
** stretch of text, every byte of its NFC form maps to the whole stretch.
** Invalid UTF-8 is BP_INVALID with the offset. */
int bp_nfc_mapped(const char *text, size_t len, bp_spans *out, bp_error *err);

#endif /* BYTEPIECE_INTERNAL_H */
