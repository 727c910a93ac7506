/*
** train_rounds.c: training in rounds over shards of the texts.
**
** Training is sums over chunks (train.c), length by length: so each step is
** a round with a map (count over a shard's texts: bp_trainer_partial) and a
** reduce (add: bp_train_combiner, bp_train_merger). A state carries what
** the rounds so far decided; a partial carries one shard's counts for the
** state's next round:
**
**   round 1            the 1- and 2-grams and the bytes of text
**   round k (2..R-1)   the (k+1)-grams whose k-parts are frequent, by the
**                      state's counts and min_count (train_ngrams.c)
**   round R            the pieces of each chunk's segmentation by the n-gram
**                      model made from the state's counts (train_segment.c)
**
** with R = max(order, 2). Combining and merging add the partials, one at a
** time, past a third of max_memory in temporary files (n-gram counts as
** sorted runs, piece counts in a trainer's buckets), and a partial counted
** in several partitions of its n-grams writes each as a run; runs are added
** up in key order, so the bytes do not depend on the spilling; after an n-gram round the next
** state is the one before with the n-grams seen at least min_count times
** appended, as bp_trainer keeps them after counting a length; after the
** piece round it prunes (train_prune.c) and holds the model value. Each sum
** is the one bp_trainer_finish makes over all chunks, so the model is the
** same bytes. A partial names its state and round (the state's digest),
** and every round's partials must have counted as many bytes of text as
** round 1's: a partial of other rows is an error, not another model.
**
** The BLOB (states and partials alike), little-endian:
**   0  "BPTR"
**   4  format version (FORMAT_VERSION)
**   5  kind (BP_TRAIN_STATE, BP_TRAIN_PARTIAL)
**   6  round: a state's rounds merged (0..R); a partial's round (1..R; 0
**      for the empty partial)
**   7  R
**   8  digest: the first 16 bytes of the SHA-256 of a state's payload; a
**      partial's is its state's (zeros for the empty partial)
**   24 payload length (8 bytes), then the payload deflated (zlib)
**   end - 4: CRC-32 of every byte before it
** Payloads are varints. A state's: rounds merged, the six model options,
** bytes of text; after round 1 the 1-gram counts, the 2-gram counts
** (nonzero ones: index delta, count); then each kept n-gram table of
** length 3 up (entries, then key delta and count, keys ascending); once
** done, the model value (length, bytes) in place of the counts. A
** partial's: its shard's bytes of text, then the round's counts in the same
** encoding, or its pieces front-coded (shared prefix length, suffix length,
** suffix, count; a 0, 0 pair ends them).
*/
#include "train_internal.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FORMAT_VERSION 1
#define HEADER_BYTES 32
#define DIGEST_BYTES 16
static const uint8_t magic[4] = {'B', 'P', 'T', 'R'};

/* Messages a caller prefixes with the argument it was given. */
#define CORRUPT "is truncated or corrupt"
#define MISMATCH "is from another state or round"

/* What a trainer made from a state knows of it. */
struct train_round {
  int merged, rounds;
  uint8_t digest[DIGEST_BYTES];
  uint64_t total_bytes; /* of the whole corpus, once round 1 is merged */
  bool counted;         /* bp_trainer_partial ran */
};

void train_round_free(struct train_round *round) { bp_free(round); }

int bp_train_rounds(const bp_train_options *options) {
  return options->order >= 2 ? options->order : 2;
}

/* ---- Writing ---------------------------------------------------------------- */

typedef struct writer {
  bp_buffer out;
  bool failed; /* out of memory */
} writer;

static void put_varint(writer *w, uint64_t v) {
  uint8_t bytes[10];
  if (!w->failed && !bp_buffer_append(&w->out, bytes, bp_put_varint(bytes, v)))
    w->failed = true;
}

static void put_bytes(writer *w, const void *bytes, size_t n) {
  if (!w->failed && n && !bp_buffer_append(&w->out, bytes, n)) w->failed = true;
}

static void put_counts1(writer *w, const uint64_t *counts1) {
  for (int b = 0; b < 256; b++) put_varint(w, counts1[b]);
}

/* The nonzero 2-gram counts; counts2 may be NULL (all zero). */
static void put_counts2(writer *w, const uint64_t *counts2) {
  uint64_t nonzero = 0;
  for (int g = 0; counts2 && g < 65536; g++) nonzero += counts2[g] != 0;
  put_varint(w, nonzero);
  int last = -1;
  for (int g = 0; counts2 && g < 65536; g++)
    if (counts2[g]) {
      put_varint(w, (uint64_t)(g - last));
      put_varint(w, counts2[g]);
      last = g;
    }
}

static int compare_keys(const void *a, const void *b) {
  uint64_t x = ((const ngram_slot *)a)->key, y = ((const ngram_slot *)b)->key;
  return x < y ? -1 : x > y;
}

/* A table's entries counted at least min_kept times, keys ascending. */
static int put_table(writer *w, const ngram_table *t, uint64_t min_kept, bp_error *err) {
  size_t n = 0;
  for (size_t i = 0; i < t->capacity; i++)
    n += t->slots[i].key != EMPTY_KEY && t->slots[i].count >= min_kept;
  ngram_slot *sorted = bp_malloc((n ? n : 1) * sizeof *sorted);
  if (!sorted) return bp_fail_nomem(err);
  n = 0;
  for (size_t i = 0; i < t->capacity; i++)
    if (t->slots[i].key != EMPTY_KEY && t->slots[i].count >= min_kept)
      sorted[n++] = t->slots[i];
  qsort(sorted, n, sizeof *sorted, compare_keys);
  put_varint(w, n);
  uint64_t last = 0;
  for (size_t i = 0; i < n; i++) {
    put_varint(w, sorted[i].key - last);
    put_varint(w, sorted[i].count);
    last = sorted[i].key;
  }
  bp_free(sorted);
  return BP_OK;
}

typedef struct counted_piece {
  const uint8_t *bytes;
  size_t length;
  uint64_t count;
} counted_piece;

static int compare_pieces(const void *a, const void *b) {
  const counted_piece *x = a, *y = b;
  size_t n = x->length < y->length ? x->length : y->length;
  int c = memcmp(x->bytes, y->bytes, n);
  if (c) return c;
  return x->length < y->length ? -1 : x->length > y->length;
}

/* Appends a counter's pieces, sorted, front-coded against *previous (the
** last piece written before, kept in `previous`). */
static int put_pieces(writer *w, const string_counter *c, bp_buffer *previous, bp_error *err) {
  counted_piece *sorted = bp_malloc((c->entries ? c->entries : 1) * sizeof *sorted);
  if (!sorted) return bp_fail_nomem(err);
  size_t n = 0;
  for (size_t i = 0; i < c->capacity; i++)
    if (c->slots[i].count)
      sorted[n++] = (counted_piece){(const uint8_t *)c->arena.data + c->slots[i].offset,
                                    c->slots[i].length, c->slots[i].count};
  qsort(sorted, n, sizeof *sorted, compare_pieces);
  for (size_t i = 0; i < n; i++) {
    size_t shared = 0;
    while (shared < previous->length && shared < sorted[i].length &&
           (uint8_t)previous->data[shared] == sorted[i].bytes[shared])
      shared++;
    put_varint(w, shared);
    put_varint(w, sorted[i].length - shared);
    put_bytes(w, sorted[i].bytes + shared, sorted[i].length - shared);
    put_varint(w, sorted[i].count);
    previous->length = 0;
    if (!bp_buffer_append(previous, sorted[i].bytes, sorted[i].length)) w->failed = true;
  }
  bp_free(sorted);
  return BP_OK;
}

/* The BLOB of a payload: header, deflated payload, CRC-32. */
static int seal(int kind, int round, int rounds, const uint8_t digest[DIGEST_BYTES],
                writer *payload, uint8_t **out, size_t *len, bp_error *err) {
  *out = NULL;
  if (payload->failed) return bp_fail_nomem(err);
  uLong bound = compressBound((uLong)payload->out.length);
  uint8_t *blob = bp_malloc(HEADER_BYTES + bound + 4);
  if (!blob) return bp_fail_nomem(err);
  memcpy(blob, magic, 4);
  blob[4] = FORMAT_VERSION;
  blob[5] = (uint8_t)kind;
  blob[6] = (uint8_t)round;
  blob[7] = (uint8_t)rounds;
  if (digest)
    memcpy(blob + 8, digest, DIGEST_BYTES);
  else
    memset(blob + 8, 0, DIGEST_BYTES);
  bp_put_u64(blob + 24, payload->out.length);
  uLongf packed = bound;
  if (compress2(blob + HEADER_BYTES, &packed, (const Bytef *)payload->out.data,
                (uLong)payload->out.length, Z_DEFAULT_COMPRESSION) != Z_OK) {
    bp_free(blob);
    return bp_fail_nomem(err);
  }
  size_t total = HEADER_BYTES + packed;
  bp_put_u32(blob + total, (uint32_t)crc32_z(0, blob, total));
  *out = blob;
  *len = total + 4;
  return BP_OK;
}

/* ---- Reading ---------------------------------------------------------------- */

typedef struct reader {
  const uint8_t *p, *end;
  bool bad;
} reader;

static uint64_t get_varint(reader *r) {
  uint64_t v = 0;
  size_t n = r->bad ? 0 : bp_get_varint(r->p, r->end, &v);
  if (n == 0 || n == SIZE_MAX) {
    r->bad = true;
    return 0;
  }
  r->p += n;
  return v;
}

static const uint8_t *get_bytes(reader *r, uint64_t n) {
  if (r->bad || n > (uint64_t)(r->end - r->p)) {
    r->bad = true;
    return NULL;
  }
  const uint8_t *p = r->p;
  r->p += n;
  return p;
}

/* A BLOB read: its header and inflated payload. */
typedef struct opened {
  int kind, round, rounds;
  uint8_t digest[DIGEST_BYTES];
  uint8_t *payload;
  size_t payload_len;
} opened;

/* Checks a BLOB whole and inflates its payload. `kind` is what the caller
** expects (0: either). */
static int open_blob(const uint8_t *blob, size_t len, int kind, opened *o, bp_error *err) {
  memset(o, 0, sizeof *o);
  size_t head = len < 4 ? len : 4;
  if (!blob || memcmp(blob, magic, head) != 0)
    return bp_fail(err, BP_FORMAT,
                   "is not a training state or partial (bp_train_start, bp_train_partial, "
                   "bp_train_combine or bp_train_merge make them)");
  if (len < 5) return bp_fail(err, BP_FORMAT, CORRUPT);
  if (blob[4] != FORMAT_VERSION)
    return bp_fail(err, BP_FORMAT, "is from an incompatible version (%d; this build reads %d)",
                   blob[4], FORMAT_VERSION);
  if (len < HEADER_BYTES + 4 || crc32_z(0, blob, len - 4) != bp_get_u32(blob + len - 4))
    return bp_fail(err, BP_FORMAT, CORRUPT);
  o->kind = blob[5];
  o->round = blob[6];
  o->rounds = blob[7];
  memcpy(o->digest, blob + 8, DIGEST_BYTES);
  uint64_t payload_len = bp_get_u64(blob + 24);
  bool empty_partial = o->kind == BP_TRAIN_PARTIAL && o->round == 0;
  if ((o->kind != BP_TRAIN_STATE && o->kind != BP_TRAIN_PARTIAL) || o->rounds > MAX_ORDER ||
      (!empty_partial && (o->rounds < 2 || o->round > o->rounds)) ||
      (o->kind == BP_TRAIN_PARTIAL && !empty_partial && o->round < 1) ||
      payload_len > SIZE_MAX / 2)
    return bp_fail(err, BP_FORMAT, CORRUPT);
  if (kind == BP_TRAIN_STATE && o->kind != kind)
    return bp_fail(err, BP_FORMAT, "is a partial, not a state");
  if (kind == BP_TRAIN_PARTIAL && o->kind != kind)
    return bp_fail(err, BP_FORMAT, "is a state, not a partial");
  o->payload = bp_malloc(payload_len ? (size_t)payload_len : 1);
  if (!o->payload) return bp_fail_nomem(err);
  uLongf inflated = (uLongf)payload_len;
  int z =
      uncompress(o->payload, &inflated, blob + HEADER_BYTES, (uLong)(len - 4 - HEADER_BYTES));
  if (z == Z_MEM_ERROR) {
    bp_free(o->payload);
    o->payload = NULL;
    return bp_fail_nomem(err);
  }
  if (z != Z_OK || inflated != payload_len) {
    bp_free(o->payload);
    o->payload = NULL;
    return bp_fail(err, BP_FORMAT, CORRUPT);
  }
  o->payload_len = (size_t)payload_len;
  return BP_OK;
}

/* The model options a state's payload starts with, after its rounds
** merged; false when they are out of range. */
static bool get_options(reader *r, bp_train_options *o) {
  uint64_t order = get_varint(r), vocab_size = get_varint(r), max_piece_length = get_varint(r),
           min_count = get_varint(r), isolate_digits = get_varint(r),
           ensure_unicode = get_varint(r);
  if (r->bad || order < 1 || order > MAX_ORDER || vocab_size < 259 || vocab_size > UINT32_MAX ||
      max_piece_length < 1 || max_piece_length > BP_MAX_PIECE_BYTES || min_count < 1 ||
      isolate_digits > 1 || ensure_unicode > 1)
    return false;
  o->order = (int)order;
  o->vocab_size = (uint32_t)vocab_size;
  o->max_piece_length = (int)max_piece_length;
  o->min_count = min_count;
  o->isolate_digits = (int)isolate_digits;
  o->ensure_unicode = (int)ensure_unicode;
  return true;
}

static bool add_checked(uint64_t *sum, uint64_t add) {
  return !__builtin_add_overflow(*sum, add, sum);
}

/* Adds 256 1-gram counts and the 2-gram counts to counts1, *counts2
** (allocated when NULL). */
static int get_short_counts(reader *r, uint64_t *counts1, uint64_t **counts2, bp_error *err) {
  for (int b = 0; b < 256; b++)
    if (!add_checked(&counts1[b], get_varint(r))) r->bad = true;
  if (!*counts2) {
    if (!(*counts2 = bp_malloc(65536 * sizeof **counts2))) return bp_fail_nomem(err);
    memset(*counts2, 0, 65536 * sizeof **counts2);
  }
  uint64_t nonzero = get_varint(r), index = UINT64_MAX;
  for (uint64_t i = 0; i < nonzero && !r->bad; i++) {
    uint64_t delta = get_varint(r), count = get_varint(r);
    index += delta;
    if (delta == 0 || index >= 65536 || count == 0 || !add_checked(&(*counts2)[index], count))
      r->bad = true;
  }
  return r->bad ? bp_fail(err, BP_FORMAT, CORRUPT) : BP_OK;
}

/* Adds a table's encoded entries (n-grams of length n) into t, or, when t
** is NULL, reads past them (checking them all the same). When t has a
** limit and would outgrow it, its counts go to `full` (which takes them)
** and t starts again empty. */
static int get_table(reader *r, int n, ngram_table *t, const ngram_sink *full, bp_error *err) {
  uint64_t entries = get_varint(r), key = 0;
  const size_t limit = t ? t->limit : 0;
  if (t && !t->slots) {
    /* Sized for all of them at once (as far as the limit allows): no
    ** growing while reading. */
    size_t capacity = 4096;
    while (capacity < 2 * entries + 2 && capacity < ((size_t)1 << 40) &&
           (!limit || 2 * capacity * sizeof(ngram_slot) <= limit))
      capacity *= 2;
    if (!train_ngram_table_init(t, capacity)) return bp_fail_nomem(err);
  }
  for (uint64_t i = 0; i < entries && !r->bad; i++) {
    uint64_t delta = get_varint(r), count = get_varint(r);
    if ((i > 0 && delta == 0) || __builtin_add_overflow(key, delta, &key) ||
        key > train_ngram_mask(n) || count == 0) {
      r->bad = true;
      break;
    }
    if (!t) continue;
    ngram_slot *s = train_ngram_find(t, key);
    if (s->key == key) {
      if (!add_checked(&s->count, count)) r->bad = true;
      continue;
    }
    int rc = train_ngram_table_add(t, key, count);
    if (rc == BP_TOOBIG && full) {
      ngram_table counts = *t;
      *t = (ngram_table){0};
      rc = full->take(full->context, &counts, err);
      if (rc != BP_OK) return rc;
      if (!train_ngram_table_init(t, 4096)) return bp_fail_nomem(err);
      t->limit = limit;
      rc = train_ngram_table_add(t, key, count);
    }
    if (rc != BP_OK) return bp_fail_nomem(err);
  }
  return r->bad ? bp_fail(err, BP_FORMAT, CORRUPT) : BP_OK;
}

/* ---- States ----------------------------------------------------------------- */

/* The beginning of every state's payload. */
static int state_payload(writer *w, const bp_train_options *o, int merged, uint64_t bytes) {
  put_varint(w, (uint64_t)merged);
  put_varint(w, (uint64_t)o->order);
  put_varint(w, o->vocab_size);
  put_varint(w, (uint64_t)o->max_piece_length);
  put_varint(w, o->min_count);
  put_varint(w, (uint64_t)(o->isolate_digits != 0));
  put_varint(w, (uint64_t)(o->ensure_unicode != 0));
  put_varint(w, bytes);
  return BP_OK;
}

static int seal_state(writer *w, int merged, int rounds, uint8_t **out, size_t *len,
                      bp_error *err) {
  uint8_t digest[32];
  if (w->failed) return bp_fail_nomem(err);
  bp_sha256((const uint8_t *)w->out.data, w->out.length, digest);
  return seal(BP_TRAIN_STATE, merged, rounds, digest, w, out, len, err);
}

/* The first state (merged 0: the options), or the state after round 1
** (the 1- and 2-gram counts in t). Later states are made by appending to
** the one before (bp_train_merger_finish). */
static int encode_state(const bp_trainer *t, int merged, uint64_t bytes, uint8_t **out,
                        size_t *len, bp_error *err) {
  writer w = {0};
  state_payload(&w, &t->options, merged, bytes);
  if (merged >= 1) {
    put_counts1(&w, t->counts1);
    put_counts2(&w, t->counts2);
  }
  int rc = seal_state(&w, merged, bp_train_rounds(&t->options), out, len, err);
  bp_buffer_free(&w.out);
  return rc;
}

int bp_train_start(const bp_train_options *options, uint8_t **state, size_t *len,
                   bp_error *err) {
  *state = NULL;
  bp_trainer *t;
  int rc = bp_trainer_new(options, &t, err); /* the same checks and messages */
  if (rc != BP_OK) return rc;
  rc = encode_state(t, 0, 0, state, len, err);
  bp_trainer_free(t);
  return rc;
}

/* What a trainer is made from a state for: counting its next round (the
** counts that round reads), merging (none: the payload is kept as it is,
** the next state's begins with it), or reading the model. */
enum state_use { FOR_COUNTING, FOR_MERGING, FOR_MODEL };

/* Default options with the machine-local ones (threads, max_memory and
** progress) taken from `local` when given. */
static bp_train_options local_train_options(const bp_train_options *local) {
  bp_train_options options;
  bp_train_options_init(&options);
  if (local) {
    options.threads = local->threads;
    options.max_memory = local->max_memory;
    options.progress = local->progress;
    options.progress_context = local->progress_context;
  }
  return options;
}

/* A trainer of a state's options (with local's), holding the counts `use`
** needs; the whole payload is checked either way. For merging, the payload
** is handed over in *payload; for the model, the value of a done state in
** *value. */
static int trainer_of_state(const uint8_t *blob, size_t len, const bp_train_options *local,
                            enum state_use use, bp_trainer **out, uint8_t **payload,
                            size_t *payload_len, uint8_t **value, size_t *value_len,
                            bp_error *err) {
  *out = NULL;
  opened o;
  int rc = open_blob(blob, len, BP_TRAIN_STATE, &o, err);
  if (rc != BP_OK) return rc;
  reader r = {o.payload, o.payload + o.payload_len, false};
  bp_train_options options = local_train_options(local);
  uint64_t merged = get_varint(&r);
  if (!get_options(&r, &options) || merged != (uint64_t)o.round ||
      bp_train_rounds(&options) != o.rounds) {
    bp_free(o.payload);
    return bp_fail(err, BP_FORMAT, CORRUPT);
  }
  uint64_t bytes = get_varint(&r);
  bp_trainer *t;
  rc = bp_trainer_new(&options, &t, err);
  if (rc == BP_OK && !(t->round = bp_malloc(sizeof *t->round))) {
    bp_trainer_free(t);
    rc = bp_fail_nomem(err);
  }
  if (rc != BP_OK) {
    bp_free(o.payload);
    return rc;
  }
  *t->round = (struct train_round){(int)merged, o.rounds, {0}, bytes, false};
  memcpy(t->round->digest, o.digest, DIGEST_BYTES);
  if (o.round == o.rounds) {
    /* Done: the model value. */
    uint64_t n = get_varint(&r);
    const uint8_t *bytes_of_value = get_bytes(&r, n);
    if (r.bad || r.p != r.end) {
      rc = bp_fail(err, BP_FORMAT, CORRUPT);
    } else if (use == FOR_MODEL) {
      if (!(*value = bp_malloc(n ? (size_t)n : 1))) {
        rc = bp_fail_nomem(err);
      } else {
        memcpy(*value, bytes_of_value, (size_t)n);
        *value_len = (size_t)n;
      }
    }
  } else {
    /* Counting (k+1)-grams reads the k-grams; counting pieces all. */
    const bool pieces_next = (int)merged + 1 == o.rounds;
    uint64_t ignored1[256] = {0};
    uint64_t *ignored2 = NULL;
    if (merged >= 1)
      rc = use == FOR_COUNTING ? get_short_counts(&r, t->counts1, &t->counts2, err)
                               : get_short_counts(&r, ignored1, &ignored2, err);
    bp_free(ignored2);
    for (int n = 3; rc == BP_OK && n <= (int)merged + 1 && n <= options.order; n++)
      rc = get_table(
          &r, n,
          use == FOR_COUNTING && (pieces_next || n == (int)merged + 1) ? &t->tables[n] : NULL,
          NULL, err);
    if (rc == BP_OK && r.p != r.end) rc = bp_fail(err, BP_FORMAT, CORRUPT);
  }
  if (rc == BP_OK && use == FOR_MERGING) {
    *payload = o.payload;
    *payload_len = o.payload_len;
    o.payload = NULL;
  }
  bp_free(o.payload);
  if (rc != BP_OK) {
    bp_trainer_free(t);
    return rc;
  }
  *out = t;
  return BP_OK;
}

static int done_error(const struct train_round *round, bp_error *err) {
  bp_fail(err, BP_FORMAT, "is done (all %d rounds merged): its model is ready", round->rounds);
  return BP_FORMAT; /* never BP_OK, and the analyzer sees it */
}

/* A trainer for counting or merging a state's next round: not of a done
** state. */
static int trainer_of_open_state(const uint8_t *state, size_t len,
                                 const bp_train_options *local, enum state_use use,
                                 bp_trainer **out, uint8_t **payload, size_t *payload_len,
                                 bp_error *err) {
  int rc = trainer_of_state(state, len, local, use, out, payload, payload_len, NULL, NULL, err);
  /* trainer_of_state sets *out when it returns BP_OK: made visible. */
  if (rc == BP_OK && !*out) {
    bp_fail_nomem(err);
    return BP_NOMEM;
  }
  if (rc == BP_OK && (*out)->round->merged == (*out)->round->rounds) {
    rc = done_error((*out)->round, err);
    bp_trainer_free(*out);
    *out = NULL;
  }
  return rc;
}

int bp_trainer_from_state(const uint8_t *state, size_t len, const bp_train_options *local,
                          bp_trainer **out, bp_error *err) {
  return trainer_of_open_state(state, len, local, FOR_COUNTING, out, NULL, NULL, err);
}

int bp_train_state_model(const uint8_t *state, size_t len, uint8_t **value, size_t *value_len,
                         bp_error *err) {
  *value = NULL;
  bp_trainer *t;
  int rc = trainer_of_state(state, len, NULL, FOR_MODEL, &t, NULL, NULL, value, value_len, err);
  if (rc != BP_OK) return rc;
  if (t->round->merged != t->round->rounds)
    rc = bp_fail(err, BP_INVALID, "the state is not done (round %d of %d)",
                 t->round->merged + 1, t->round->rounds);
  bp_trainer_free(t);
  return rc;
}

int bp_train_info(const uint8_t *blob, size_t len, bp_train_info_data *info, bp_error *err) {
  memset(info, 0, sizeof *info);
  opened o;
  int rc = open_blob(blob, len, 0, &o, err);
  if (rc != BP_OK) return rc;
  reader r = {o.payload, o.payload + o.payload_len, false};
  info->kind = o.kind;
  info->rounds = o.rounds;
  if (o.kind == BP_TRAIN_STATE) {
    bp_train_options options;
    get_varint(&r);
    get_options(&r, &options);
    info->done = o.round == o.rounds;
    info->round = info->done ? o.round : o.round + 1;
  } else {
    info->round = o.round;
  }
  info->bytes = get_varint(&r);
  bp_free(o.payload);
  return r.bad ? bp_fail(err, BP_FORMAT, CORRUPT) : BP_OK;
}

/* ---- Sums, and sorted runs of n-gram counts ---------------------------------- */

/* A sorted run of n-gram counts in the run file. */
typedef struct ngram_run {
  long offset;
  uint64_t entries, read; /* records in the run, records read */
  ngram_slot *buffer;
  size_t buffered, next;
} ngram_run;

/* The sum of partials of one state and round, or a partial's n-gram counts.
** With a limit (a third of max_memory), piece counts past it go to
** spill_to's buckets, and n-gram counts past it to sorted runs in a file,
** added up at the end (put_runs). */
typedef struct round_sum {
  int round, rounds; /* 0 until a partial that is not the empty one */
  uint8_t digest[DIGEST_BYTES];
  uint64_t bytes;
  uint64_t counts1[256];
  uint64_t *counts2;
  ngram_table table;
  string_counter pieces;
  bp_trainer *spill_to;
  const train_runner *runner; /* progress and interrupts */
  size_t limit;
  FILE *run_file;
  ngram_run *runs;
  size_t run_count;
} round_sum;

static void forget_runs(round_sum *s) {
  if (s->run_file) fclose(s->run_file);
  s->run_file = NULL;
  for (size_t i = 0; i < s->run_count; i++) bp_free(s->runs[i].buffer);
  bp_free(s->runs);
  s->runs = NULL;
  s->run_count = 0;
}

static void round_sum_free(round_sum *s) {
  bp_free(s->counts2);
  train_ngram_table_free(&s->table);
  train_string_counter_free(&s->pieces);
  forget_runs(s);
}

static int interrupted(bp_error *err) { return bp_fail(err, BP_INTERRUPT, "interrupted"); }

/* Writes table t, sorted (in place), as a run, and frees it. */
static int write_run(round_sum *s, ngram_table *t, bp_error *err) {
  if (train_report(s->runner, "spilling n-gram counts", 0)) return interrupted(err);
  if (!s->run_file && !(s->run_file = tmpfile())) return train_spill_error(err, "create");
  ngram_run *runs = bp_realloc(s->runs, (s->run_count + 1) * sizeof *runs);
  if (!runs) return bp_fail_nomem(err);
  s->runs = runs;
  /* The used slots to the front (a slot moves only down), then sorted. */
  size_t n = 0;
  for (size_t i = 0; i < t->capacity; i++)
    if (t->slots[i].key != EMPTY_KEY) t->slots[n++] = t->slots[i];
  qsort(t->slots, n, sizeof *t->slots, compare_keys);
  long offset = fseek(s->run_file, 0, SEEK_END) == 0 ? ftell(s->run_file) : -1;
  if (offset < 0 || fwrite(t->slots, sizeof *t->slots, n, s->run_file) != n)
    return train_spill_error(err, "write");
  runs[s->run_count++] = (ngram_run){offset, n, 0, NULL, 0, 0};
  return BP_OK;
}

static int spill_run(round_sum *s, ngram_table *t, bp_error *err) {
  int rc = write_run(s, t, err);
  train_ngram_table_free(t);
  return rc;
}

/* An ngram_sink that spills what it takes. */
static int take_as_run(void *context, ngram_table *counts, bp_error *err) {
  return spill_run(context, counts, err);
}

/* An ngram_sink for a partial's partitions: it holds the last one taken
** and spills it when another comes, so that a count of one partition
** writes no file. */
static int take_partition(void *context, ngram_table *counts, bp_error *err) {
  round_sum *s = context;
  int rc = s->table.slots ? spill_run(s, &s->table, err) : BP_OK;
  if (rc != BP_OK) {
    train_ngram_table_free(counts);
    return rc;
  }
  s->table = *counts;
  return BP_OK;
}

/* The next record of a run (refilling its buffer), or NULL at its end. */
static const ngram_slot *run_peek(round_sum *s, ngram_run *run, bp_error *err, int *rc) {
  enum { RUN_BUFFER = 4096 };
  if (run->next < run->buffered) return &run->buffer[run->next];
  if (run->read == run->entries) return NULL;
  if (!run->buffer && !(run->buffer = bp_malloc(RUN_BUFFER * sizeof *run->buffer))) {
    *rc = bp_fail_nomem(err);
    return NULL;
  }
  size_t want = run->entries - run->read < RUN_BUFFER ? (size_t)(run->entries - run->read)
                                                      : (size_t)RUN_BUFFER;
  if (fseek(s->run_file, run->offset + (long)(run->read * sizeof *run->buffer), SEEK_SET) !=
          0 ||
      fread(run->buffer, sizeof *run->buffer, want, s->run_file) != want) {
    *rc = train_spill_error(err, "read");
    return NULL;
  }
  run->read += want;
  run->buffered = want;
  run->next = 0;
  return &run->buffer[0];
}

/* The sum of the runs (the table spilled as the last), keys ascending,
** those counted at least min_kept times: put_table's encoding. */
static int put_runs(round_sum *s, writer *w, uint64_t min_kept, bp_error *err) {
  int rc = s->table.slots ? spill_run(s, &s->table, err) : BP_OK;
  writer body = {0};
  uint64_t kept = 0, last = 0, keys = 0;
  while (rc == BP_OK) {
    uint64_t key = UINT64_MAX, count = 0;
    bool any = false;
    for (size_t i = 0; i < s->run_count && rc == BP_OK; i++) {
      const ngram_slot *next = run_peek(s, &s->runs[i], err, &rc);
      if (next && (!any || next->key < key)) key = next->key, any = true;
    }
    if (!any || rc != BP_OK) break;
    for (size_t i = 0; i < s->run_count && rc == BP_OK; i++) {
      const ngram_slot *next = run_peek(s, &s->runs[i], err, &rc);
      if (next && next->key == key) {
        if (!add_checked(&count, next->count)) rc = bp_fail(err, BP_FORMAT, CORRUPT);
        s->runs[i].next++;
      }
    }
    if (rc == BP_OK && count >= min_kept) {
      put_varint(&body, key - last);
      put_varint(&body, count);
      last = key;
      kept++;
    }
    if (rc == BP_OK && ++keys % 65536 == 0 &&
        train_report(s->runner, "adding sorted runs of n-gram counts", 0))
      rc = interrupted(err);
  }
  put_varint(w, kept);
  put_bytes(w, body.out.data, body.out.length);
  if (body.failed) w->failed = true;
  bp_buffer_free(&body.out);
  return rc;
}

/* ---- Partials --------------------------------------------------------------- */

int bp_train_empty_partial(uint8_t **partial, size_t *len, bp_error *err) {
  writer w = {0};
  put_varint(&w, 0);
  int rc = seal(BP_TRAIN_PARTIAL, 0, 0, NULL, &w, partial, len, err);
  bp_buffer_free(&w.out);
  return rc;
}

/* Sums each piece bucket of t and appends it to the payload. */
static int put_piece_buckets(bp_trainer *t, writer *w, bp_buffer *previous, bp_error *err) {
  block b = {0};
  int rc = BP_OK;
  for (int k = 0; k < PIECE_BUCKETS && rc == BP_OK; k++) {
    string_counter sum = {0};
    rc = train_sum_piece_bucket(t, k, &b, &sum, err);
    if (rc == BP_OK) rc = put_pieces(w, &sum, previous, err);
    train_string_counter_free(&sum);
  }
  train_block_free(&b);
  return rc;
}

int bp_trainer_partial(bp_trainer *t, uint8_t **partial, size_t *len, bp_error *err) {
  *partial = NULL;
  struct train_round *round = t->round;
  if (!round || round->counted)
    return bp_fail(err, BP_INVALID,
                   round ? "the partial of this trainer was made already"
                         : "the trainer was not made from a state (bp_trainer_from_state)");
  round->counted = true;
  const int counting = round->merged + 1;
  const uint64_t shard_bytes = t->bytes;
  writer w = {0};
  put_varint(&w, shard_bytes);
  int rc = train_spill_remaining_chunks(t, err);
  if (rc == BP_OK && counting == 1) {
    /* The 1- and 2-grams (t's counts start at zero). */
    if (shard_bytes) rc = train_count_short_ngrams(t, err);
    if (rc == BP_OK) {
      put_counts1(&w, t->counts1);
      put_counts2(&w, t->counts2);
    }
  } else if (rc == BP_OK && counting < round->rounds) {
    /* Every n-gram counted: a shard's rare one may be frequent overall.
    ** The partitions counting makes to fit its memory (disjoint sets of
    ** n-grams) go to sorted runs when there are several. */
    round_sum counts = {.runner = &t->runner};
    const ngram_sink sink = {take_partition, &counts};
    if (shard_bytes) rc = train_count_ngrams_to_sink(t, counting + 1, &sink, err);
    for (int n = 0; n <= MAX_ORDER; n++) train_ngram_table_free(&t->tables[n]);
    if (rc == BP_OK)
      rc = counts.run_count ? put_runs(&counts, &w, 1, err)
                            : put_table(&w, &counts.table, 1, err);
    round_sum_free(&counts);
  } else if (rc == BP_OK) {
    /* The n-gram model is made from the whole corpus's counts. */
    bp_buffer previous = {0};
    if (shard_bytes) {
      t->bytes = round->total_bytes;
      rc = train_prune_ngrams(t, err);
      if (rc == BP_OK && train_report(&t->runner, "segmenting", 0))
        rc = bp_fail(err, BP_INTERRUPT, "interrupted");
      if (rc == BP_OK) rc = train_count_pieces(t, err);
      t->bytes = shard_bytes;
      for (int n = 0; n <= MAX_ORDER; n++) train_ngram_table_free(&t->tables[n]);
      if (rc == BP_OK && t->piece_buckets[0])
        rc = put_piece_buckets(t, &w, &previous, err);
      else if (rc == BP_OK)
        rc = put_pieces(&w, &t->pieces, &previous, err);
    }
    put_varint(&w, 0);
    put_varint(&w, 0);
    bp_buffer_free(&previous);
  }
  if (rc == BP_OK)
    rc = seal(BP_TRAIN_PARTIAL, counting, round->rounds, round->digest, &w, partial, len, err);
  bp_buffer_free(&w.out);
  return rc;
}

/* ---- Adding partials -------------------------------------------------------- */

/* Adds a partial into s. */
static int round_sum_add(round_sum *s, const uint8_t *blob, size_t len, bp_error *err) {
  opened o;
  int rc = open_blob(blob, len, BP_TRAIN_PARTIAL, &o, err);
  if (rc != BP_OK) return rc;
  if (o.round == 0) { /* the empty partial adds nothing */
    bp_free(o.payload);
    return BP_OK;
  }
  if (s->round == 0) {
    s->round = o.round;
    s->rounds = o.rounds;
    memcpy(s->digest, o.digest, DIGEST_BYTES);
  } else if (s->round != o.round || s->rounds != o.rounds ||
             memcmp(s->digest, o.digest, DIGEST_BYTES) != 0) {
    bp_free(o.payload);
    return bp_fail(err, BP_FORMAT, MISMATCH);
  }
  reader r = {o.payload, o.payload + o.payload_len, false};
  if (!add_checked(&s->bytes, get_varint(&r))) r.bad = true;
  if (o.round == 1) {
    rc = get_short_counts(&r, s->counts1, &s->counts2, err);
  } else if (o.round < o.rounds) {
    /* Past the limit, even within one partial, the table goes to a run. */
    const ngram_sink full = {take_as_run, s};
    if (!s->table.slots) s->table.limit = s->limit;
    rc = get_table(&r, o.round + 1, &s->table, &full, err);
  } else {
    /* Front-coded pieces, until 0, 0. Pieces are as long as a chunk's
    ** segmentation makes them: pruning re-splits the long ones. */
    bp_buffer piece = {0};
    while (rc == BP_OK && !r.bad) {
      uint64_t shared = get_varint(&r), suffix = get_varint(&r);
      if (shared == 0 && suffix == 0) break;
      const uint8_t *bytes = get_bytes(&r, suffix);
      uint64_t count = get_varint(&r);
      if (r.bad || shared > piece.length || count == 0) {
        r.bad = true;
        break;
      }
      piece.length = (size_t)shared;
      if (!bp_buffer_append(&piece, bytes, (size_t)suffix)) {
        rc = bp_fail_nomem(err);
        break;
      }
      if (!train_string_counter_add(&s->pieces, (const uint8_t *)piece.data, piece.length,
                                    count))
        rc = bp_fail_nomem(err);
      else if (s->spill_to && s->limit && train_string_counter_memory(&s->pieces) > s->limit)
        rc = train_report(s->runner, "spilling piece counts", 0)
                 ? interrupted(err)
                 : train_spill_pieces(s->spill_to, &s->pieces, err);
    }
    bp_buffer_free(&piece);
  }
  if (rc == BP_OK && (r.bad || r.p != r.end)) rc = bp_fail(err, BP_FORMAT, CORRUPT);
  bp_free(o.payload);
  return rc;
}

struct bp_train_combiner {
  round_sum sum;
};

int bp_train_combiner_new(const bp_train_options *local, bp_train_combiner **out,
                          bp_error *err) {
  *out = bp_malloc(sizeof **out);
  if (!*out) return bp_fail_nomem(err);
  memset(*out, 0, sizeof **out);
  /* A trainer of the local options, for its piece buckets and progress. */
  bp_train_options options = local_train_options(local);
  round_sum *s = &(*out)->sum;
  int rc = bp_trainer_new(&options, &s->spill_to, err);
  if (rc != BP_OK) {
    bp_free(*out);
    *out = NULL;
    return rc;
  }
  s->runner = &s->spill_to->runner;
  s->limit = (size_t)(options.max_memory / 3);
  return BP_OK;
}

int bp_train_combiner_add(bp_train_combiner *c, const uint8_t *partial, size_t len,
                          bp_error *err) {
  return round_sum_add(&c->sum, partial, len, err);
}

int bp_train_combiner_finish(bp_train_combiner *c, uint8_t **partial, size_t *len,
                             bp_error *err) {
  *partial = NULL;
  round_sum *s = &c->sum;
  if (s->round == 0) return bp_train_empty_partial(partial, len, err);
  writer w = {0};
  put_varint(&w, s->bytes);
  int rc = BP_OK;
  if (s->round == 1) {
    put_counts1(&w, s->counts1);
    put_counts2(&w, s->counts2);
  } else if (s->round < s->rounds) {
    rc = s->run_count ? put_runs(s, &w, 1, err) : put_table(&w, &s->table, 1, err);
  } else {
    /* Once some pieces were spilled, all go to the buckets, each summed on
    ** its own: the partial lists its pieces bucket by bucket. */
    bp_buffer previous = {0};
    if (s->spill_to->piece_buckets[0]) {
      rc = train_spill_pieces(s->spill_to, &s->pieces, err);
      if (rc == BP_OK) rc = put_piece_buckets(s->spill_to, &w, &previous, err);
    } else {
      rc = put_pieces(&w, &s->pieces, &previous, err);
    }
    put_varint(&w, 0);
    put_varint(&w, 0);
    bp_buffer_free(&previous);
  }
  if (rc == BP_OK)
    rc = seal(BP_TRAIN_PARTIAL, s->round, s->rounds, s->digest, &w, partial, len, err);
  bp_buffer_free(&w.out);
  return rc;
}

void bp_train_combiner_free(bp_train_combiner *c) {
  if (!c) return;
  round_sum_free(&c->sum);
  bp_trainer_free(c->sum.spill_to);
  bp_free(c);
}

struct bp_train_merger {
  bp_trainer *trainer; /* the state's options, no counts */
  uint8_t *payload;    /* the state's, inflated: the next one starts with it */
  size_t payload_len;
  round_sum sum;
};

int bp_train_merger_new(const uint8_t *state, size_t len, const bp_train_options *local,
                        bp_train_merger **out, bp_error *err) {
  *out = NULL;
  bp_train_merger *m = bp_malloc(sizeof *m);
  if (!m) return bp_fail_nomem(err);
  memset(m, 0, sizeof *m);
  int rc = trainer_of_open_state(state, len, local, FOR_MERGING, &m->trainer, &m->payload,
                                 &m->payload_len, err);
  if (rc != BP_OK) {
    bp_free(m);
    return rc;
  }
  /* As bp_trainer: a third of the memory for counts, then files (the piece
  ** buckets, sorted runs of n-gram counts). */
  m->sum.spill_to = m->trainer;
  m->sum.runner = &m->trainer->runner;
  m->sum.limit = (size_t)(m->trainer->options.max_memory / 3);
  *out = m;
  return BP_OK;
}

int bp_train_merger_add(bp_train_merger *m, const uint8_t *partial, size_t len, bp_error *err) {
  const struct train_round *round = m->trainer->round;
  opened o;
  /* Only the header, to tell another state's or round's partial. */
  if (len >= HEADER_BYTES && partial && memcmp(partial, magic, 4) == 0 &&
      partial[4] == FORMAT_VERSION && partial[5] == BP_TRAIN_PARTIAL && partial[6] != 0 &&
      (partial[6] != round->merged + 1 ||
       memcmp(partial + 8, round->digest, DIGEST_BYTES) != 0)) {
    /* Checked whole first, so that a corrupt BLOB is called corrupt. */
    int rc = open_blob(partial, len, BP_TRAIN_PARTIAL, &o, err);
    if (rc != BP_OK) return rc;
    bp_free(o.payload);
    return bp_fail(err, BP_FORMAT, MISMATCH);
  }
  return round_sum_add(&m->sum, partial, len, err);
}

int bp_train_merger_finish(bp_train_merger *m, uint8_t **state, size_t *len, bp_model **model,
                           bp_error *err) {
  *state = NULL;
  if (model) *model = NULL;
  bp_trainer *t = m->trainer;
  round_sum *s = &m->sum;
  const int counted = t->round->merged + 1;
  int rc = BP_OK;
  if (counted == 1) {
    if (s->bytes == 0)
      return bp_fail(err, BP_INVALID,
                     "no text to train on (the partials of round 1 counted none)");
    memcpy(t->counts1, s->counts1, sizeof t->counts1);
    t->counts2 = s->counts2;
    s->counts2 = NULL;
    return encode_state(t, 1, s->bytes, state, len, err);
  }
  /* Every round counts the same rows: partials of other text (a shard left
  ** out, merged twice, or with rows changed since round 1) would make
  ** another model. */
  if (s->bytes != t->round->total_bytes)
    return bp_fail(err, BP_INVALID,
                   "the partials of round %d counted %llu bytes of text, round 1 counted %llu "
                   "(a shard left out, merged twice, or its rows changed)",
                   counted, (unsigned long long)s->bytes,
                   (unsigned long long)t->round->total_bytes);
  if (counted < t->round->rounds) {
    /* The state so far, its rounds merged one more (a varint below 128:
    ** one byte), and the new length's n-grams: those pruning can keep, as
    ** bp_trainer keeps them, seen at least min_count times. */
    writer w = {0};
    put_varint(&w, (uint64_t)counted);
    put_bytes(&w, m->payload + 1, m->payload_len - 1);
    if (s->run_count)
      rc = put_runs(s, &w, t->options.min_count, err);
    else if (s->table.slots)
      rc = put_table(&w, &s->table, t->options.min_count, err);
    else
      put_varint(&w, 0);
    train_ngram_table_free(&s->table);
    if (rc == BP_OK) rc = seal_state(&w, counted, t->round->rounds, state, len, err);
    bp_buffer_free(&w.out);
    return rc;
  }
  /* The piece round: prune, as bp_trainer_finish does. */
  for (int n = 0; n <= MAX_ORDER; n++) train_ngram_table_free(&t->tables[n]);
  bp_free(t->counts2);
  t->counts2 = NULL;
  if (t->piece_buckets[0]) {
    rc = train_spill_pieces(t, &s->pieces, err);
  } else {
    t->pieces = s->pieces;
    s->pieces = (string_counter){0};
  }
  if (rc == BP_OK && train_report(&t->runner, "pruning pieces", 0))
    rc = bp_fail(err, BP_INTERRUPT, "interrupted");
  bp_model *trained = NULL;
  if (rc == BP_OK) rc = train_prune_pieces(t, &trained, err);
  uint8_t *value = NULL;
  size_t value_len = 0;
  if (rc == BP_OK) rc = bp_model_serialize(trained, &value, &value_len, err);
  if (rc == BP_OK) {
    writer w = {0};
    state_payload(&w, &t->options, counted, t->round->total_bytes);
    put_varint(&w, value_len);
    put_bytes(&w, value, value_len);
    rc = seal_state(&w, counted, t->round->rounds, state, len, err);
    bp_buffer_free(&w.out);
  }
  bp_free(value);
  if (rc == BP_OK && model)
    *model = trained;
  else
    bp_model_release(trained);
  return rc;
}

void bp_train_merger_free(bp_train_merger *m) {
  if (!m) return;
  round_sum_free(&m->sum);
  bp_trainer_free(m->trainer);
  bp_free(m->payload);
  bp_free(m);
}
