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
**
** Sampling replaces the maximum by a sum over the same lattice: Z[e] is the
** log of the total weight of all segmentations of chunk[0..e), where a
** piece weighs p^alpha, and the last piece ending at e is drawn with
** probability weight(path to its start) * p^alpha / exp(Z[e]). Following the
** drawn back pointers from the end yields a segmentation with probability
** proportional to its weight: the reference's one-pass "perfect sampling",
** drawing once per position instead of once per candidate.
*/
#include "internal.h"

#include <math.h>
#include <string.h>

#define SCORE_RING 256 /* a power of two above BP_MAX_PIECE_BYTES */
#define STACK_BACK_POINTERS 4096
#define INTERRUPT_STRIDE (1u << 20) /* bytes between interrupt checks */

/* A chunk is segmented a stretch of positions at a time, so that a caller's
** interrupt is heard within a long chunk too; this is what carries over from
** one stretch to the next. */
typedef struct lattice {
  int32_t state;             /* the matcher's state */
  double ring[SCORE_RING];   /* best scores, or totals, of the last positions */
} lattice;

/* Records in out[e] the longest piece ending at each position e of
** (from, to]. The automaton's walk is a chain of dependent loads; doing it
** apart from the scoring leaves the scoring's loads independent. */
static void match_chunk(const bp_model *m, const uint8_t *chunk, size_t from, size_t to,
                        lattice *l, int32_t *out) {
  const bp_matcher_cell *cells = m->matcher.cells;
  int32_t state = l->state;
  for (size_t e = from + 1; e <= to; e++) {
    state = bp_matcher_step(cells, state, chunk[e - 1]);
    out[e] = cells[state].out;
  }
  l->state = state;
}

/* Replaces back[e] for e in (from, to], as filled by match_chunk, with the
** piece ending the best segmentation of chunk[0..e). */
static void viterbi(const bp_model *m, size_t from, size_t to, lattice *l, int32_t *back) {
  const bp_matcher_piece *pieces = m->matcher.pieces;
  double *best = l->ring;
  for (size_t e = from + 1; e <= to; e++) {
    double top = -INFINITY;
    int32_t choice = -1;
    for (int32_t p = back[e]; p >= 0; p = pieces[p].next_out) {
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

/* Draws back[e] among the n candidates ending at e, given their weights
** relative to the same scale; returns nothing, stores the choice. */
static inline int32_t draw(bp_sampler *sampler, const double *weight,
                           const int32_t *candidate, int n, double sum) {
  double u = bp_sampler_uniform(sampler) * sum;
  int k = 0;
  while (k < n - 1 && (u -= weight[k]) >= 0) k++;
  return candidate[k];
}

/* Replaces back[1..len], as filled by match_chunk, with a piece drawn as
** described above, keeping the totals in the linear domain: weights[p] is
** p^alpha, and the totals of the last 256 positions are rescaled together
** by a power of two whenever the newest leaves [2^-128, 2^128], which keeps
** their ratios exact. */
static void sample_linear(const bp_model *m, size_t from, size_t to, bp_sampler *sampler,
                          const double *weights, lattice *l, int32_t *back) {
  const bp_matcher_piece *pieces = m->matcher.pieces;
  double *total = l->ring;
  double weight[BP_MAX_PIECE_BYTES];
  int32_t candidate[BP_MAX_PIECE_BYTES];
  for (size_t e = from + 1; e <= to; e++) {
    int n = 0;
    double sum = 0.0;
    for (int32_t p = back[e]; p >= 0; p = pieces[p].next_out) {
      double w = total[(e - pieces[p].length) & (SCORE_RING - 1)] * weights[p];
      sum += w;
      weight[n] = w;
      candidate[n++] = p;
    }
    back[e] = n == 1 ? candidate[0] : draw(sampler, weight, candidate, n, sum);
    total[e & (SCORE_RING - 1)] = sum;
    if (sum > 0x1p128 || sum < 0x1p-128) {
      int exponent;
      frexp(sum, &exponent);
      double scale = ldexp(1.0, -exponent);
      for (int i = 0; i < SCORE_RING; i++) total[i] *= scale;
    }
  }
}

/* The same in the log domain, for alphas so large that p^alpha underflows. */
static void sample_log(const bp_model *m, size_t from, size_t to, bp_sampler *sampler,
                       lattice *l, int32_t *back) {
  const bp_matcher_piece *pieces = m->matcher.pieces;
  const double alpha = sampler->alpha;
  double *log_total = l->ring;
  double weight[BP_MAX_PIECE_BYTES];
  int32_t candidate[BP_MAX_PIECE_BYTES];
  for (size_t e = from + 1; e <= to; e++) {
    int n = 0;
    double top = -INFINITY;
    for (int32_t p = back[e]; p >= 0; p = pieces[p].next_out) {
      double w = log_total[(e - pieces[p].length) & (SCORE_RING - 1)] +
                 alpha * pieces[p].score;
      if (w > top) top = w;
      weight[n] = w;
      candidate[n++] = p;
    }
    double sum = 0.0;
    for (int k = 0; k < n; k++) sum += weight[k] = bp_exp_nonpositive(weight[k] - top);
    back[e] = n == 1 ? candidate[0] : draw(sampler, weight, candidate, n, sum);
    log_total[e & (SCORE_RING - 1)] = top + bp_log_at_least_one(sum);
  }
}

/* Which way to sample depends on the model and alpha only, so that a seed
** always gives the same draws: linear while every p^alpha >= 2^-577. */
static bool sample_in_linear_domain(const bp_model *m, double alpha) {
  return alpha * m->lowest_score >= -400.0;
}

/* Segments raw bytes chunk by chunk (or as one chunk when `chunked` is
** false); appends ids to `out` when it is not NULL and adds the number of
** tokens to *count. */
static int segment(const bp_model *m, const uint8_t *text, size_t len,
                   bool chunked, bp_sampler *sampler, const bp_interrupt *interrupt,
                   bp_ids *out, size_t *count, bp_error *err) {
  size_t since_check = 0; /* bytes segmented since the last interrupt check */
  int32_t stack_back[STACK_BACK_POINTERS];
  int32_t *back = stack_back;
  size_t back_capacity = STACK_BACK_POINTERS;
  const bp_matcher_piece *pieces = m->matcher.pieces;
  const uint8_t *end = text + len;
  size_t tokens = 0;
  int rc = BP_OK;
  const double *weights = NULL;
  double *owned_weights = NULL;
  if (sampler && sample_in_linear_domain(m, sampler->alpha) && len > 0) {
    /* The model caches weights; the cache is its only mutable state. */
    weights = bp_model_alpha_weights((bp_model *)m, sampler->alpha, &owned_weights);
    if (!weights) return bp_fail_nomem(err);
  }
  while (text < end) {
    /* A chunk: everything up to a newline, then the whole run of newlines. */
    const uint8_t *newline = chunked ? memchr(text, '\n', (size_t)(end - text)) : NULL;
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
    lattice l;
    l.state = 0;
    l.ring[0] = sampler && weights ? 1.0 : 0.0; /* the empty prefix */
    for (size_t from = 0; from < chunk_len && rc == BP_OK;) {
      size_t to = chunk_len - from > INTERRUPT_STRIDE - since_check
                      ? from + (INTERRUPT_STRIDE - since_check) : chunk_len;
      match_chunk(m, text, from, to, &l, back);
      if (!sampler)
        viterbi(m, from, to, &l, back);
      else if (weights)
        sample_linear(m, from, to, sampler, weights, &l, back);
      else
        sample_log(m, from, to, sampler, &l, back);
      since_check += to - from;
      if (since_check == INTERRUPT_STRIDE) {
        since_check = 0;
        if (interrupt && interrupt->check(interrupt->context))
          rc = bp_fail(err, BP_INTERRUPT, "interrupted");
      }
      from = to;
    }
    if (rc != BP_OK) break;
    size_t chunk_tokens = 0;
    for (size_t e = chunk_len; e > 0; chunk_tokens++) e -= pieces[back[e]].length;
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
        e -= pieces[p].length;
      }
      out->count += chunk_tokens;
    }
    tokens += chunk_tokens;
    text = chunk_end;
  }
  if (back != stack_back) bp_free(back);
  bp_free(owned_weights);
  *count += tokens;
  return rc;
}

/* Runs `segment` on the text as the reference sees it: NFC for text. */
static int encode_input(const bp_model *m, const char *text, size_t len,
                        int input, bp_sampler *sampler, const bp_interrupt *interrupt,
                        bp_ids *out, size_t *count, bp_error *err) {
  if (input == BP_INPUT_BYTES)
    return segment(m, (const uint8_t *)text, len, true, sampler, interrupt, out, count, err);
  char *normalized;
  size_t normalized_len;
  int rc = bp_normalize(text, len, &normalized, &normalized_len, err);
  if (rc != BP_OK) return rc;
  rc = segment(m, (const uint8_t *)(normalized ? normalized : text),
               normalized_len, true, sampler, interrupt, out, count, err);
  bp_free(normalized);
  return rc;
}

int bp_encode(const bp_model *m, const char *text, size_t len, int input,
              bp_sampler *sampler, const bp_interrupt *interrupt, bp_ids *out,
              bp_error *err) {
  size_t count = 0;
  return encode_input(m, text, len, input, sampler, interrupt, out, &count, err);
}

int bp_count(const bp_model *m, const char *text, size_t len, int input,
             bp_sampler *sampler, const bp_interrupt *interrupt, size_t *count,
             bp_error *err) {
  *count = 0;
  return encode_input(m, text, len, input, sampler, interrupt, NULL, count, err);
}

int bp_segment_whole(const bp_model *m, const uint8_t *bytes, size_t len,
                     bp_ids *out, bp_error *err) {
  size_t count = 0;
  return segment(m, bytes, len, false, NULL, NULL, out, &count, err);
}

int bp_pieces_inside(const bp_model *m, const uint8_t *bytes, size_t len,
                     void (*found)(void *context, size_t start, size_t end, uint32_t id),
                     void *context) {
  const bp_matcher_cell *cells = m->matcher.cells;
  const bp_matcher_piece *pieces = m->matcher.pieces;
  int32_t state = 0;
  for (size_t e = 1; e <= len; e++) {
    state = bp_matcher_step(cells, state, bytes[e - 1]);
    for (int32_t p = cells[state].out; p >= 0; p = pieces[p].next_out)
      if (pieces[p].length <= e)
        found(context, e - pieces[p].length, e, (uint32_t)p + BP_FIRST_PIECE_ID);
  }
  return BP_OK;
}

/* SplitMix64 (Steele, Lea and Flood, 2014) spreads the seed over the state. */
static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void bp_sampler_init(bp_sampler *s, double alpha, uint64_t seed) {
  s->alpha = alpha;
  for (int i = 0; i < 4; i++) s->state[i] = splitmix64(&seed);
}

static uint64_t rotate_left(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman and Vigna, 2018). */
double bp_sampler_uniform(bp_sampler *s) {
  uint64_t *q = s->state;
  uint64_t result = rotate_left(q[1] * 5, 7) * 9;
  uint64_t t = q[1] << 17;
  q[2] ^= q[0];
  q[3] ^= q[1];
  q[1] ^= q[2];
  q[0] ^= q[3];
  q[2] ^= t;
  q[3] = rotate_left(q[3], 45);
  return (double)(result >> 11) * 0x1.0p-53;
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
