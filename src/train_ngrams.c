/*
** train_ngrams.c: step 2 of training, the n-gram model.
**
** Counts the n-grams of length 1..order inside every chunk, weighted by the
** chunk's count: lengths 1 and 2 into arrays, longer ones into one n-gram
** table per length, of only those whose shorter parts are frequent (and,
** when memory is short, in several partitions of the n-grams). Then keeps
** those seen at least min_count times and turns counts into
** log P(last byte | the bytes before), which step 3 reads through
** train_ngram_log.
*/
#include "train_internal.h"

#include <math.h>
#include <string.h>

/* The count of an n-gram (n >= 2) while counting. */
static uint64_t ngram_count(const bp_trainer *t, int n, uint64_t key) {
  if (n == 2) return t->counts2[key];
  const ngram_slot *s = train_ngram_find(&t->tables[n], key);
  return s->key == key ? s->count : 0;
}

/* What one share of a counting pass fills: for n = 2 (lengths 1 and 2 at
** once) arrays, for longer n a table of its own. */
typedef struct ngram_share {
  uint64_t counts1[256];
  uint64_t *counts2;
  ngram_table table;
} ngram_share;

typedef struct ngram_pass {
  int n;
  /* Only n-grams whose hash falls in this partition are counted, so that a
  ** pass fits its memory. */
  uint64_t partition, partitions;
  size_t limit; /* bytes each share's table may take; 0: no limit */
  const block *chunks;
  ngram_share shares[MAX_THREADS];
} ngram_pass;

/* Progress phases, one per n-gram length counted. */
static const char *const counting_phase[MAX_ORDER + 1] = {"",
                                                          "",
                                                          "counting 1- and 2-grams",
                                                          "counting 3-grams",
                                                          "counting 4-grams",
                                                          "counting 5-grams",
                                                          "counting 6-grams",
                                                          "counting 7-grams"};

/* The hash's low bits: a table's slot comes from its high bits
** (train_ngram_home), so the n-grams of one partition still spread over
** the whole table. Partitions are a power of two in number, so partition
** p of P is partitions p and p + P of 2P. */
static uint64_t partition_of(uint64_t key, uint64_t partitions) {
  return train_mix64(key) & (partitions - 1);
}

static int count_ngram_share(work *w, int index, bp_error *err) {
  bp_trainer *t = w->trainer;
  ngram_pass *pass = w->data;
  ngram_share *mine = &pass->shares[index];
  const int n = pass->n;
  /* count_ngrams counts lengths 2 to order, at most MAX_ORDER. */
  if (n < 2 || n > MAX_ORDER) return bp_fail(err, BP_INVALID, "no n-grams of length %d", n);
  const uint64_t min_count = t->options.min_count;
  if (n == 2 && !mine->counts2) {
    mine->counts2 = bp_malloc(65536 * sizeof *mine->counts2);
    if (!mine->counts2) return bp_fail_nomem(err);
    memset(mine->counts2, 0, 65536 * sizeof *mine->counts2);
  } else if (n > 2 && !mine->table.slots) {
    if (!train_ngram_table_init(&mine->table, 4096)) return bp_fail_nomem(err);
    mine->table.limit = pass->limit;
  }
  size_t begin, end;
  train_share_range(pass->chunks->count, index, w->count, &begin, &end);
  for (size_t i = begin; i < end; i++) {
    const chunk_view *c = &pass->chunks->views[i];
    const uint8_t *chunk = c->bytes;
    if (n == 2) {
      for (size_t e = 0; e < c->length; e++) {
        mine->counts1[chunk[e]] += c->count;
        if (e >= 1) mine->counts2[chunk[e - 1] << 8 | chunk[e]] += c->count;
      }
    } else {
      uint64_t rolling = 0, mask = train_ngram_mask(n), shorter = train_ngram_mask(n - 1);
      /* Whether the (n-1)-gram ending at the previous byte is frequent: it
      ** is the first n - 1 bytes of the n-gram ending here. */
      bool previous_frequent = false;
      /* The key a few bytes ahead, whose slots are fetched early: lookups
      ** in big tables are cache misses. */
      enum { AHEAD = 4 };
      uint64_t ahead = 0;
      for (size_t e = 0; e < AHEAD && e < c->length; e++) ahead = ahead << 8 | chunk[e];
      const ngram_table *shorter_table = n > 3 ? &t->tables[n - 1] : NULL;
      for (size_t e = 0; e < c->length; e++) {
        rolling = rolling << 8 | chunk[e];
        if (e + AHEAD < c->length) {
          ahead = ahead << 8 | chunk[e + AHEAD];
          if (shorter_table)
            __builtin_prefetch(
                &shorter_table->slots[train_ngram_home(shorter_table, ahead & shorter)]);
          __builtin_prefetch(&mine->table.slots[train_ngram_home(&mine->table, ahead & mask)]);
        }
        if (e + 2 < (size_t)n) continue;
        bool frequent = ngram_count(t, n - 1, rolling & shorter) >= min_count;
        if (e + 1 >= (size_t)n && frequent && previous_frequent &&
            (pass->partitions == 1 ||
             partition_of(rolling & mask, pass->partitions) == pass->partition)) {
          int rc = train_ngram_table_add(&mine->table, rolling & mask, c->count);
          if (rc == BP_NOMEM) return bp_fail_nomem(err);
          if (rc == BP_TOOBIG) return bp_fail(err, BP_TOOBIG, "partition too large");
        }
        previous_frequent = frequent;
      }
    }
    if ((i - begin) % 4096 == 4095 &&
        train_should_stop(w, index, counting_phase[n],
                          (double)(i - begin) / (double)(end - begin)))
      return bp_fail(err, BP_INTERRUPT, "interrupted");
  }
  return BP_OK;
}

/* Counts the n-grams of length n >= 3 of one partition, then keeps those
** seen at least min_kept times in `kept`, or hands them all to the sink. */
static int count_ngram_partition(bp_trainer *t, ngram_pass *pass, uint64_t min_kept,
                                 ngram_table *kept, const ngram_sink *sink, bp_error *err) {
  /* What the model so far (with `kept`) leaves: 2/5 to the share tables
  ** (which take half as much again while they grow), 1/6 to a block of
  ** chunks (and their views). */
  const size_t spare = train_spare_memory(t, kept->capacity * sizeof *kept->slots);
  pass->limit = spare / 5 * 2 / (size_t)t->options.threads;
  int rc = train_share_chunk_blocks(t, count_ngram_share, pass, &pass->chunks, spare / 6, err);
  ngram_table *sum = &pass->shares[0].table;
  for (int s = 1; s < t->options.threads; s++) {
    ngram_table *part = &pass->shares[s].table;
    for (size_t i = 0; i < part->capacity && rc == BP_OK; i++)
      if (part->slots[i].key != EMPTY_KEY) {
        rc = train_ngram_table_add(sum, part->slots[i].key, part->slots[i].count);
        if (rc == BP_NOMEM) bp_fail_nomem(err);
        if (rc == BP_TOOBIG) bp_fail(err, rc, "partition too large");
      }
    train_ngram_table_free(part);
  }
  if (sink && rc == BP_OK) {
    ngram_table counts = *sum;
    *sum = (ngram_table){0};
    return sink->take(sink->context, &counts, err);
  }
  /* `kept` stays in memory through the longer lengths and segmenting: it
  ** grows to two thirds full of what it must hold, no further. A partition
  ** holds n-grams no other does, so each is a new entry. */
  size_t arriving = 0;
  for (size_t i = 0; i < sum->capacity && rc == BP_OK; i++)
    if (sum->slots[i].key != EMPTY_KEY && sum->slots[i].count >= min_kept) arriving++;
  size_t wanted = kept->entries + arriving;
  if (rc == BP_OK && wanted + wanted / 2 + 1 > kept->capacity &&
      !train_ngram_table_resize(kept, wanted + wanted / 2 + 1))
    rc = bp_fail_nomem(err);
  for (size_t i = 0; i < sum->capacity && rc == BP_OK; i++)
    if (sum->slots[i].key != EMPTY_KEY && sum->slots[i].count >= min_kept) {
      *train_ngram_find(kept, sum->slots[i].key) = sum->slots[i];
      kept->entries++;
    }
  train_ngram_table_free(sum);
  return rc;
}

int train_count_short_ngrams(bp_trainer *t, bp_error *err) {
  ngram_pass *pass = bp_malloc(sizeof *pass);
  if (!pass) return bp_fail_nomem(err);
  memset(pass, 0, sizeof *pass);
  pass->n = 2;
  pass->partitions = 1;
  int rc = train_report(&t->runner, counting_phase[2], 0)
               ? bp_fail(err, BP_INTERRUPT, "interrupted")
               : train_share_chunk_blocks(t, count_ngram_share, pass, &pass->chunks,
                                          train_spare_memory(t, 0) / 3, err);
  for (int s = 0; s < t->options.threads; s++) {
    ngram_share *part = &pass->shares[s];
    if (rc == BP_OK) {
      for (int b = 0; b < 256; b++) t->counts1[b] += part->counts1[b];
      if (!t->counts2) {
        t->counts2 = part->counts2;
        part->counts2 = NULL;
      } else {
        for (int g = 0; g < 65536; g++) t->counts2[g] += part->counts2[g];
      }
    }
    bp_free(part->counts2);
    part->counts2 = NULL;
  }
  bp_free(pass);
  return rc;
}

static int count_ngrams_of_length(bp_trainer *t, int n, uint64_t min_kept,
                                  const ngram_sink *sink, bp_error *err) {
  if (train_report(&t->runner, counting_phase[n], 0))
    return bp_fail(err, BP_INTERRUPT, "interrupted");
  int rc = train_spill_chunks_if_crowded(t, 0, err);
  if (rc != BP_OK) return rc;
  ngram_pass *pass = bp_malloc(sizeof *pass);
  /* The partitions still to count, all of one number `partitions`. */
  uint64_t partitions = t->ngram_partitions ? t->ngram_partitions : 1;
  size_t pending = (size_t)partitions, done = 0;
  uint64_t *residues = bp_malloc(pending * sizeof *residues);
  ngram_table kept = {0};
  if (!pass || !residues || !train_ngram_table_init(&kept, 1)) {
    bp_free(pass);
    bp_free(residues);
    return bp_fail_nomem(err);
  }
  for (size_t p = 0; p < pending; p++) residues[p] = p;
  while (rc == BP_OK && done < pending) {
    /* Zeroed: when no share counted, the share tables freed below are
    ** still the empty ones. */
    memset(pass, 0, sizeof *pass);
    pass->n = n;
    pass->partition = residues[done];
    pass->partitions = partitions;
    rc = count_ngram_partition(t, pass, min_kept, &kept, sink, err);
    for (int s = 0; s < t->options.threads; s++) train_ngram_table_free(&pass->shares[s].table);
    train_release_free_memory();
    if (rc == BP_OK) {
      done++;
    } else if (rc == BP_TOOBIG && partitions < 65536) {
      /* Too many n-grams in this partition: the ones not yet counted are
      ** each split in two; those counted stay as they are, in `kept`. */
      size_t left = pending - done;
      uint64_t *split = bp_malloc(2 * left * sizeof *split);
      if (!split) {
        rc = bp_fail_nomem(err);
        break;
      }
      for (size_t p = 0; p < left; p++) {
        split[2 * p] = residues[done + p];
        split[2 * p + 1] = residues[done + p] + partitions;
      }
      bp_free(residues);
      residues = split;
      pending = 2 * left;
      done = 0;
      partitions *= 2;
      rc = BP_OK;
    }
  }
  if (rc == BP_OK && !sink) {
    t->tables[n] = kept;
    t->ngram_partitions = partitions;
  } else {
    train_ngram_table_free(&kept);
  }
  if (rc == BP_TOOBIG)
    rc = bp_fail(err, BP_TOOBIG, "max_memory is too small to count the n-grams");
  bp_free(residues);
  bp_free(pass);
  return rc;
}

int train_count_ngrams_of_length(bp_trainer *t, int n, uint64_t min_kept, bp_error *err) {
  return count_ngrams_of_length(t, n, min_kept, NULL, err);
}

int train_count_ngrams_to_sink(bp_trainer *t, int n, const ngram_sink *sink, bp_error *err) {
  return count_ngrams_of_length(t, n, 1, sink, err);
}

/* Counts n-grams length by length. An n-gram is never seen more often than
** its first or last n - 1 bytes, so when either of those is rarer than
** min_count the n-gram would be pruned anyway, and it is not counted: the
** result is exact and the tables hold only what pruning can keep. When the
** counts of a partition of the n-grams outgrow the memory the tables kept
** so far leave, the partitions not yet counted are split in two, and the
** next length starts from that many partitions: no partition is counted
** again once done. */
int train_count_ngrams(bp_trainer *t, bp_error *err) {
  int rc = train_count_short_ngrams(t, err);
  for (int n = 3; n <= t->options.order && rc == BP_OK; n++)
    rc = train_count_ngrams_of_length(t, n, t->options.min_count, err);
  return rc;
}

/* Keeps the n-grams seen at least min_count times (all for n <= 1) as
** log(count), then makes each log P(last byte | the others): the reference's
** prune_ngrams, step for step. */
int train_prune_ngrams(bp_trainer *t, bp_error *err) {
  const int order = t->options.order;
  uint64_t total = t->bytes;
  for (int b = 0; b < 256; b++)
    if (!t->counts1[b]) {
      t->counts1[b] = 1;
      total++;
    }
  for (int b = 0; b < 256; b++) t->logs1[b] = log((double)t->counts1[b]);
  if (order >= 2) {
    t->logs2 = bp_malloc(65536 * sizeof *t->logs2);
    if (!t->logs2) return bp_fail_nomem(err);
    for (int g = 0; g < 65536; g++)
      t->logs2[g] = t->counts2[g] >= t->options.min_count && t->counts2[g]
                        ? log((double)t->counts2[g])
                        : -INFINITY;
  }
  bp_free(t->counts2);
  t->counts2 = NULL;
  for (int n = 3; n <= order; n++) {
    ngram_table *table = &t->tables[n];
    ngram_table kept;
    size_t survivors = 0;
    for (size_t i = 0; i < table->capacity; i++)
      if (table->slots[i].key != EMPTY_KEY && table->slots[i].count >= t->options.min_count)
        survivors++;
    /* Two thirds full at most: the model is what stays in memory through
    ** segmenting, and a probe that misses still ends within a few slots. */
    size_t capacity = survivors + survivors / 2 + 1;
    if (survivors == table->entries && table->capacity <= capacity) {
      /* Counted with min_count already (bp_trainer_finish) and compact:
      ** logs in place, without a second table beside the first. */
      for (size_t i = 0; i < table->capacity; i++)
        if (table->slots[i].key != EMPTY_KEY)
          table->slots[i].log = log((double)table->slots[i].count);
      continue;
    }
    if (!train_ngram_table_init(&kept, capacity)) return bp_fail_nomem(err);
    for (size_t i = 0; i < table->capacity; i++) {
      const ngram_slot *s = &table->slots[i];
      if (s->key == EMPTY_KEY || s->count < t->options.min_count) continue;
      ngram_slot *k = train_ngram_find(&kept, s->key);
      k->key = s->key;
      k->log = log((double)s->count);
      kept.entries++;
    }
    train_ngram_table_free(table);
    *table = kept;
  }
  /* Conditional probabilities, longest first, each from the unconditioned
  ** log count of its prefix. */
  for (int n = order; n >= 3; n--) {
    ngram_table *table = &t->tables[n];
    for (size_t i = 0; i < table->capacity; i++) {
      ngram_slot *s = &table->slots[i];
      if (s->key == EMPTY_KEY) continue;
      uint64_t prefix = s->key >> 8;
      s->log -= n == 3 ? t->logs2[prefix] : train_ngram_find(&t->tables[n - 1], prefix)->log;
    }
  }
  if (order >= 2)
    for (int g = 0; g < 65536; g++) t->logs2[g] -= t->logs1[g >> 8];
  double log_total = log((double)total);
  for (int b = 0; b < 256; b++) t->logs1[b] -= log_total;
  return BP_OK;
}
