/*
** train_segment.c: step 3 of training, segmenting with the n-gram model.
**
** Every chunk is segmented by Viterbi over the states "byte i is byte j + 1
** of its piece" (j < order, the last state repeating), scored by the n-gram
** model, with the reference's tie rules; each piece of the best path is
** counted as often as the chunk occurred. Shares count into string counters
** of their own, added up into t->pieces; past their memory (what max_memory
** leaves beside the n-gram model) they move to the bucket files, which step
** 4 sums.
*/
#include "train_internal.h"

#include <math.h>
#include <string.h>

/* The first index of the maximum, as numpy's argmax: 0 when all are -inf. */
static int first_max(const double *v, int n, double *max) {
  int best = 0;
  for (int k = 1; k < n; k++)
    if (v[k] > v[best]) best = k;
  *max = v[best];
  return best;
}

/* Splits a chunk into pieces and counts each `weight` times. */
static int count_pieces_of_chunk(bp_trainer *t, const uint8_t *chunk, size_t len,
                                 uint64_t weight, uint8_t *back, uint8_t *states,
                                 string_counter *pieces) {
  const int order = t->options.order;
  const bool ensure_unicode = t->options.ensure_unicode;
  double previous[MAX_ORDER], current[MAX_ORDER], candidates[MAX_ORDER];
  if (len == 0) return BP_OK; /* chunks are never empty; nothing to count */
  uint64_t rolling = 0;
  for (size_t i = 0; i < len; i++) {
    rolling = rolling << 8 | chunk[i];
    /* The longer n-grams' slots are likely cache misses: ask for them all
    ** at once rather than one after another. */
    for (int n = 3; n <= order; n++) {
      const ngram_table *table = &t->tables[n];
      __builtin_prefetch(&table->slots[train_ngram_home(table, rolling & train_ngram_mask(n))]);
    }
    /* An n-gram whose last n - 1 bytes were pruned was pruned too: once one
    ** is missing, so are all the longer ones ending here. */
    bool missing = false;
    for (int j = 0; j < order; j++) {
      double node = -INFINITY;
      if ((size_t)j <= i && !missing) {
        node = train_ngram_log(t, j + 1, rolling);
        missing = node == -INFINITY;
      }
      if (j == 0 && ensure_unicode && (chunk[i] & 0xC0) == 0x80) node = -INFINITY;
      if (i == 0) {
        current[j] = node;
        back[j] = 0;
        continue;
      }
      /* Predecessors: any state before state 0; j - 1 before j; j - 1 and
      ** itself before the last state. The node score is added before
      ** comparing (sums can tie that differed), the first maximum wins, and
      ** when every sum is -inf the back pointer is 0: numpy's argmax. */
      uint8_t *pointer = &back[i * order + j];
      if (j == 0) {
        for (int k = 0; k < order; k++) candidates[k] = previous[k] + node;
        *pointer = (uint8_t)first_max(candidates, order, &current[0]);
      } else if (j < order - 1) {
        current[j] = previous[j - 1] + node;
        *pointer = current[j] == -INFINITY ? 0 : (uint8_t)(j - 1);
      } else {
        double from_before = previous[j - 1] + node, from_itself = previous[j] + node;
        bool itself = from_itself > from_before;
        current[j] = itself ? from_itself : from_before;
        *pointer = current[j] == -INFINITY ? 0 : (uint8_t)(itself ? j : j - 1);
      }
    }
    memcpy(previous, current, sizeof previous);
  }
  double best;
  int state = first_max(previous, order, &best);
  for (size_t i = len; i-- > 0;) {
    states[i] = (uint8_t)state;
    state = back[i * order + state];
  }
  size_t start = 0;
  for (size_t i = 1; i <= len; i++)
    if (i == len || states[i] == 0) {
      if (!train_string_counter_add(pieces, chunk + start, i - start, weight)) return BP_NOMEM;
      start = i;
    }
  return BP_OK;
}

#define MAX_CHUNK_BYTES (4 * MAX_CHUNK_CHARACTERS + MAX_CHUNK_NEWLINES)

typedef struct piece_pass {
  const block *chunks;
  size_t limit; /* bytes each share's counter may take; 0: no limit */
  string_counter pieces[MAX_THREADS];
} piece_pass;

/* Moves a piece counter's entries to the bucket files, by hash. */
static int spill_pieces(bp_trainer *t, string_counter *c, bp_error *err) {
  int rc = BP_OK;
  pthread_mutex_lock(&t->bucket_lock);
  for (int b = 0; b < PIECE_BUCKETS && rc == BP_OK; b++)
    if (!t->piece_buckets[b] && !(t->piece_buckets[b] = tmpfile()))
      rc = train_spill_error(err, "create");
  for (size_t i = 0; i < c->capacity && rc == BP_OK; i++) {
    const counted_string *s = &c->slots[i];
    if (s->count &&
        !train_record_write(t->piece_buckets[(s->hash >> 40) % PIECE_BUCKETS],
                            (const uint8_t *)c->arena.data + s->offset, s->length, s->count))
      rc = train_spill_error(err, "write");
  }
  pthread_mutex_unlock(&t->bucket_lock);
  train_string_counter_free(c);
  train_release_free_memory();
  return rc;
}

int train_spill_pieces(bp_trainer *t, string_counter *c, bp_error *err) {
  return spill_pieces(t, c, err);
}

static int count_piece_share(work *w, int index, bp_error *err) {
  bp_trainer *t = w->trainer;
  piece_pass *pass = w->data;
  string_counter *mine = &pass->pieces[index];
  uint8_t *back = bp_malloc(MAX_CHUNK_BYTES * (size_t)t->options.order);
  uint8_t *states = bp_malloc(MAX_CHUNK_BYTES);
  if (!back || !states) {
    bp_free(back);
    bp_free(states);
    return bp_fail_nomem(err);
  }
  int rc = BP_OK;
  size_t begin, end;
  const size_t limit = pass->limit;
  train_share_range(pass->chunks->count, index, w->count, &begin, &end);
  for (size_t i = begin; i < end && rc == BP_OK; i++) {
    const chunk_view *c = &pass->chunks->views[i];
    /* The counter's size before this chunk, which fits the limit. */
    const size_t arena_bytes = mine->arena.capacity, slots = mine->capacity;
    bool counted =
        count_pieces_of_chunk(t, c->bytes, c->length, c->count, back, states, mine) == BP_OK;
    if (counted && limit && train_string_counter_memory(mine) > limit) {
      rc = spill_pieces(t, mine, err);
      counted = rc != BP_OK || train_string_counter_reserve(mine, arena_bytes, slots);
    }
    if (!counted)
      rc = bp_fail_nomem(err);
    else if (rc == BP_OK && (i - begin) % 1024 == 1023 &&
             train_should_stop(w, index, "segmenting",
                               (double)(i - begin) / (double)(end - begin)))
      rc = bp_fail(err, BP_INTERRUPT, "interrupted");
  }
  bp_free(back);
  bp_free(states);
  return rc;
}

/* Segments every chunk and counts the pieces: in t->pieces, or, once they
** outgrew their memory, in the bucket files. */
int train_count_pieces(bp_trainer *t, bp_error *err) {
  /* The n-gram model has arrived: the chunks may have to make room. */
  int rc = train_spill_chunks_if_crowded(t, 0, err);
  if (rc != BP_OK) return rc;
  piece_pass *pass = bp_malloc(sizeof *pass);
  if (!pass) return bp_fail_nomem(err);
  memset(pass, 0, sizeof *pass);
  /* What the model leaves: 2/5 to the piece counters (which take half as
  ** much again while their slots grow), 1/6 to a block of chunks (and
  ** their views). */
  const size_t spare = train_spare_memory(t, 0);
  pass->limit = spare / 5 * 2 / (size_t)t->options.threads;
  rc = train_share_chunk_blocks(t, count_piece_share, pass, &pass->chunks, spare / 6, err);
  for (int s = 0; s < t->options.threads; s++) {
    string_counter *c = &pass->pieces[s];
    if (rc == BP_OK && t->piece_buckets[0]) {
      rc = spill_pieces(t, c, err);
    } else if (rc == BP_OK && s == 0) {
      t->pieces = *c;
      *c = (string_counter){0};
    } else {
      for (size_t i = 0; i < c->capacity && rc == BP_OK; i++)
        if (c->slots[i].count &&
            !train_string_counter_add(&t->pieces,
                                      (const uint8_t *)c->arena.data + c->slots[i].offset,
                                      c->slots[i].length, c->slots[i].count))
          rc = bp_fail_nomem(err);
    }
    train_string_counter_free(c);
  }
  bp_free(pass);
  return rc;
}
