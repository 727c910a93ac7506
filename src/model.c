/*
** model.c: building a model from pieces (validation, scores, the matcher),
** reference counting, accessors, and the compact binary model value that
** the SQLite binding stores.
*/
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char value_magic[8] = {'B', 'P', 'M', 'O', 'D', 'E', 'L', 0};
static int value_write(const bp_model *m, uint8_t **value, size_t *len, bp_error *err);

#define MAX_ALPHA_WEIGHTS 4

static void model_free(bp_model *m) {
  if (!m) return;
  while (m->alpha_weights) {
    bp_alpha_weights *next = m->alpha_weights->next;
    bp_free(m->alpha_weights->weights);
    bp_free(m->alpha_weights);
    m->alpha_weights = next;
  }
  pthread_mutex_destroy(&m->weights_lock);
  bp_free(m->offsets);
  bp_free(m->bytes);
  bp_free(m->counts);
  bp_matcher_free(&m->matcher);
  bp_free(m);
}

static int model_validate(const bp_piece *pieces, size_t n, bool scored, bp_error *err) {
  if (n + BP_FIRST_PIECE_ID > INT32_MAX)
    return bp_fail(err, BP_TOOBIG, "too many pieces (%zu)", n);
  bool seen_byte[256] = {false};
  for (size_t i = 0; i < n; i++) {
    const bp_piece *p = &pieces[i];
    if (p->id < BP_FIRST_PIECE_ID || p->id >= n + BP_FIRST_PIECE_ID)
      return bp_fail(err, BP_FORMAT,
                     "piece id %u is out of range: ids must run from 3 to %zu "
                     "without gaps",
                     p->id, n + BP_FIRST_PIECE_ID - 1);
    if (p->length == 0) return bp_fail(err, BP_FORMAT, "piece id %u is empty", p->id);
    if (p->length > BP_MAX_PIECE_BYTES)
      return bp_fail(err, BP_FORMAT, "piece id %u is %u bytes long; the limit is %d", p->id,
                     p->length, BP_MAX_PIECE_BYTES);
    if (!scored && p->count == 0)
      return bp_fail(err, BP_FORMAT,
                     "piece id %u has count 0; counts must "
                     "be positive",
                     p->id);
    /* Written so that NaN fails too. */
    if (scored && !(p->score <= 0.0 && p->score >= BP_LOWEST_SCORE))
      return bp_fail(err, BP_FORMAT,
                     "piece id %u has score %g; scores must be "
                     "finite, at most 0 and at least %g",
                     p->id, p->score, BP_LOWEST_SCORE);
    if (p->length == 1) seen_byte[p->bytes[0]] = true;
  }
  for (int b = 0; b < 256; b++)
    if (!seen_byte[b])
      return bp_fail(err, BP_FORMAT,
                     "the single byte 0x%02X is not a piece; every byte must be", b);
  return BP_OK;
}

int bp_model_build(const bp_piece *pieces, size_t n, bp_model **out, bp_error *err) {
  return bp_model_build_with_digest(pieces, n, false, BP_DIGEST_COMPUTE, NULL, NULL, out, err);
}

int bp_model_build_scored(const bp_piece *pieces, size_t n, bp_model **out, bp_error *err) {
  return bp_model_build_with_digest(pieces, n, true, BP_DIGEST_COMPUTE, NULL, NULL, out, err);
}

/* Everything about the pieces is checked before the matcher is built:
** model_validate (ids, lengths, counts, scores, single bytes), then
** duplicate ids and the sum of the counts here, duplicate bytes while the
** trie is built. What encoding relies on: every single byte is a piece, so
** every position of any text has a candidate, and every score is finite and
** at least BP_LOWEST_SCORE, so the score of any path through any text
** (at most 2^64 pieces) is finite, at least 2^64 * BP_LOWEST_SCORE, about
** -6.3e57. A candidate then always beats the initial -infinity and every
** back pointer names a piece. */
int bp_model_build_with_digest(const bp_piece *pieces, size_t n, bool scored, int digest_source,
                               const uint8_t known_digest[32], const bp_interrupt *interrupt,
                               bp_model **out, bp_error *err) {
  *out = NULL;
  int rc = model_validate(pieces, n, scored, err);
  if (rc != BP_OK) return rc;
  bp_model *m = bp_malloc(sizeof *m);
  if (!m) return bp_fail_nomem(err);
  memset(m, 0, sizeof *m);
  pthread_mutex_init(&m->weights_lock, NULL);
  m->references = 1;
  m->piece_count = (uint32_t)n;
  size_t total_bytes = 0;
  for (size_t i = 0; i < n; i++) total_bytes += pieces[i].length;
  if (total_bytes > UINT32_MAX) {
    bp_free(m);
    return bp_fail(err, BP_TOOBIG, "the pieces add up to more than 4 GiB");
  }
  m->offsets = bp_malloc((n + 1) * sizeof *m->offsets);
  m->bytes = bp_malloc(total_bytes);
  m->counts = scored ? NULL : bp_malloc(n * sizeof *m->counts);
  m->matcher.pieces = bp_malloc(n * sizeof *m->matcher.pieces);
  int32_t *position = bp_malloc(n * sizeof *position);
  if (!m->offsets || !m->bytes || (!scored && !m->counts) || !m->matcher.pieces || !position) {
    bp_free(position);
    model_free(m);
    return bp_fail_nomem(err);
  }
  for (size_t i = 0; i < n; i++) position[i] = -1;
  for (size_t i = 0; i < n; i++) {
    uint32_t index = pieces[i].id - BP_FIRST_PIECE_ID;
    if (position[index] >= 0) {
      bp_free(position);
      model_free(m);
      return bp_fail(err, BP_FORMAT, "piece id %u appears twice", pieces[i].id);
    }
    position[index] = (int32_t)i;
  }
  /* Lay the pieces out in id order and sum the counts. */
  uint64_t total = 0;
  size_t offset = 0;
  for (size_t index = 0; index < n; index++) {
    const bp_piece *p = &pieces[position[index]];
    m->offsets[index] = (uint32_t)offset;
    memcpy(m->bytes + offset, p->bytes, p->length);
    offset += p->length;
    if (scored) {
      m->matcher.pieces[index].score = p->score;
    } else {
      m->counts[index] = p->count;
    }
    if (!scored && p->count > UINT64_MAX - total) {
      bp_free(position);
      model_free(m);
      return bp_fail(err, BP_FORMAT,
                     "the piece counts add up to more than "
                     "2^64");
    }
    total += p->count;
    if (p->length > m->max_piece_bytes) m->max_piece_bytes = p->length;
  }
  m->offsets[n] = (uint32_t)offset;
  bp_free(position);
  /* Every count and every sum of counts shown (bp_vocab, bp_models) must
  ** fit a signed 64-bit integer, SQL's INTEGER. */
  if (total > INT64_MAX) {
    model_free(m);
    return bp_fail(err, BP_FORMAT, "the piece counts add up to more than 2^63 - 1");
  }
  /* The reference's score: log(count) - log(total), in double. (total > 0:
  ** every byte is a piece with a positive count.) */
  // cppcheck-suppress invalidFunctionArg
  double log_total = scored ? 0.0 : log((double)total);
  m->lowest_score = 0.0;
  for (size_t i = 0; i < n; i++) {
    if (!scored) m->matcher.pieces[i].score = log((double)m->counts[i]) - log_total;
    if (m->matcher.pieces[i].score < m->lowest_score)
      m->lowest_score = m->matcher.pieces[i].score;
    m->matcher.pieces[i].length = m->offsets[i + 1] - m->offsets[i];
    m->matcher.pieces[i].next_out = -1;
  }
  rc = bp_matcher_build(&m->matcher, m->bytes, m->offsets, n, interrupt, err);
  if (rc != BP_OK) {
    model_free(m);
    return rc;
  }
  /* The digest identifies the model by content, whatever it was read from. */
  if (digest_source == BP_DIGEST_KNOWN) {
    memcpy(m->digest, known_digest, 32);
  } else if (digest_source == BP_DIGEST_COMPUTE) {
    uint8_t *value;
    size_t value_len;
    rc = value_write(m, &value, &value_len, err);
    if (rc != BP_OK) {
      model_free(m);
      return rc;
    }
    bp_sha256(value + BP_VALUE_HEADER_BYTES, value_len - BP_VALUE_HEADER_BYTES, m->digest);
    bp_free(value);
  }
  *out = m;
  return BP_OK;
}

bp_model *bp_model_retain(bp_model *m) {
  if (m) __atomic_add_fetch(&m->references, 1, __ATOMIC_RELAXED);
  return m;
}

void bp_model_release(bp_model *m) {
  if (m && __atomic_sub_fetch(&m->references, 1, __ATOMIC_ACQ_REL) == 0) model_free(m);
}

uint32_t bp_model_vocab_size(const bp_model *m) { return m->piece_count + BP_FIRST_PIECE_ID; }

const uint8_t *bp_model_piece(const bp_model *m, uint32_t id, uint32_t *length) {
  if (id < BP_FIRST_PIECE_ID || id >= bp_model_vocab_size(m)) {
    *length = 0;
    return NULL;
  }
  uint32_t index = id - BP_FIRST_PIECE_ID;
  *length = m->offsets[index + 1] - m->offsets[index];
  return m->bytes + m->offsets[index];
}

uint64_t bp_model_count(const bp_model *m, uint32_t id) {
  if (!m->counts || id < BP_FIRST_PIECE_ID || id >= bp_model_vocab_size(m)) return 0;
  return m->counts[id - BP_FIRST_PIECE_ID];
}

int bp_model_has_counts(const bp_model *m) { return m->counts != NULL; }

double bp_model_score(const bp_model *m, uint32_t id) {
  if (id < BP_FIRST_PIECE_ID || id >= bp_model_vocab_size(m)) return 0;
  return m->matcher.pieces[id - BP_FIRST_PIECE_ID].score;
}

const uint8_t *bp_model_digest(const bp_model *m) { return m->digest; }

size_t bp_model_memory(const bp_model *m) {
  return sizeof *m + (m->piece_count + 1) * sizeof *m->offsets + m->offsets[m->piece_count] +
         (m->counts ? m->piece_count * sizeof *m->counts : 0) +
         m->piece_count * sizeof *m->matcher.pieces +
         m->matcher.cell_count * sizeof *m->matcher.cells;
}

/* ---- Sampling weights ------------------------------------------------------ */

static const double ln2_high = 6.93147180369123816490e-01; /* 32 bits */
static const double ln2_low = 1.90821492927058770002e-10;

double bp_exp_nonpositive(double x) {
  /* Total, so that no input reaches the conversion to an integer below
  ** with a value it cannot hold: NaN and anything below -708 (below the
  ** smallest normal double, -infinity too) give 0, and x > 0, outside the
  ** domain, is taken as 0. */
  if (!(x >= -708.0)) return 0.0;
  if (x > 0.0) x = 0.0;
  /* x = k ln 2 + r with |r| <= ln 2 / 2; exp(r) by its Taylor series to
  ** r^13/13!, then 2^k through the exponent bits. */
  static const double inverse_factorials[13] = {1.0 / 479001600.0,
                                                1.0 / 39916800.0,
                                                1.0 / 3628800.0,
                                                1.0 / 362880.0,
                                                1.0 / 40320.0,
                                                1.0 / 5040.0,
                                                1.0 / 720.0,
                                                1.0 / 120.0,
                                                1.0 / 24.0,
                                                1.0 / 6.0,
                                                0.5,
                                                1.0,
                                                1.0};
  double k = floor(x * 1.44269504088896338700 + 0.5);
  double r = (x - k * ln2_high) - k * ln2_low;
  double p = 1.0 / 6227020800.0;
  for (int i = 0; i < 13; i++) p = p * r + inverse_factorials[i];
  uint64_t bits = (uint64_t)(int64_t)(k + 1023) << 52;
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

double bp_log_at_least_one(double s) {
  /* s = m 2^e with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(f) with
  ** f = (m - 1) / (m + 1), |f| < 0.172, by its series to f^23. */
  uint64_t bits;
  memcpy(&bits, &s, sizeof bits);
  int e = (int)(bits >> 52) - 1023;
  bits = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
  double mantissa;
  memcpy(&mantissa, &bits, sizeof mantissa);
  if (mantissa > 1.41421356237309504880) {
    mantissa *= 0.5;
    e++;
  }
  double f = (mantissa - 1.0) / (mantissa + 1.0), f2 = f * f;
  double series = 1.0 / 23;
  for (int i = 21; i >= 1; i -= 2) series = series * f2 + 1.0 / i;
  return (e * ln2_low + 2.0 * f * series) + e * ln2_high;
}

static double *compute_alpha_weights(const bp_model *m, double alpha) {
  double *weights = bp_malloc(m->piece_count * sizeof *weights);
  if (!weights) return NULL;
  for (uint32_t i = 0; i < m->piece_count; i++)
    weights[i] = bp_exp_nonpositive(alpha * m->matcher.pieces[i].score);
  return weights;
}

const double *bp_model_alpha_weights(bp_model *m, double alpha, double **owned) {
  *owned = NULL;
  const double *found = NULL;
  pthread_mutex_lock(&m->weights_lock);
  for (bp_alpha_weights *w = m->alpha_weights; w; w = w->next)
    if (w->alpha == alpha) found = w->weights;
  if (!found && m->alpha_weights_count < MAX_ALPHA_WEIGHTS) {
    bp_alpha_weights *w = bp_malloc(sizeof *w);
    double *weights = w ? compute_alpha_weights(m, alpha) : NULL;
    if (weights) {
      *w = (bp_alpha_weights){alpha, weights, m->alpha_weights};
      m->alpha_weights = w;
      m->alpha_weights_count++;
      found = weights;
    } else {
      bp_free(w);
    }
  }
  pthread_mutex_unlock(&m->weights_lock);
  if (found) return found;
  return *owned = compute_alpha_weights(m, alpha);
}

/* ---- The binary model value ---------------------------------------------- */

static void put_double(uint8_t *p, double d) {
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  bp_put_u64(p, bits);
}

static double get_double(const uint8_t *p) {
  uint64_t bits = bp_get_u64(p);
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

/* The value of m with its digest left zero: bp_model_build_with_digest hashes its
** payload once, when the model is built; bp_model_serialize copies the
** digest in. */
static int value_write(const bp_model *m, uint8_t **value, size_t *len, bp_error *err) {
  size_t n = m->piece_count;
  size_t bound = BP_VALUE_HEADER_BYTES + m->offsets[n] + n * (5 + 10);
  uint8_t *v = bp_malloc(bound);
  if (!v) return bp_fail_nomem(err);
  memcpy(v, value_magic, 8);
  bp_put_u32(v + 8, m->counts ? BP_VALUE_FORMAT_COUNTS : BP_VALUE_FORMAT_SCORES);
  bp_put_u32(v + 12, (uint32_t)n);
  uint8_t *p = v + BP_VALUE_HEADER_BYTES;
  for (size_t i = 0; i < n; i++) {
    uint32_t length = m->offsets[i + 1] - m->offsets[i];
    p += bp_put_varint(p, length);
    memcpy(p, m->bytes + m->offsets[i], length);
    p += length;
    if (m->counts) {
      p += bp_put_varint(p, m->counts[i]);
    } else {
      put_double(p, m->matcher.pieces[i].score);
      p += 8;
    }
  }
  memset(v + BP_VALUE_DIGEST_OFFSET, 0, 32);
  *value = v;
  *len = (size_t)(p - v);
  return BP_OK;
}

int bp_model_serialize(const bp_model *m, uint8_t **value, size_t *len, bp_error *err) {
  int rc = value_write(m, value, len, err);
  if (rc == BP_OK) memcpy(*value + BP_VALUE_DIGEST_OFFSET, m->digest, 32);
  return rc;
}

int bp_value_read_header(const uint8_t *value, size_t len, bp_value_header *out,
                         bp_error *err) {
  *out = (bp_value_header){0}; /* defined whatever the value */
  if (len < BP_VALUE_HEADER_BYTES || memcmp(value, value_magic, 8) != 0)
    return bp_fail(err, BP_FORMAT, "not a BytePiece model value");
  out->format = bp_get_u32(value + 8);
  if (out->format != BP_VALUE_FORMAT_COUNTS && out->format != BP_VALUE_FORMAT_SCORES)
    return bp_fail(err, BP_FORMAT, "not a BytePiece model value");
  out->piece_count = bp_get_u32(value + 12);
  memcpy(out->digest, value + BP_VALUE_DIGEST_OFFSET, 32);
  return BP_OK;
}

/* Whether the payload of a value whose header was read has the digest the
** header claims. */
static int value_check_digest(const uint8_t *value, size_t len, const bp_value_header *header,
                              bp_error *err) {
  uint8_t digest[32];
  bp_sha256(value + BP_VALUE_HEADER_BYTES, len - BP_VALUE_HEADER_BYTES, digest);
  if (memcmp(digest, header->digest, 32) != 0)
    return bp_fail(err, BP_FORMAT, "model value is corrupt (digest mismatch)");
  return BP_OK;
}

int bp_value_verify(const uint8_t *value, size_t len, bp_error *err) {
  bp_value_header header;
  int rc = bp_value_read_header(value, len, &header, err);
  return rc != BP_OK ? rc : value_check_digest(value, len, &header, err);
}

int bp_model_deserialize(const uint8_t *value, size_t len, const bp_interrupt *interrupt,
                         bp_model **out, bp_error *err) {
  *out = NULL;
  bp_value_header header;
  int rc = bp_value_read_header(value, len, &header, err);
  if (rc == BP_OK) rc = value_check_digest(value, len, &header, err);
  if (rc != BP_OK) return rc;
  uint32_t n = header.piece_count;
  bool scored = header.format == BP_VALUE_FORMAT_SCORES;
  /* The smallest piece: a 1-byte length, 1 byte, and a 1-byte count or an
  ** 8-byte score. */
  if ((uint64_t)n * (scored ? 10 : 3) > len - BP_VALUE_HEADER_BYTES)
    return bp_fail(err, BP_FORMAT, "model value is corrupt (piece count)");
  bp_piece *pieces = bp_malloc((size_t)n * sizeof *pieces);
  if (!pieces) return bp_fail_nomem(err);
  const uint8_t *p = value + BP_VALUE_HEADER_BYTES, *end = value + len;
  for (uint32_t i = 0; i < n; i++) {
    if (i % 65536 == 65535 && interrupt && interrupt->check(interrupt->context)) {
      bp_free(pieces);
      return bp_fail(err, BP_INTERRUPT, "interrupted");
    }
    uint64_t length, count;
    size_t k = bp_get_varint(p, end, &length);
    if (k == SIZE_MAX) goto not_shortest;
    if (!k || length > (uint64_t)(end - p - k)) goto corrupt;
    p += k;
    pieces[i] = (bp_piece){p, (uint32_t)length, i + BP_FIRST_PIECE_ID, 0, 0.0};
    if (length > BP_MAX_PIECE_BYTES) pieces[i].length = BP_MAX_PIECE_BYTES + 1;
    p += length;
    if (scored) {
      if (end - p < 8) goto corrupt;
      pieces[i].score = get_double(p);
      p += 8;
    } else {
      if (!(k = bp_get_varint(p, end, &count))) goto corrupt;
      if (k == SIZE_MAX) goto not_shortest;
      pieces[i].count = count;
      p += k;
    }
  }
  if (p != end) {
    bp_free(pieces);
    return bp_fail(err, BP_FORMAT, "model value is corrupt (%zu byte%s after the last piece)",
                   (size_t)(end - p), end - p == 1 ? "" : "s");
  }
  /* The digest was just verified: no need to compute it again. */
  rc = bp_model_build_with_digest(pieces, n, scored, BP_DIGEST_KNOWN, header.digest, interrupt,
                                  out, err);
  bp_free(pieces);
  return rc;
corrupt:
  bp_free(pieces);
  return bp_fail(err, BP_FORMAT, "model value is corrupt (truncated piece)");
not_shortest:
  bp_free(pieces);
  return bp_fail(err, BP_FORMAT,
                 "model value is corrupt (a varint not in its shortest "
                 "form)");
}
