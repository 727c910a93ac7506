/*
** encode.c: text to ids and back.
**
** Encoding follows the reference exactly: NFC (for text), chunks that end
** after each run of newlines, and per chunk a Viterbi pass that maximises the
** sum of piece scores. The matcher yields the pieces ending at each position
** longest first, and a candidate replaces the best so far only when strictly
** better, so on an exact tie the longer piece wins, as in the reference.
** Only the last 256 best scores are kept (no piece is longer than 255
** bytes), and back pointers only for the positions whose piece is not yet
** settled: a chunk is segmented 1 MB at a time, and after each stride the
** pieces that every open path agrees on are emitted (see segment_chunk), so
** memory follows the output, not the input.
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

/* A chunk is segmented a stretch of positions at a time, so that a caller's
** interrupt is heard within a long chunk too; this is what carries over from
** one stretch to the next. */
typedef struct stretch_state {
  int32_t matcher_state;     /* the matcher's state */
  double scores[SCORE_RING]; /* best scores, or totals, of the last positions */
} stretch_state;

/* Sets back[e], for each position e of (from, to], to the piece ending the
** best segmentation of chunk[0..e). The automaton's walk and the scoring
** share one loop over the bytes: the pieces ending at e are scored as soon as
** the walk reaches e, while its cell and their entries are still in the L1
** cache, and back[] is written once instead of twice (a separate walk that
** stored each position's longest piece, then a Viterbi pass that read it
** back, cost about 1.2 times as long for the same decisions). */
static void viterbi(const bp_model *m, const uint8_t *chunk, size_t from, size_t to,
                    stretch_state *carry, int32_t *back) {
  const bp_matcher_cell *cells = m->matcher.cells;
  const bp_matcher_piece *pieces = m->matcher.pieces;
  double *best = carry->scores;
  int32_t state = carry->matcher_state;
  /* The walk runs one byte ahead of the scoring: the step to e + 1 does
  ** not depend on the scores at e, and issued first, its loads (on
  ** mix_small, a first-level cache miss per byte, and a second-level miss
  ** every other byte) are under way while e is scored, not held back
  ** behind the often mispredicted branch that ends e's candidates. One
  ** more instruction per byte, 4 to 7% less time on mix_small. */
  int32_t next = from < to ? bp_matcher_step(cells, state, chunk[from]) : state;
  for (size_t e = from + 1; e <= to; e++) {
    state = next;
    if (e < to) next = bp_matcher_step(cells, state, chunk[e]);
    /* The single byte ending at e is always a candidate, so the list is
    ** never empty, and every path score is finite (bp_model_build_with_digest): the
    ** longest candidate would beat -infinity, so it starts as the best
    ** without a comparison and the loop looks at the shorter ones. */
    int32_t choice = bp_matcher_at(cells, state)->out;
    double top = best[(e - pieces[choice].length) & (SCORE_RING - 1)] + pieces[choice].score;
    for (int32_t p = pieces[choice].next_out; p >= 0; p = pieces[p].next_out) {
      double v = best[(e - pieces[p].length) & (SCORE_RING - 1)] + pieces[p].score;
      if (v > top) {
        top = v;
        choice = p;
      }
    }
    best[e & (SCORE_RING - 1)] = top;
    back[e] = choice;
  }
  carry->matcher_state = state;
}

/* Draws one of the n candidates ending at e, given their weights relative
** to the same scale, and returns the chosen piece. */
static inline int32_t draw(bp_sampler *sampler, const double *weight, const int32_t *candidate,
                           int n, double sum) {
  double u = bp_sampler_uniform(sampler) * sum;
  int k = 0;
  while (k < n - 1 && (u -= weight[k]) >= 0) k++;
  // NOLINTNEXTLINE(clang-analyzer-core.uninitialized.UndefReturn): n >= 1, every byte is a piece so candidate[0] is always set
  return candidate[k];
}

/* Sets back[e], for e in (from, to], to a piece drawn as described above
** (the walk fused with the scoring as in viterbi), keeping the totals in the linear domain: weights[p] is
** p^alpha, and the totals of the last 256 positions are rescaled together
** by a power of two whenever the newest leaves [2^-128, 2^128], which keeps
** their ratios exact. */
static void sample_linear(const bp_model *m, const uint8_t *chunk, size_t from, size_t to,
                          bp_sampler *sampler, const double *weights, stretch_state *carry,
                          int32_t *back) {
  const bp_matcher_cell *cells = m->matcher.cells;
  const bp_matcher_piece *pieces = m->matcher.pieces;
  double *total = carry->scores;
  double weight[BP_MAX_PIECE_BYTES];
  int32_t candidate[BP_MAX_PIECE_BYTES];
  int32_t state = carry->matcher_state;
  /* A copy the compiler can keep in registers: the stores to back[] and
  ** the ring would otherwise make it load and store the generator's state
  ** around every draw. */
  bp_sampler rng = *sampler;
  /* The walk runs one byte ahead, as in viterbi. */
  int32_t next = from < to ? bp_matcher_step(cells, state, chunk[from]) : state;
  for (size_t e = from + 1; e <= to; e++) {
    state = next;
    if (e < to) next = bp_matcher_step(cells, state, chunk[e]);
    int n = 0;
    double sum = 0.0;
    for (int32_t p = bp_matcher_at(cells, state)->out; p >= 0; p = pieces[p].next_out) {
      double w = total[(e - pieces[p].length) & (SCORE_RING - 1)] * weights[p];
      sum += w;
      weight[n] = w;
      candidate[n++] = p;
    }
    back[e] = n == 1 ? candidate[0] : draw(&rng, weight, candidate, n, sum);
    total[e & (SCORE_RING - 1)] = sum;
    if (sum > 0x1p128 || sum < 0x1p-128) {
      int exponent;
      frexp(sum, &exponent);
      double scale = ldexp(1.0, -exponent);
      for (int i = 0; i < SCORE_RING; i++) total[i] *= scale;
    }
  }
  *sampler = rng;
  carry->matcher_state = state;
}

/* The same in the log domain, for alphas so large that p^alpha underflows,
** and with the logs divided by alpha: the ring holds log(Z[e]) / alpha, so
** a candidate's w = ring[start] + score is a path score as Viterbi's, finite
** for any text and any alpha (scores are at least BP_LOWEST_SCORE), and its
** weight relative to the best is exp(alpha * (w - top)), whose argument is
** at most 0, never NaN (w - top is finite, alpha finite), and -infinity at
** worst, weight 0. As alpha grows, every weight but those of candidates
** tied exactly with the best goes to 0 and log(sum) / alpha vanishes next
** to top, so the draw becomes the Viterbi path (any one of exactly tied
** paths). */
static void sample_log(const bp_model *m, const uint8_t *chunk, size_t from, size_t to,
                       bp_sampler *sampler, stretch_state *carry, int32_t *back) {
  const bp_matcher_cell *cells = m->matcher.cells;
  const bp_matcher_piece *pieces = m->matcher.pieces;
  const double alpha = sampler->alpha;
  double *scaled_log_total = carry->scores;
  double weight[BP_MAX_PIECE_BYTES];
  int32_t candidate[BP_MAX_PIECE_BYTES];
  int32_t state = carry->matcher_state;
  /* The walk runs one byte ahead, as in viterbi. */
  int32_t next = from < to ? bp_matcher_step(cells, state, chunk[from]) : state;
  for (size_t e = from + 1; e <= to; e++) {
    state = next;
    if (e < to) next = bp_matcher_step(cells, state, chunk[e]);
    int n = 0;
    double top = -INFINITY;
    for (int32_t p = bp_matcher_at(cells, state)->out; p >= 0; p = pieces[p].next_out) {
      double w = scaled_log_total[(e - pieces[p].length) & (SCORE_RING - 1)] + pieces[p].score;
      if (w > top) top = w;
      weight[n] = w;
      candidate[n++] = p;
    }
    double sum = 0.0;
    for (int k = 0; k < n; k++)
      sum += weight[k] = bp_exp_nonpositive(alpha * (weight[k] - top));
    back[e] = n == 1 ? candidate[0] : draw(sampler, weight, candidate, n, sum);
    scaled_log_total[e & (SCORE_RING - 1)] = top + bp_log_at_least_one(sum) / alpha;
  }
  carry->matcher_state = state;
}

/* Which way to sample depends on the model and alpha only, so that a seed
** always gives the same draws: linear while every p^alpha >= 2^-577. */
static bool sample_in_linear_domain(const bp_model *m, double alpha) {
  return alpha * m->lowest_score >= -400.0;
}

/* What segmenting needs besides the model: the sampler and its weights, the
** interrupt, where the tokens go, and the back pointers of the positions
** not yet settled. */
typedef struct segmenter {
  const bp_model *m;
  bp_sampler *sampler;
  const double *weights; /* p^alpha, when sampling in the linear domain */
  const bp_interrupt *interrupt;
  size_t since_check; /* bytes segmented since the interrupt was checked */
  bp_ids *out;        /* NULL when only counting */
  size_t tokens;
  int32_t *back; /* back pointers of positions base..to, from index 0 */
  size_t back_capacity;
  int32_t stack_back[STACK_BACK_POINTERS];
} segmenter;

size_t bp_segment_stride = 1u << 20;

/* Appends the tokens of the best (or drawn) path from position `to` back to
** position 0 of the window, in text order. */
static int emit_tokens(segmenter *seg, size_t to, bp_error *err) {
  const bp_matcher_piece *pieces = seg->m->matcher.pieces;
  const int32_t *back = seg->back;
  size_t n = 0;
  for (size_t e = to; e > 0; n++) e -= pieces[back[e]].length;
  seg->tokens += n;
  bp_ids *out = seg->out;
  if (!out) return BP_OK;
  if (n > out->capacity - out->count) {
    size_t capacity = out->capacity ? out->capacity : 64;
    while (capacity - out->count < n) capacity *= 2;
    int32_t *ids = bp_realloc(out->ids, capacity * sizeof *ids);
    if (!ids) return bp_fail_nomem(err);
    out->ids = ids;
    out->capacity = capacity;
  }
  /* Back pointers run from the end; write the ids from the end too. */
  int32_t *slot = out->ids + out->count + n;
  for (size_t e = to; e > 0;) {
    int32_t p = back[e];
    *--slot = p + BP_FIRST_PIECE_ID;
    e -= pieces[p].length;
  }
  out->count += n;
  return BP_OK;
}

/* Marks on back pointers while looking for where paths meet (piece indexes
** stay below both). */
#define ON_PATH 0x40000000 /* on the path from the window's last position */
#define SEEN 0x20000000    /* on another path already followed */

/* How far back from the window's end to look for where paths meet. */
#define MEET_SPAN (1u << 16)

/* The latest position that every path still open at `to` goes through:
** whatever the rest of the chunk holds, the final path ends at one of the
** positions to-L+1..to (L the longest piece) and follows back pointers from
** there, so the pieces up to that position are settled. Paths are followed
** back MEET_SPAN positions at most, each position once (a path that runs
** into one followed before joins it); 0 when they do not meet there. */
static size_t settled_position(const segmenter *seg, size_t to) {
  const bp_matcher_piece *pieces = seg->m->matcher.pieces;
  int32_t *back = seg->back;
  size_t longest = seg->m->max_piece_bytes;
  if (to < longest) return 0;
  size_t floor = to > MEET_SPAN ? to - MEET_SPAN : 0;
  for (size_t e = to; e > floor;) {
    int32_t p = back[e];
    back[e] = p | ON_PATH;
    e -= pieces[p].length;
  }
  size_t meet = to;
  for (size_t start = to - longest + 1; start < to && meet > 0; start++) {
    size_t e = start;
    while (e > floor && !(back[e] & (ON_PATH | SEEN))) {
      int32_t p = back[e];
      back[e] = p | SEEN;
      e -= pieces[p].length;
    }
    /* Joining a path followed before changes nothing: it met the first
    ** path already (or the search has failed). */
    if (e <= floor)
      meet = 0;
    else if (e < meet && (back[e] & ON_PATH))
      meet = e;
  }
  for (size_t e = floor + 1; e <= to; e++) back[e] &= ~(ON_PATH | SEEN);
  return meet;
}

/* Segments one chunk, a stride of positions at a time. After each stride the
** pieces every open path agrees on are emitted and the window slides past
** them, so the back pointers kept stay about a stride long however long the
** chunk is (paths meet within a few pieces in text). Positions are counted
** from the window's start; the score ring turns with it. */
static int segment_chunk(segmenter *seg, const uint8_t *chunk, size_t chunk_len,
                         bp_error *err) {
  stretch_state carry;
  carry.matcher_state = 0;
  carry.scores[0] = seg->sampler && seg->weights ? 1.0 : 0.0; /* the empty prefix */
  size_t from = 0, length = chunk_len; /* positions from the window's start */
  /* Where paths do not meet (a long run of one character can keep two
  ** segmentations open), look again only MEET_SPAN positions later, so
  ** that the looking stays linear in the text whatever the stride. */
  size_t next_look = 0;
  while (from < length) {
    size_t stride = bp_segment_stride - seg->since_check;
    size_t to = length - from > stride ? from + stride : length;
    if (to + 1 > seg->back_capacity) {
      size_t capacity = to + 1 > 2 * seg->back_capacity ? to + 1 : 2 * seg->back_capacity;
      int32_t *grown = bp_malloc(capacity * sizeof *grown);
      if (!grown) return bp_fail_nomem(err);
      memcpy(grown, seg->back, (from + 1) * sizeof *grown);
      if (seg->back != seg->stack_back) bp_free(seg->back);
      seg->back = grown;
      seg->back_capacity = capacity;
    }
    if (!seg->sampler)
      viterbi(seg->m, chunk, from, to, &carry, seg->back);
    else if (seg->weights)
      sample_linear(seg->m, chunk, from, to, seg->sampler, seg->weights, &carry, seg->back);
    else
      sample_log(seg->m, chunk, from, to, seg->sampler, &carry, seg->back);
    seg->since_check += to - from;
    if (seg->since_check >= bp_segment_stride) {
      seg->since_check = 0;
      if (seg->interrupt && seg->interrupt->check(seg->interrupt->context))
        return bp_fail(err, BP_INTERRUPT, "interrupted");
    }
    from = to;
    if (to == length) break;
    if (to < next_look) continue;
    size_t settled = settled_position(seg, to);
    if (settled == 0) {
      next_look = to + MEET_SPAN;
      continue;
    }
    next_look = 0;
    int rc = emit_tokens(seg, settled, err);
    if (rc != BP_OK) return rc;
    memmove(seg->back, seg->back + settled, (to - settled + 1) * sizeof *seg->back);
    double ring[SCORE_RING];
    for (size_t i = 0; i < SCORE_RING; i++)
      // NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign): slots past `to` are copied, never read
      ring[i] = carry.scores[(i + settled) & (SCORE_RING - 1)];
    memcpy(carry.scores, ring, sizeof ring);
    chunk += settled;
    from -= settled;
    length -= settled;
  }
  return emit_tokens(seg, length, err);
}

/* Segments raw bytes chunk by chunk (or as one chunk when `chunked` is
** false); appends ids to `out` when it is not NULL and adds the number of
** tokens to *count. */
static int segment(const bp_model *m, const uint8_t *text, size_t len, bool chunked,
                   bp_sampler *sampler, const bp_interrupt *interrupt, bp_ids *out,
                   size_t *count, bp_error *err) {
  segmenter seg;
  seg.m = m;
  seg.sampler = sampler;
  seg.weights = NULL;
  seg.interrupt = interrupt;
  seg.since_check = 0;
  seg.out = out;
  seg.tokens = 0;
  seg.back = seg.stack_back;
  seg.back_capacity = STACK_BACK_POINTERS;
  double *owned_weights = NULL;
  if (sampler && sample_in_linear_domain(m, sampler->alpha) && len > 0) {
    /* The model caches weights; the cache is its only mutable state. */
    seg.weights = bp_model_alpha_weights((bp_model *)m, sampler->alpha, &owned_weights);
    if (!seg.weights) return bp_fail_nomem(err);
  }
  const uint8_t *end = text + len;
  int rc = BP_OK;
  while (text < end && rc == BP_OK) {
    /* A chunk: everything up to a newline, then the whole run of newlines. */
    const uint8_t *newline = chunked ? memchr(text, '\n', (size_t)(end - text)) : NULL;
    const uint8_t *chunk_end = newline ? newline : end;
    while (chunk_end < end && *chunk_end == '\n') chunk_end++;
    rc = segment_chunk(&seg, text, (size_t)(chunk_end - text), err);
    text = chunk_end;
  }
  if (seg.back != seg.stack_back) bp_free(seg.back);
  bp_free(owned_weights);
  *count += seg.tokens;
  return rc;
}

/* Runs `segment` on the text as the reference sees it: NFC for text. */
static int encode_input(const bp_model *m, const char *text, size_t len, int input,
                        bp_sampler *sampler, const bp_interrupt *interrupt, bp_ids *out,
                        size_t *count, bp_error *err) {
  if (input == BP_INPUT_BYTES)
    return segment(m, (const uint8_t *)text, len, true, sampler, interrupt, out, count, err);
  char *normalized;
  size_t normalized_len;
  int rc = bp_normalize(text, len, &normalized, &normalized_len, err);
  if (rc != BP_OK) return rc;
  rc = segment(m, (const uint8_t *)(normalized ? normalized : text), normalized_len, true,
               sampler, interrupt, out, count, err);
  bp_free(normalized);
  return rc;
}

int bp_encode(const bp_model *m, const char *text, size_t len, int input, bp_sampler *sampler,
              const bp_interrupt *interrupt, bp_ids *out, bp_error *err) {
  size_t count = 0;
  return encode_input(m, text, len, input, sampler, interrupt, out, &count, err);
}

int bp_count(const bp_model *m, const char *text, size_t len, int input, bp_sampler *sampler,
             const bp_interrupt *interrupt, size_t *count, bp_error *err) {
  *count = 0;
  return encode_input(m, text, len, input, sampler, interrupt, NULL, count, err);
}

int bp_segment_whole(const bp_model *m, const uint8_t *bytes, size_t len, bp_ids *out,
                     bp_error *err) {
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
    for (int32_t p = bp_matcher_at(cells, state)->out; p >= 0; p = pieces[p].next_out)
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

int bp_decode(const bp_model *m, const int64_t *ids, size_t n, char **bytes, size_t *len,
              bp_error *err) {
  *bytes = NULL;
  *len = 0;
  uint32_t vocab_size = bp_model_vocab_size(m);
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= vocab_size)
      return bp_fail(err, BP_INVALID, "unknown id %lld (vocab_size is %u)", (long long)ids[i],
                     vocab_size);
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
