/*
** encode.c: text to ids and back.
**
** Encoding follows the reference exactly: NFC (for text), chunks that end
** after each run of newlines, and per chunk a Viterbi pass that maximises the
** sum of piece scores. The matcher yields the pieces ending at each position
** longest first, and a candidate replaces the best so far only when strictly
** better, so on an exact tie the longer piece wins, as in the reference.
** Only the last 256 best scores are kept (no piece is longer than 255
** bytes); back pointers take 4 bytes per byte of the longest chunk.
*/
#include "internal.h"

#include <math.h>
#include <string.h>

#define SCORE_RING 256 /* a power of two above BP_MAX_PIECE_BYTES */
#define STACK_BACK_POINTERS 4096

/* Fills back[1..len] with the piece index ending the best segmentation of
** chunk[0..e). */
static void viterbi(const bp_model *m, const uint8_t *chunk, size_t len,
                    int32_t *back) {
  const bp_matcher_cell *cells = m->matcher.cells;
  const bp_matcher_piece *pieces = m->matcher.pieces;
  double best[SCORE_RING];
  best[0] = 0.0;
  int32_t state = 0;
  for (size_t e = 1; e <= len; e++) {
    state = bp_matcher_step(cells, state, chunk[e - 1]);
    double top = -INFINITY;
    int32_t choice = -1;
    for (int32_t p = cells[state].out; p >= 0; p = pieces[p].next_out) {
      double v = best[(e - pieces[p].length) & (SCORE_RING - 1)] + pieces[p].score;
      if (v > top) {
        top = v;
        choice = p;
      }
    }
    best[e & (SCORE_RING - 1)] = top;
    back[e] = choice;
  }
}

/* Segments raw bytes chunk by chunk; appends ids to `out` when it is not
** NULL and adds the number of tokens to *count. */
static int segment(const bp_model *m, const uint8_t *text, size_t len,
                   bp_ids *out, size_t *count, bp_error *err) {
  int32_t stack_back[STACK_BACK_POINTERS];
  int32_t *back = stack_back;
  size_t back_capacity = STACK_BACK_POINTERS;
  const uint32_t *offsets = m->offsets;
  const uint8_t *end = text + len;
  size_t tokens = 0;
  int rc = BP_OK;
  while (text < end) {
    /* A chunk: everything up to a newline, then the whole run of newlines. */
    const uint8_t *newline = memchr(text, '\n', (size_t)(end - text));
    const uint8_t *chunk_end = newline ? newline : end;
    while (chunk_end < end && *chunk_end == '\n') chunk_end++;
    size_t chunk_len = (size_t)(chunk_end - text);
    if (chunk_len + 1 > back_capacity) {
      if (back != stack_back) bp_free(back);
      back = bp_malloc((chunk_len + 1) * sizeof *back);
      if (!back) {
        back = stack_back;
        rc = bp_fail_nomem(err);
        break;
      }
      back_capacity = chunk_len + 1;
    }
    viterbi(m, text, chunk_len, back);
    size_t chunk_tokens = 0;
    for (size_t e = chunk_len; e > 0; chunk_tokens++) {
      int32_t p = back[e];
      e -= offsets[p + 1] - offsets[p];
    }
    if (out) {
      if (chunk_tokens > out->capacity - out->count) {
        size_t capacity = out->capacity ? out->capacity : 64;
        while (capacity - out->count < chunk_tokens) capacity *= 2;
        int32_t *ids = bp_realloc(out->ids, capacity * sizeof *ids);
        if (!ids) {
          rc = bp_fail_nomem(err);
          break;
        }
        out->ids = ids;
        out->capacity = capacity;
      }
      /* Back pointers run from the end; write the ids from the end too. */
      int32_t *slot = out->ids + out->count + chunk_tokens;
      for (size_t e = chunk_len; e > 0;) {
        int32_t p = back[e];
        *--slot = p + BP_FIRST_PIECE_ID;
        e -= offsets[p + 1] - offsets[p];
      }
      out->count += chunk_tokens;
    }
    tokens += chunk_tokens;
    text = chunk_end;
  }
  if (back != stack_back) bp_free(back);
  *count += tokens;
  return rc;
}

/* Runs `segment` on the text as the reference sees it: NFC for text. */
static int encode_input(const bp_model *m, const char *text, size_t len,
                        int input, bp_ids *out, size_t *count, bp_error *err) {
  if (input == BP_INPUT_BYTES)
    return segment(m, (const uint8_t *)text, len, out, count, err);
  char *normalized;
  size_t normalized_len;
  int rc = bp_normalize(text, len, &normalized, &normalized_len, err);
  if (rc != BP_OK) return rc;
  rc = segment(m, (const uint8_t *)(normalized ? normalized : text),
               normalized_len, out, count, err);
  bp_free(normalized);
  return rc;
}

int bp_encode(const bp_model *m, const char *text, size_t len, int input,
              bp_ids *out, bp_error *err) {
  size_t count = 0;
  return encode_input(m, text, len, input, out, &count, err);
}

int bp_count(const bp_model *m, const char *text, size_t len, int input,
             size_t *count, bp_error *err) {
  *count = 0;
  return encode_input(m, text, len, input, NULL, count, err);
}

int bp_decode(const bp_model *m, const int64_t *ids, size_t n, char **bytes,
              size_t *len, bp_error *err) {
  *bytes = NULL;
  *len = 0;
  uint32_t vocab_size = bp_model_vocab_size(m);
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= vocab_size)
      return bp_fail(err, BP_INVALID, "unknown id %lld (vocab_size is %u)",
                     (long long)ids[i], vocab_size);
    if (ids[i] >= BP_FIRST_PIECE_ID) {
      uint32_t index = (uint32_t)ids[i] - BP_FIRST_PIECE_ID;
      total += m->offsets[index + 1] - m->offsets[index];
    }
  }
  char *result = bp_malloc(total + 1);
  if (!result) return bp_fail_nomem(err);
  char *o = result;
  for (size_t i = 0; i < n; i++) {
    if (ids[i] < BP_FIRST_PIECE_ID) continue;
    uint32_t index = (uint32_t)ids[i] - BP_FIRST_PIECE_ID;
    size_t length = m->offsets[index + 1] - m->offsets[index];
    memcpy(o, m->bytes + m->offsets[index], length);
    o += length;
  }
  *o = 0;
  *bytes = result;
  *len = total;
  return BP_OK;
}
