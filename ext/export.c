/*
** export.c: a whole query's tokens written to flat token files, on several
** cores, for language-model training.
**
**     SELECT bp_export(body, '/data/train',
**                      json_object('model', 'zh80k', 'dtype', 'uint16',
**                                  'eos', 1, 'threads', 2))
**       FROM (SELECT body FROM docs ORDER BY id);
**     -- {"documents":1000,"tokens":250000,"bytes":1000000,"seconds":0.412,...}
**
** writes /data/train.bin (every row's ids, in row order, as little-endian
** integers of the dtype) and /data/train.idx (where each document starts
** and ends, after a header saying the dtype, the vocabulary size, the
** model's digest and the counts: README, "Token files"); with
** "format": "megatron", the same .bin and Megatron-LM's .idx layout.
**
** bp_export is an aggregate. Each step copies its row's text (SQLite's
** value lives only for the step) and hands it to an ordered worker pool
** (pool.c): `threads` threads encode rows with the one compiled model,
** which encoding only reads: threads - 1 workers, and SQLite's own thread
** whenever the rows in flight are at their bound, rather than wait for a
** worker. The step that submits also writes the rows that are done, in
** row order, so the files are the same for any number of threads. The
** pool holds a bounded number of rows (and bytes), so memory does not grow
** with the corpus. The final step waits for the last rows, writes the
** index header and renames both files from temporary names in the target
** directory into place: an error, a full disk or sqlite3_interrupt()
** leaves no file behind, neither under the target names nor temporary. SQLite ends the aggregate through the
** same final call when a progress handler or an error elsewhere in the
** statement stops it early, without saying so: option "rows", the number
** of rows the query gives, lets the final step refuse such a short run.
** Touching files, it is registered SQLITE_DIRECTONLY: refused in triggers
** and views.
*/
#include "binding.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

SQLITE_EXTENSION_INIT3

#define FUNCTION "bp_export"

/* Rows and bytes of text in flight, per worker thread: enough to keep each
** busy while the writer catches up, little enough to bound memory. */
#define TASKS_PER_THREAD 64
#define BYTES_PER_THREAD (4 << 20)
#define WRITE_BUFFER (1 << 20)

/* The .idx header of the BytePiece layout (README, "Token files"). */
#define INDEX_MAGIC "BPTOKENS"
#define INDEX_VERSION 1
#define INDEX_HEADER_BYTES 72
/* Megatron-LM's (megatron/core/datasets/indexed_dataset.py): "MMIDIDX\0\0",
** u64 version 1, u8 dtype code, u64 sequences, u64 document indices. */
#define MEGATRON_HEADER_BYTES 34
#define MEGATRON_UINT16 8
#define MEGATRON_INT32 4

enum { FORMAT_BYTEPIECE, FORMAT_MEGATRON };

typedef struct export_options {
  char *model; /* a name in bp_models; NULL for the default model */
  int dtype;
  int bos, eos;
  int threads;
  int progress;
  sqlite3_int64 rows; /* expected, for the ETA; 0 when unknown */
  int format;
} export_options;

/* A file written under a temporary name and renamed at the end. */
typedef struct output_file {
  char *path;      /* the target name */
  char *temporary; /* where it is written until then */
  int fd;          /* -1 when closed */
  uint8_t *buffer;
  size_t used;
  uint64_t offset; /* bytes written so far, buffered ones included */
} output_file;

/* The aggregate's state. */
typedef struct exporter {
  int started, failed;
  sqlite3 *db;
  export_options options;
  bp_model *model;
  bpsql_pool *pool;
  output_file bin, idx;
  output_file pointers; /* Megatron: byte offsets, appended to .idx at the end */
  uint64_t rows;        /* steps, NULL rows included */
  uint64_t documents, tokens, bytes;
  double started_at, last_report;
} exporter;

static double seconds_now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

/* ---- Options ------------------------------------------------------------- */

static int apply_export_option(void *target, const char *key, const char *type,
                               sqlite3_value *atom, char **message) {
  export_options *o = target;
  int is_integer = strcmp(type, "integer") == 0;
  int is_text = strcmp(type, "text") == 0;
  sqlite3_int64 v = is_integer ? sqlite3_value_int64(atom) : 0;
  const char *text = is_text ? (const char *)sqlite3_value_text(atom) : NULL;
  if (strcmp(key, "bos") == 0 || strcmp(key, "eos") == 0 || strcmp(key, "progress") == 0) {
    int *flag = key[0] == 'b' ? &o->bos : key[0] == 'e' ? &o->eos : &o->progress;
    /* json_object('eos', 1) is how SQL spells true. */
    if (strcmp(type, "true") == 0 || (is_integer && v == 1))
      *flag = 1;
    else if (strcmp(type, "false") == 0 || (is_integer && v == 0))
      *flag = 0;
    else
      *message = sqlite3_mprintf("option '%s' must be true or false", key);
  } else if (strcmp(key, "model") == 0) {
    if (text) {
      sqlite3_free(o->model);
      o->model = sqlite3_mprintf("%s", text);
      if (!o->model) *message = sqlite3_mprintf("out of memory");
    } else {
      *message = sqlite3_mprintf("option 'model' must be a model name (TEXT), not %s", type);
    }
  } else if (strcmp(key, "dtype") == 0) {
    o->dtype = bpsql_dtype_named(text);
    if (o->dtype < 0)
      *message = sqlite3_mprintf("option 'dtype' must be 'int32', 'uint32' or 'uint16'");
  } else if (strcmp(key, "threads") == 0) {
    if (is_integer && v >= 1 && v <= 64)
      o->threads = (int)v;
    else
      *message = sqlite3_mprintf("option 'threads' must be an integer from 1 to 64");
  } else if (strcmp(key, "rows") == 0) {
    if (is_integer && v >= 0)
      o->rows = v;
    else
      *message = sqlite3_mprintf("option 'rows' must be an integer of 0 or more");
  } else if (strcmp(key, "format") == 0) {
    if (text && strcmp(text, "bytepiece") == 0)
      o->format = FORMAT_BYTEPIECE;
    else if (text && strcmp(text, "megatron") == 0)
      o->format = FORMAT_MEGATRON;
    else
      *message = sqlite3_mprintf("option 'format' must be 'bytepiece' or 'megatron'");
  } else {
    *message = sqlite3_mprintf(
        "unknown option '%s' (expected model, dtype, bos, eos, threads, progress, rows, "
        "format)",
        key);
  }
  return *message != NULL;
}

/* ---- Files --------------------------------------------------------------- */

/* Creates path.tmp-XXXXXX (random letters) next to path, as
** bp_model_save does: a new file, 0666 less the umask, never an existing
** one. */
static int create_temporary(output_file *f) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  size_t len = strlen(f->path);
  f->temporary = sqlite3_malloc64(len + 12);
  if (!f->temporary) return -2;
  memcpy(f->temporary, f->path, len);
  memcpy(f->temporary + len, ".tmp-", 5);
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned char random[6];
    sqlite3_randomness(sizeof random, random);
    for (int i = 0; i < 6; i++) f->temporary[len + 5 + i] = letters[random[i] % 36];
    f->temporary[len + 11] = 0;
    f->fd = open(f->temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f->fd >= 0 || errno != EEXIST) break;
  }
  if (f->fd < 0) {
    sqlite3_free(f->temporary);
    f->temporary = NULL;
    return -1;
  }
  return 0;
}

static int file_fail(output_file *f, const char *step, bp_error *err) {
  return bpsql_error(err, BP_IO, "cannot write '%s': %s failed: %s", f->path, step,
                     strerror(errno ? errno : EIO));
}

static int write_all(output_file *f, const uint8_t *bytes, size_t len, bp_error *err) {
  while (len) {
    ssize_t k = write(f->fd, bytes, len);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (k == 0) errno = ENOSPC;
      return file_fail(f, "write", err);
    }
    bytes += k;
    len -= (size_t)k;
  }
  return BP_OK;
}

static int file_open(output_file *f, const char *prefix, const char *suffix, bp_error *err) {
  f->fd = -1;
  f->path = sqlite3_mprintf("%s%s", prefix, suffix);
  f->buffer = sqlite3_malloc64(WRITE_BUFFER);
  int r = f->path && f->buffer ? create_temporary(f) : -2;
  if (r == -2) return bpsql_error(err, BP_NOMEM, "out of memory");
  if (r != 0) return file_fail(f, "open", err);
  return BP_OK;
}

static int file_flush(output_file *f, bp_error *err) {
  int rc = write_all(f, f->buffer, f->used, err);
  f->used = 0;
  return rc;
}

static int file_append(output_file *f, const void *bytes, size_t len, bp_error *err) {
  f->offset += len;
  if (f->used + len > WRITE_BUFFER) {
    int rc = file_flush(f, err);
    if (rc != BP_OK) return rc;
    if (len > WRITE_BUFFER) return write_all(f, bytes, len, err);
  }
  memcpy(f->buffer + f->used, bytes, len);
  f->used += len;
  return BP_OK;
}

static int append_u64(output_file *f, uint64_t v, bp_error *err) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
  return file_append(f, b, 8, err);
}

/* Writes a header over the start of the file (flushed first). */
static int file_write_at_start(output_file *f, const uint8_t *bytes, size_t len,
                               bp_error *err) {
  int rc = file_flush(f, err);
  if (rc != BP_OK) return rc;
  size_t done = 0;
  while (done < len) {
    ssize_t k = pwrite(f->fd, bytes + done, len - done, (off_t)done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (k == 0) errno = ENOSPC;
      return file_fail(f, "write", err);
    }
    done += (size_t)k;
  }
  return BP_OK;
}

/* Flushes, syncs and closes; the file stays under its temporary name. */
static int file_close(output_file *f, bp_error *err) {
  int rc = file_flush(f, err);
  if (rc == BP_OK && fsync(f->fd) != 0) rc = file_fail(f, "fsync", err);
  if (close(f->fd) != 0 && rc == BP_OK) rc = file_fail(f, "close", err);
  f->fd = -1;
  return rc;
}

/* Closes (if open) and removes the temporary file, frees the rest. */
static void file_discard(output_file *f) {
  if (f->fd >= 0) close(f->fd);
  if (f->temporary) unlink(f->temporary);
  sqlite3_free(f->temporary);
  sqlite3_free(f->path);
  sqlite3_free(f->buffer);
  memset(f, 0, sizeof *f);
  f->fd = -1;
}

/* fsync of the directory, so that the renames survive a crash. */
static void sync_directory_of(const char *path) {
  char *copy = sqlite3_mprintf("%s", path);
  if (!copy) return;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  sqlite3_free(copy);
}

/* ---- The work of a row --------------------------------------------------- */

/* On a worker: encodes the row, adds bos and eos, packs the ids. */
static void encode_row(void *context, int worker, bpsql_task *task,
                       const bp_interrupt *interrupt) {
  (void)worker;
  exporter *e = context;
  bp_ids ids = {0};
  int rc = BP_OK;
  if (e->options.bos && !bp_ids_push(&ids, BP_ID_BOS)) rc = BP_NOMEM;
  if (rc == BP_OK)
    rc = bp_encode(e->model, task->text, task->len, task->input, NULL, interrupt, &ids,
                   &task->err);
  if (rc == BP_OK && e->options.eos && !bp_ids_push(&ids, BP_ID_EOS)) rc = BP_NOMEM;
  if (rc == BP_OK) {
    size_t len = ids.count * bpsql_dtype_size(e->options.dtype);
    task->output = sqlite3_malloc64(len + 1);
    if (task->output) {
      bpsql_pack_ids(ids.ids, ids.count, e->options.dtype, task->output);
      task->output_len = len;
      task->count = ids.count;
    } else {
      rc = BP_NOMEM;
    }
  }
  if (rc == BP_NOMEM) bpsql_error(&task->err, BP_NOMEM, "out of memory");
  if (rc != BP_OK && rc != BP_NOMEM && rc != BP_INTERRUPT) {
    /* Which row: the message alone would not say. */
    char message[sizeof task->err.message];
    snprintf(message, sizeof message, "%s", task->err.message);
    bpsql_error(&task->err, rc, "document %llu: %s", (unsigned long long)task->index + 1,
                message);
  }
  task->rc = rc;
  bp_ids_free(&ids);
}

static void report_progress(exporter *e, int done) {
  double now = seconds_now();
  double elapsed = now - e->started_at;
  double megabytes = (double)e->bytes / 1e6;
  double rate = elapsed > 0 ? megabytes / elapsed : 0;
  if (done) {
    fprintf(stderr,
            "bp_export: done: %llu documents, %llu tokens, %.1f MB in %.1f s (%.1f MB/s)\n",
            (unsigned long long)e->documents, (unsigned long long)e->tokens, megabytes, elapsed,
            rate);
    return;
  }
  if (e->options.rows > 0 && e->rows > 0 && e->rows < (uint64_t)e->options.rows) {
    double eta = elapsed * (double)((uint64_t)e->options.rows - e->rows) / (double)e->rows;
    fprintf(stderr,
            "bp_export: %llu documents (row %llu of %lld), %.1f MB, %.1f MB/s, ETA %.0f s\n",
            (unsigned long long)e->documents, (unsigned long long)e->rows, e->options.rows,
            megabytes, rate, eta);
  } else {
    fprintf(stderr, "bp_export: %llu documents, %.1f MB, %.1f MB/s\n",
            (unsigned long long)e->documents, megabytes, rate);
  }
}

/* On the submitting thread, in row order: the row's ids to .bin, where it
** ends to .idx. */
static int write_row(void *context, bpsql_task *task, bp_error *err) {
  exporter *e = context;
  uint64_t start = e->bin.offset;
  int rc = file_append(&e->bin, task->output, task->output_len, err);
  if (rc != BP_OK) return rc;
  e->tokens += task->count;
  e->documents++;
  e->bytes += task->len;
  if (e->options.format == FORMAT_BYTEPIECE) {
    rc = append_u64(&e->idx, e->tokens, err);
  } else {
    /* Megatron keeps a sequence's length in an int32. */
    if (task->count > INT32_MAX)
      return bpsql_error(err, BP_TOOBIG,
                         "document %llu has %llu tokens, more than Megatron's format holds "
                         "(2147483647)",
                         (unsigned long long)task->index + 1, (unsigned long long)task->count);
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(task->count >> (8 * i));
    rc = file_append(&e->idx, b, 4, err);
    if (rc == BP_OK) rc = append_u64(&e->pointers, start, err);
  }
  if (rc == BP_OK && e->options.progress) {
    double now = seconds_now();
    if (now - e->last_report >= 1.0) {
      e->last_report = now;
      report_progress(e, 0);
    }
  }
  return rc;
}

/* ---- The aggregate ------------------------------------------------------- */

static void exporter_free(exporter *e) {
  bpsql_pool_free(e->pool);
  e->pool = NULL;
  file_discard(&e->bin);
  file_discard(&e->idx);
  file_discard(&e->pointers);
  bp_model_release(e->model);
  e->model = NULL;
  sqlite3_free(e->options.model);
  e->options.model = NULL;
}

/* Reports a library error on ctx (an interrupt as SQLite's own). */
static void report(sqlite3_context *ctx, const bp_error *err) {
  if (err->code == BP_INTERRUPT)
    sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
  else
    bpsql_result_error(ctx, FUNCTION, err);
}

/* The first step: options, model, files and pool. Returns 0 after
** reporting an error. */
static int exporter_start(sqlite3_context *ctx, exporter *e, int argc, sqlite3_value **argv) {
  e->started = 1;
  e->db = sqlite3_context_db_handle(ctx);
  e->options.dtype = BPSQL_DTYPE_INT32;
  e->options.threads = 1;
  e->bin.fd = e->idx.fd = e->pointers.fd = -1;
  if (sqlite3_value_type(argv[1]) != SQLITE_TEXT || sqlite3_value_bytes(argv[1]) == 0) {
    bpsql_result_errorf(
        ctx, SQLITE_MISMATCH,
        FUNCTION
        ": argument 2 must be the path of the files to write, "
        "without .bin or .idx (TEXT), not %s",
        sqlite3_value_type(argv[1]) == SQLITE_TEXT ? "''" : bpsql_type_name(argv[1]));
    return 0;
  }
  if (argc > 2 && sqlite3_value_type(argv[2]) != SQLITE_NULL &&
      bpsql_read_options(ctx, argv[2], FUNCTION, apply_export_option, &e->options) != SQLITE_OK)
    return 0;
  if (e->options.format == FORMAT_MEGATRON && e->options.dtype == BPSQL_DTYPE_UINT32) {
    bpsql_result_errorf(ctx, SQLITE_ERROR,
                        FUNCTION
                        ": Megatron's format has no dtype 'uint32' "
                        "(use 'uint16' or 'int32')");
    return 0;
  }
  char *message;
  if (bpsql_resolve_model_name(sqlite3_user_data(ctx), e->options.model, FUNCTION, &message,
                               &e->model) != SQLITE_OK) {
    if (message)
      bpsql_result_errorf(ctx, SQLITE_ERROR, "%s", message);
    else
      sqlite3_result_error_nomem(ctx);
    sqlite3_free(message);
    return 0;
  }
  char *label = e->options.model ? sqlite3_mprintf("model '%s'", e->options.model)
                                 : sqlite3_mprintf("the default model");
  int nomem = !label;
  message = nomem ? NULL : bpsql_dtype_refuses(e->options.dtype, e->model, label, &nomem);
  sqlite3_free(label);
  if (nomem || message) {
    if (nomem)
      sqlite3_result_error_nomem(ctx);
    else
      bpsql_result_errorf(ctx, SQLITE_ERROR, FUNCTION ": %s", message);
    sqlite3_free(message);
    return 0;
  }
  const char *prefix = (const char *)sqlite3_value_text(argv[1]);
  bp_error err;
  int rc = file_open(&e->bin, prefix, ".bin", &err);
  if (rc == BP_OK) rc = file_open(&e->idx, prefix, ".idx", &err);
  if (rc == BP_OK && e->options.format == FORMAT_MEGATRON)
    rc = file_open(&e->pointers, prefix, ".idx.pointers", &err);
  /* Room for the header, written once the counts are known; then the
  ** first document's start. */
  static const uint8_t zeros[INDEX_HEADER_BYTES] = {0};
  if (rc == BP_OK)
    rc = file_append(
        &e->idx, zeros,
        e->options.format == FORMAT_BYTEPIECE ? INDEX_HEADER_BYTES : MEGATRON_HEADER_BYTES,
        &err);
  if (rc == BP_OK && e->options.format == FORMAT_BYTEPIECE) rc = append_u64(&e->idx, 0, &err);
  if (rc == BP_OK) {
    /* An SQLite built without threads has an allocator workers cannot share:
    ** then the rows are encoded here, to the same files. */
    int threads = sqlite3_threadsafe() ? e->options.threads : 1;
    bpsql_pool_settings settings = {
        .work = encode_row,
        .deliver = write_row,
        .context = e,
        .interrupt = {bpsql_sql_interrupted, e->db},
        .max_tasks = (size_t)threads * TASKS_PER_THREAD,
        .max_bytes = (size_t)threads * BYTES_PER_THREAD,
    };
    rc = bpsql_pool_new(threads, &settings, &e->pool, &err);
  }
  if (rc != BP_OK) {
    report(ctx, &err);
    return 0;
  }
  e->started_at = e->last_report = seconds_now();
  return 1;
}

void bpsql_export_row(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  exporter *e = sqlite3_aggregate_context(ctx, sizeof *e);
  if (!e) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (e->failed) return;
  if (!e->started && !exporter_start(ctx, e, argc, argv)) {
    e->failed = 1;
    return;
  }
  e->rows++;
  const char *text;
  size_t len;
  int input;
  int r = bpsql_text_argument(ctx, argv[0], FUNCTION, 1, &text, &len, &input);
  if (r < 0) e->failed = 1;
  if (r <= 0) return; /* NULL rows are skipped */
  char *copy = sqlite3_malloc64(len + 1);
  if (!copy) {
    sqlite3_result_error_nomem(ctx);
    e->failed = 1;
    return;
  }
  memcpy(copy, text, len);
  bp_error err;
  if (bpsql_pool_submit(e->pool, copy, len, input, NULL, &err) != BP_OK) {
    report(ctx, &err);
    e->failed = 1;
  }
}

static void json_append_path(sqlite3_str *s, const char *path) {
  sqlite3_str_appendchar(s, 1, '"');
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
    if (*p == '"' || *p == '\\')
      sqlite3_str_appendf(s, "\\%c", *p);
    else if (*p < 0x20)
      sqlite3_str_appendf(s, "\\u%04x", *p);
    else
      sqlite3_str_appendchar(s, 1, (char)*p);
  }
  sqlite3_str_appendchar(s, 1, '"');
}

/* Writes the .idx header (and, for Megatron, the rest of the index). */
static int finish_index(exporter *e, bp_error *err) {
  int rc = BP_OK;
  if (e->options.format == FORMAT_BYTEPIECE) {
    uint8_t h[INDEX_HEADER_BYTES] = {0};
    memcpy(h, INDEX_MAGIC, 8);
    uint32_t fields[4] = {INDEX_VERSION, (uint32_t)e->options.dtype,
                          bp_model_vocab_size(e->model),
                          (uint32_t)e->options.bos | (uint32_t)e->options.eos << 1};
    for (int f = 0; f < 4; f++)
      for (int i = 0; i < 4; i++) h[8 + 4 * f + i] = (uint8_t)(fields[f] >> (8 * i));
    memcpy(h + 24, bp_model_digest(e->model), 32);
    for (int i = 0; i < 8; i++) {
      h[56 + i] = (uint8_t)(e->documents >> (8 * i));
      h[64 + i] = (uint8_t)(e->tokens >> (8 * i));
    }
    return file_write_at_start(&e->idx, h, sizeof h, err);
  }
  /* Megatron: the sequence pointers, kept aside, then the document
  ** indices 0, 1, ..., documents (one sequence per document). */
  rc = file_flush(&e->pointers, err);
  int reader = rc == BP_OK ? open(e->pointers.temporary, O_RDONLY | O_CLOEXEC) : -1;
  if (rc == BP_OK && reader < 0) rc = file_fail(&e->pointers, "open", err);
  while (rc == BP_OK) {
    uint8_t chunk[65536];
    ssize_t k = read(reader, chunk, sizeof chunk);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) rc = file_fail(&e->pointers, "read", err);
    if (k <= 0) break;
    rc = file_append(&e->idx, chunk, (size_t)k, err);
  }
  if (reader >= 0) close(reader);
  for (uint64_t d = 0; d <= e->documents && rc == BP_OK; d++) rc = append_u64(&e->idx, d, err);
  if (rc != BP_OK) return rc;
  uint8_t h[MEGATRON_HEADER_BYTES] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
  h[9] = 1; /* version, u64 */
  h[17] = e->options.dtype == BPSQL_DTYPE_UINT16 ? MEGATRON_UINT16 : MEGATRON_INT32;
  for (int i = 0; i < 8; i++) {
    h[18 + i] = (uint8_t)(e->documents >> (8 * i));
    h[26 + i] = (uint8_t)((e->documents + 1) >> (8 * i));
  }
  return file_write_at_start(&e->idx, h, sizeof h, err);
}

/* Everything is written: header, sync, rename into place. */
static int exporter_commit(exporter *e, bp_error *err) {
  int rc = finish_index(e, err);
  if (rc == BP_OK) rc = file_close(&e->bin, err);
  if (rc == BP_OK) rc = file_close(&e->idx, err);
  if (rc == BP_OK && rename(e->bin.temporary, e->bin.path) != 0)
    rc = file_fail(&e->bin, "rename", err);
  if (rc == BP_OK) {
    /* The .bin is in place; the .idx, renamed last, marks a complete pair. */
    sqlite3_free(e->bin.temporary);
    e->bin.temporary = NULL;
    if (rename(e->idx.temporary, e->idx.path) != 0) {
      rc = file_fail(&e->idx, "rename", err);
      unlink(e->bin.path);
    } else {
      sqlite3_free(e->idx.temporary);
      e->idx.temporary = NULL;
    }
  }
  if (rc == BP_OK) sync_directory_of(e->bin.path);
  return rc;
}

void bpsql_exported(sqlite3_context *ctx) {
  exporter *e = sqlite3_aggregate_context(ctx, 0);
  if (!e || !e->started) {
    /* No row at all: the path and options are not known. */
    bpsql_result_errorf(ctx, SQLITE_ERROR, FUNCTION ": no rows to export");
    return;
  }
  if (e->failed) {
    exporter_free(e); /* the error was reported by the step */
    return;
  }
  /* SQLite also finishes an aggregate when it stops the statement early,
  ** through the same call: after sqlite3_interrupt() (which it lets us
  ** see) nothing is kept; after a progress handler's stop or an error
  ** elsewhere in the statement (which it does not), the rows counted
  ** against option 'rows', when given, tell. */
  bp_error err;
  int rc = BP_OK;
  if (bpsql_sql_interrupted(e->db))
    rc = bpsql_error(&err, BP_INTERRUPT, "interrupted");
  else if (e->options.rows > 0 && e->rows != (uint64_t)e->options.rows)
    rc = bpsql_error(&err, BP_INVALID,
                     "the query gave %llu rows, not the %lld of option 'rows'; "
                     "nothing was written",
                     (unsigned long long)e->rows, e->options.rows);
  if (rc == BP_OK) rc = bpsql_pool_drain(e->pool, &err);
  /* The summary before the files are renamed: once they are in place,
  ** nothing may fail. */
  char *json = NULL;
  if (rc == BP_OK) {
    sqlite3_str *s = sqlite3_str_new(e->db);
    sqlite3_str_appendf(s,
                        "{\"documents\":%llu,\"tokens\":%llu,\"bytes\":%llu,\"seconds\":%.3f,"
                        "\"format\":\"%s\",\"dtype\":\"%s\",\"files\":[",
                        (unsigned long long)e->documents, (unsigned long long)e->tokens,
                        (unsigned long long)e->bytes, seconds_now() - e->started_at,
                        e->options.format == FORMAT_BYTEPIECE ? "bytepiece" : "megatron",
                        bpsql_dtype_name(e->options.dtype));
    json_append_path(s, e->bin.path);
    sqlite3_str_appendchar(s, 1, ',');
    json_append_path(s, e->idx.path);
    sqlite3_str_appendall(s, "]}");
    json = sqlite3_str_finish(s);
    if (!json) rc = bpsql_error(&err, BP_NOMEM, "out of memory");
  }
  if (rc == BP_OK) rc = exporter_commit(e, &err);
  if (rc != BP_OK) {
    sqlite3_free(json);
    report(ctx, &err);
    exporter_free(e);
    return;
  }
  if (e->options.progress) report_progress(e, 1);
  exporter_free(e);
  sqlite3_result_text(ctx, json, -1, sqlite3_free);
}
