/*
** train_reading.c: the rows of bp_train and bp_train_partial, read on
** worker threads.
**
**     bpsql_train_reading_start(&reading, trainer, threads, &err);  -- first row
**     bpsql_train_reading_add(&reading, text, len, input, &err);    -- each row
**     bpsql_train_reading_finish(&reading, &err);                   -- xFinal
**     bpsql_train_reading_free(&reading);
**
** Reading a row is normalizing it to NFC, cutting it into chunks and
** counting the distinct chunks (bp_trainer_add). With one thread, or an
** SQLite without threads (whose allocator workers cannot share), each row
** goes straight to the trainer as SQLite steps. With more, each row's text
** is copied and handed to the ordered pool of pool.c, as bp_export's rows
** are: the pool bounds the rows and bytes in flight, and its workers read
** them, each into a reader of its own (bp_trainer_reader_new), so that no
** lock is taken per chunk. finish waits for the rows, then the trainer
** absorbs the readers one after another before it trains. Counting is a
** sum and every later step sorts or sums, so the model does not depend on
** which worker read which row.
*/
#include "binding.h"
#include "pool.h"

#include <string.h>

SQLITE_EXTENSION_INIT3

/* Rows and bytes of text in flight per thread: enough to keep the workers
** busy while SQLite reads on, little next to the chunks counted. */
#define TASKS_PER_THREAD 64
#define BYTES_PER_THREAD ((size_t)4 << 20)

/* On a worker: the row into that worker's reader. */
static void read_row(void *context, int worker, bpsql_task *task,
                     const bp_interrupt *interrupt) {
  (void)interrupt;
  bpsql_train_reading *r = context;
  task->rc = bp_trainer_add(r->readers[worker], task->text, task->len, task->input, &task->err);
}

/* Nothing to deliver: the readers hold what the rows gave. */
static int delivered(void *context, bpsql_task *task, bp_error *err) {
  (void)context;
  (void)task;
  (void)err;
  return BP_OK;
}

int bpsql_train_reading_start(bpsql_train_reading *r, bp_trainer *trainer, int threads,
                              sqlite3 *db, bp_error *err) {
  memset(r, 0, sizeof *r);
  r->trainer = trainer;
  if (!sqlite3_threadsafe() || threads <= 1) return BP_OK;
  if (threads > BPSQL_MAX_READERS) threads = BPSQL_MAX_READERS;
  for (; r->reader_count < threads; r->reader_count++) {
    int rc = bp_trainer_reader_new(trainer, threads, &r->readers[r->reader_count], err);
    if (rc != BP_OK) return rc;
  }
  bpsql_pool_settings settings = {
      .work = read_row,
      .deliver = delivered,
      .context = r,
      .interrupt = {bpsql_sql_interrupted, db},
      .max_tasks = (size_t)threads * TASKS_PER_THREAD,
      .max_bytes = (size_t)threads * BYTES_PER_THREAD,
  };
  return bpsql_pool_new(threads, &settings, &r->pool, err);
}

int bpsql_train_reading_add(bpsql_train_reading *r, const char *text, size_t len, int input,
                            bp_error *err) {
  if (!r->pool) return bp_trainer_add(r->trainer, text, len, input, err);
  char *copy = sqlite3_malloc64(len + 1);
  if (!copy) return bpsql_error(err, BP_NOMEM, "out of memory");
  memcpy(copy, text, len);
  return bpsql_pool_submit(r->pool, copy, len, input, NULL, err);
}

int bpsql_train_reading_finish(bpsql_train_reading *r, bp_error *err) {
  int rc = r->pool ? bpsql_pool_drain(r->pool, err) : BP_OK;
  /* The workers are stopped before the trainer takes their readers. */
  bpsql_pool_free(r->pool);
  r->pool = NULL;
  for (int i = 0; i < r->reader_count; i++) {
    bp_trainer *reader = r->readers[i];
    r->readers[i] = NULL;
    if (rc == BP_OK)
      rc = bp_trainer_absorb(r->trainer, reader, err);
    else
      bp_trainer_free(reader);
  }
  r->reader_count = 0;
  return rc;
}

void bpsql_train_reading_free(bpsql_train_reading *r) {
  bpsql_pool_free(r->pool);
  r->pool = NULL;
  for (int i = 0; i < r->reader_count; i++) bp_trainer_free(r->readers[i]);
  r->reader_count = 0;
}
