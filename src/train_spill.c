/*
** train_spill.c: spill files. Byte strings with counts, written to an
** anonymous temporary file as records (count: 8 bytes, length: 4 bytes, the
** bytes) and read back in blocks of about a given size.
**
** Chunks go to the chunk file when they outgrow their memory, pieces to
** bucket files by hash, pruned pieces to the dropped file; each pass then
** reads its file back a block at a time and works on the block as it would
** on the strings in memory; train_sum_piece_bucket adds one piece bucket
** up.
*/
#include "train_internal.h"

#include <errno.h>
#include <string.h>

void train_block_free(block *b) {
  bp_free(b->views);
  bp_buffer_free(&b->storage);
  memset(b, 0, sizeof *b);
}

bool train_block_push(block *b, const uint8_t *bytes, size_t length, uint64_t count) {
  if (b->count == b->capacity) {
    size_t capacity = b->capacity ? b->capacity * 2 : 1024;
    chunk_view *views = bp_realloc(b->views, capacity * sizeof *views);
    if (!views) return false;
    b->views = views;
    b->capacity = capacity;
  }
  b->views[b->count++] = (chunk_view){bytes, count, length};
  return true;
}

bool train_record_write(FILE *f, const uint8_t *bytes, size_t length, uint64_t count) {
  uint32_t n = (uint32_t)length;
  return fwrite(&count, sizeof count, 1, f) == 1 && fwrite(&n, sizeof n, 1, f) == 1 &&
         fwrite(bytes, 1, length, f) == length;
}

int train_spill_error(bp_error *err, const char *what) {
  return bp_fail(err, BP_IO, "cannot %s a temporary file: %s", what, strerror(errno));
}

/* Reads the next records of f into b (emptied first), about `limit` bytes
** of them with their views; *more is false at the end of the file. */
int train_block_read(FILE *f, block *b, size_t limit, bool *more, bp_error *err) {
  b->count = 0;
  b->storage.length = 0;
  *more = true;
  /* At its full size at once: growing by doublings would leave each block
  ** it grew from free but resident. */
  if (!bp_buffer_reserve(&b->storage, limit)) return bp_fail_nomem(err);
  /* Short strings (pieces) take more room in their views than in bytes. */
  while (b->storage.length + b->count * sizeof *b->views < limit) {
    uint64_t count;
    uint32_t length;
    if (fread(&count, sizeof count, 1, f) != 1) {
      if (ferror(f)) return train_spill_error(err, "read");
      *more = false;
      break;
    }
    if (fread(&length, sizeof length, 1, f) != 1 || !bp_buffer_reserve(&b->storage, length) ||
        fread(b->storage.data + b->storage.length, 1, length, f) != length)
      return ferror(f) || feof(f) ? train_spill_error(err, "read") : bp_fail_nomem(err);
    /* Offsets now, pointers once the storage stops moving. */
    if (!train_block_push(b, (const uint8_t *)(uintptr_t)b->storage.length, length, count))
      return bp_fail_nomem(err);
    b->storage.length += length;
  }
  for (size_t i = 0; i < b->count; i++)
    b->views[i].bytes = (const uint8_t *)b->storage.data + (uintptr_t)b->views[i].bytes;
  return BP_OK;
}

int train_sum_piece_bucket(bp_trainer *t, int k, block *b, string_counter *sum, bp_error *err) {
  int rc = BP_OK;
  bool more = true;
  rewind(t->piece_buckets[k]);
  while (more && rc == BP_OK) {
    /* A third of what the pieces kept and the sum so far leave. */
    size_t block_bytes = train_spare_memory(t, train_string_counter_memory(sum)) / 3;
    rc = train_block_read(t->piece_buckets[k], b, block_bytes, &more, err);
    for (size_t i = 0; i < b->count && rc == BP_OK; i++)
      if (!train_string_counter_add(sum, b->views[i].bytes, b->views[i].length,
                                    b->views[i].count))
        rc = bp_fail_nomem(err);
  }
  return rc;
}
