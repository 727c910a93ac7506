/*
** tables.c: the table-valued functions bp_tokens and bp_vocab.
**
**     SELECT * FROM bp_tokens('今天天气不错', 'zh80k');
**       -- position, id, piece (BLOB), text, start, end (byte offsets)
**     SELECT * FROM bp_tokens('今天天气不错', 'zh80k', 0.5, 7);  -- sampled
**     SELECT * FROM bp_vocab('zh80k') WHERE id = 37037;
**       -- id, piece (BLOB), text, count, score
**
** Both are eponymous virtual tables whose arguments are hidden columns.
** bp_tokens encodes once in xFilter and walks the ids; offsets are into the
** text as segmented, i.e. its NFC form (equal to the input when the input
** is already NFC, as nearly all text is). bp_vocab lists every id,
** including the reserved ids 0..2 (piece, count and score NULL).
*/
#include "binding.h"

#include <string.h>

SQLITE_EXTENSION_INIT3

/* Reports an error through the table: its message (freed if not kept) and
** its own code. Out of memory, or no message to report, is SQLITE_NOMEM. */
static int set_error(sqlite3_vtab *vtab, int rc, char *message) {
  if (rc == SQLITE_NOMEM || !message) {
    sqlite3_free(message);
    return SQLITE_NOMEM;
  }
  sqlite3_free(vtab->zErrMsg);
  vtab->zErrMsg = message;
  return rc;
}

/* Both tables: a vtab that knows the connection's model registry. */
typedef struct function_table {
  sqlite3_vtab base;
  bp_connection *connection;
} function_table;

static int connect_function_table(sqlite3 *db, void *aux, const char *schema,
                                  sqlite3_vtab **vtab) {
  int rc = sqlite3_declare_vtab(db, schema);
  if (rc != SQLITE_OK) return rc;
  function_table *t = sqlite3_malloc64(sizeof *t);
  if (!t) return SQLITE_NOMEM;
  memset(t, 0, sizeof *t);
  t->connection = aux;
  *vtab = &t->base;
  return sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
}

static int disconnect_function_table(sqlite3_vtab *vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}

/* Allocates a zeroed cursor of `size` bytes. */
static int open_cursor(size_t size, sqlite3_vtab_cursor **cursor) {
  sqlite3_vtab_cursor *c = sqlite3_malloc64(size);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, size);
  *cursor = c;
  return SQLITE_OK;
}

/* Returns, in piece_text, a piece's bytes with invalid UTF-8 dropped. */
static void result_piece_text(sqlite3_context *ctx, const uint8_t *bytes,
                              uint32_t length) {
  char *text = sqlite3_malloc64(length + 1);
  if (!text) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  memcpy(text, bytes, length);
  size_t n = bp_utf8_drop_invalid(text, length);
  sqlite3_result_text64(ctx, text, n, sqlite3_free, SQLITE_UTF8);
}

/* Finds usable EQ constraints on the hidden argument columns first..last
** and passes them to xFilter in order; idxNum has bit k set when argument k
** is given. Rows come in the order of `ordered_column`, ascending. Returns
** SQLITE_CONSTRAINT when an argument is present but not usable, so that
** SQLite picks a plan where it is. */
static int plan_arguments(sqlite3_index_info *info, int first, int last,
                          int ordered_column, double rows) {
  int where[8], present = 0, usable = 0;
  for (int k = 0; k <= last - first; k++) where[k] = -1;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (c->iColumn < first || c->iColumn > last || c->op != SQLITE_INDEX_CONSTRAINT_EQ)
      continue;
    int k = c->iColumn - first;
    present |= 1 << k;
    if (c->usable) {
      usable |= 1 << k;
      where[k] = i;
    }
  }
  if (present & ~usable) return SQLITE_CONSTRAINT;
  int argv_index = 1;
  for (int k = 0; k <= last - first; k++)
    if (where[k] >= 0) {
      info->aConstraintUsage[where[k]].argvIndex = argv_index++;
      info->aConstraintUsage[where[k]].omit = 1;
    }
  info->idxNum = usable;
  info->estimatedCost = rows;
  info->estimatedRows = (sqlite3_int64)rows;
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == ordered_column &&
      !info->aOrderBy[0].desc)
    info->orderByConsumed = 1;
  return SQLITE_OK;
}

/* ---- bp_tokens ------------------------------------------------------------ */

enum {
  TOKENS_POSITION, TOKENS_ID, TOKENS_PIECE, TOKENS_TEXT, TOKENS_START,
  TOKENS_END, TOKENS_INPUT, TOKENS_MODEL, TOKENS_ALPHA, TOKENS_SEED
};

typedef struct tokens_cursor {
  sqlite3_vtab_cursor base;
  bp_model *model;
  bp_ids ids;
  size_t position;
  size_t start; /* byte offset of the current token */
} tokens_cursor;

static int tokens_connect(sqlite3 *db, void *aux, int argc,
                          const char *const *argv, sqlite3_vtab **vtab,
                          char **error) {
  (void)argc; (void)argv; (void)error;
  return connect_function_table(db, aux,
      "CREATE TABLE x(position INTEGER, id INTEGER, piece BLOB, text TEXT, "
      "start INTEGER, \"end\" INTEGER, input HIDDEN, model HIDDEN, "
      "alpha HIDDEN, seed HIDDEN)", vtab);
}


static int tokens_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  (void)vtab;
  return plan_arguments(info, TOKENS_INPUT, TOKENS_SEED, TOKENS_POSITION, 1000);
}

static int tokens_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **cursor) {
  (void)vtab;
  return open_cursor(sizeof(tokens_cursor), cursor);
}

static void tokens_reset(tokens_cursor *c) {
  bp_model_release(c->model);
  c->model = NULL;
  bp_ids_free(&c->ids);
  c->position = 0;
  c->start = 0;
}

static int tokens_close(sqlite3_vtab_cursor *cursor) {
  tokens_reset((tokens_cursor *)cursor);
  sqlite3_free(cursor);
  return SQLITE_OK;
}

static int tokens_filter(sqlite3_vtab_cursor *cursor, int idx_num,
                         const char *idx_str, int argc, sqlite3_value **argv) {
  (void)idx_str; (void)argc;
  tokens_cursor *c = (tokens_cursor *)cursor;
  function_table *t = (function_table *)cursor->pVtab;
  tokens_reset(c);
  /* argv holds the given arguments in column order; bit k of idx_num says
  ** whether argument k (input, model, alpha, seed) is among them. */
  sqlite3_value *given[4] = {NULL, NULL, NULL, NULL};
  for (int k = 0, next = 0; k < 4; k++)
    if (idx_num & (1 << k)) given[k] = argv[next++];
  if (!given[0])
    return set_error(cursor->pVtab, SQLITE_ERROR, sqlite3_mprintf(
        "bp_tokens: the text argument is required, as in "
        "bp_tokens('some text', 'model')"));
  int type = sqlite3_value_type(given[0]);
  if (type == SQLITE_NULL) return SQLITE_OK; /* no rows */
  if (type != SQLITE_TEXT && type != SQLITE_BLOB)
    return set_error(cursor->pVtab, SQLITE_ERROR, sqlite3_mprintf(
        "bp_tokens: argument 1 must be TEXT or BLOB, not %s", bp_type_name(given[0])));
  int has_alpha, has_seed, sampling = 0;
  double alpha = -1;
  sqlite3_int64 seed = 0;
  bp_sampler sampler;
  char *message;
  int rc = bp_alpha_and_seed(given[2], given[3], "bp_tokens", 3, &has_alpha,
                             &alpha, &has_seed, &seed, &message);
  if (rc == SQLITE_OK)
    rc = bp_sampler_from_options("bp_tokens", has_alpha, alpha, has_seed, seed,
                                 &sampler, &sampling, &message);
  if (rc == SQLITE_OK)
    rc = bp_resolve_model(t->connection, given[1], "bp_tokens", NULL, &message,
                          &c->model);
  if (rc != SQLITE_OK) return set_error(cursor->pVtab, rc, message);
  const char *text = type == SQLITE_TEXT ? (const char *)sqlite3_value_text(given[0])
                                         : (const char *)sqlite3_value_blob(given[0]);
  size_t len = (size_t)sqlite3_value_bytes(given[0]);
  if (!text && len) return SQLITE_NOMEM;
  bp_error err;
  bp_interrupt interrupt = {bp_sql_interrupted, bp_connection_db(t->connection)};
  if (bp_encode(c->model, text ? text : "", len,
                type == SQLITE_TEXT ? BP_INPUT_TEXT : BP_INPUT_BYTES,
                sampling ? &sampler : NULL, &interrupt, &c->ids, &err) != BP_OK)
    return err.code == BP_NOMEM || err.code == BP_INTERRUPT
               ? bp_sqlite_code(err.code)
               : set_error(cursor->pVtab, SQLITE_ERROR,
                           sqlite3_mprintf("bp_tokens: %s", err.message));
  return SQLITE_OK;
}

static uint32_t token_length(const tokens_cursor *c) {
  uint32_t length;
  bp_model_piece(c->model, (uint32_t)c->ids.ids[c->position], &length);
  return length;
}

static int tokens_next(sqlite3_vtab_cursor *cursor) {
  tokens_cursor *c = (tokens_cursor *)cursor;
  c->start += token_length(c);
  c->position++;
  return SQLITE_OK;
}

static int tokens_eof(sqlite3_vtab_cursor *cursor) {
  tokens_cursor *c = (tokens_cursor *)cursor;
  return c->position >= c->ids.count;
}

static int tokens_column(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx,
                         int column) {
  tokens_cursor *c = (tokens_cursor *)cursor;
  uint32_t id = (uint32_t)c->ids.ids[c->position], length;
  const uint8_t *piece = bp_model_piece(c->model, id, &length);
  switch (column) {
    case TOKENS_POSITION: sqlite3_result_int64(ctx, (sqlite3_int64)c->position); break;
    case TOKENS_ID: sqlite3_result_int64(ctx, id); break;
    case TOKENS_PIECE: sqlite3_result_blob(ctx, piece, (int)length, SQLITE_TRANSIENT); break;
    case TOKENS_TEXT: result_piece_text(ctx, piece, length); break;
    case TOKENS_START: sqlite3_result_int64(ctx, (sqlite3_int64)c->start); break;
    case TOKENS_END: sqlite3_result_int64(ctx, (sqlite3_int64)c->start + length); break;
    default: break; /* hidden arguments read back as NULL */
  }
  return SQLITE_OK;
}

static int tokens_rowid(sqlite3_vtab_cursor *cursor, sqlite3_int64 *rowid) {
  *rowid = (sqlite3_int64)((tokens_cursor *)cursor)->position;
  return SQLITE_OK;
}

static sqlite3_module tokens_module = {
    0,                 /* iVersion */
    NULL,              /* xCreate: eponymous only */
    tokens_connect,    /* xConnect */
    tokens_best_index, /* xBestIndex */
    disconnect_function_table, /* xDisconnect */
    NULL,              /* xDestroy */
    tokens_open,       /* xOpen */
    tokens_close,      /* xClose */
    tokens_filter,     /* xFilter */
    tokens_next,       /* xNext */
    tokens_eof,        /* xEof */
    tokens_column,     /* xColumn */
    tokens_rowid,      /* xRowid */
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

/* ---- bp_chunks ------------------------------------------------------------- */

enum {
  CHUNKS_CHUNK, CHUNKS_TEXT, CHUNKS_TOKENS, CHUNKS_START, CHUNKS_END,
  CHUNKS_INPUT, CHUNKS_MAX_TOKENS, CHUNKS_MODEL, CHUNKS_OVERLAP
};

typedef struct chunks_cursor {
  sqlite3_vtab_cursor base;
  bp_segmented text;
  size_t *first, *last; /* token range of each chunk: [first, last) */
  size_t count, current;
} chunks_cursor;

static int chunks_connect(sqlite3 *db, void *aux, int argc,
                          const char *const *argv, sqlite3_vtab **vtab,
                          char **error) {
  (void)argc; (void)argv; (void)error;
  return connect_function_table(db, aux,
      "CREATE TABLE x(chunk INTEGER, text TEXT, tokens INTEGER, start INTEGER, "
      "\"end\" INTEGER, input HIDDEN, max_tokens HIDDEN, model HIDDEN, overlap HIDDEN)",
      vtab);
}

static int chunks_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  (void)vtab;
  return plan_arguments(info, CHUNKS_INPUT, CHUNKS_OVERLAP, CHUNKS_CHUNK, 100);
}

static int chunks_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **cursor) {
  (void)vtab;
  return open_cursor(sizeof(chunks_cursor), cursor);
}

static void chunks_reset(chunks_cursor *c) {
  bp_segmented_free(&c->text);
  sqlite3_free(c->first);
  sqlite3_free(c->last);
  c->first = c->last = NULL;
  c->count = c->current = 0;
}

static int chunks_close(sqlite3_vtab_cursor *cursor) {
  chunks_reset((chunks_cursor *)cursor);
  sqlite3_free(cursor);
  return SQLITE_OK;
}

/* Cuts the tokens into chunks of at most `budget` tokens: each ends at the
** last line end (a newline followed by other text) that fits, else at the
** last token that fits and ends a character; a chunk is longer only when a
** single character takes more tokens than the budget. The next chunk starts
** `overlap` tokens before the previous end (moved forward to a character). */
static int plan_chunks(chunks_cursor *c, size_t budget, size_t overlap) {
  const bp_segmented *s = &c->text;
  size_t n = s->ids.count, capacity = n ? n : 1;
  c->first = sqlite3_malloc64(capacity * sizeof *c->first);
  c->last = sqlite3_malloc64(capacity * sizeof *c->last);
  if (!c->first || !c->last) return SQLITE_NOMEM;
  size_t i = 0;
  while (i < n) {
    size_t limit = i + budget < n ? i + budget : n, j = 0;
    for (size_t k = limit; k > i && !j; k--)
      if (s->bytes[s->ends[k - 1] - 1] == '\n' &&
          (s->ends[k - 1] == s->length || s->bytes[s->ends[k - 1]] != '\n'))
        j = k;
    if (!j) {
      j = limit;
      while (j > i && !bp_segmented_can_cut(s, s->ends[j - 1])) j--;
      if (j == i) { /* one character longer than the budget */
        j = limit;
        while (j < n && !bp_segmented_can_cut(s, s->ends[j - 1])) j++;
      }
    }
    c->first[c->count] = i;
    c->last[c->count++] = j;
    if (j >= n) break;
    size_t next = j > overlap ? j - overlap : 0;
    if (next <= i) next = i + 1;
    while (next < j && !bp_segmented_can_cut(s, s->ends[next - 1])) next++;
    i = next;
  }
  return SQLITE_OK;
}

static int chunks_filter(sqlite3_vtab_cursor *cursor, int idx_num,
                         const char *idx_str, int argc, sqlite3_value **argv) {
  (void)idx_str; (void)argc;
  chunks_cursor *c = (chunks_cursor *)cursor;
  function_table *t = (function_table *)cursor->pVtab;
  chunks_reset(c);
  sqlite3_value *given[4] = {NULL, NULL, NULL, NULL};
  for (int k = 0, next = 0; k < 4; k++)
    if (idx_num & (1 << k)) given[k] = argv[next++];
  if (!given[0] || !given[1])
    return set_error(cursor->pVtab, SQLITE_ERROR, sqlite3_mprintf(
        "bp_chunks: the text and max_tokens arguments are required, as in "
        "bp_chunks('some text', 256, 'model')"));
  int type = sqlite3_value_type(given[0]);
  if (type == SQLITE_NULL) return SQLITE_OK;
  if (type != SQLITE_TEXT && type != SQLITE_BLOB)
    return set_error(cursor->pVtab, SQLITE_ERROR, sqlite3_mprintf(
        "bp_chunks: argument 1 must be TEXT or BLOB, not %s", bp_type_name(given[0])));
  if (sqlite3_value_type(given[1]) != SQLITE_INTEGER || sqlite3_value_int64(given[1]) < 1)
    return set_error(cursor->pVtab, SQLITE_ERROR, sqlite3_mprintf(
        "bp_chunks: argument 2 (max_tokens) must be an INTEGER of 1 or more"));
  sqlite3_int64 overlap = 0;
  if (given[3] && sqlite3_value_type(given[3]) != SQLITE_NULL) {
    overlap = sqlite3_value_int64(given[3]);
    if (sqlite3_value_type(given[3]) != SQLITE_INTEGER || overlap < 0 ||
        overlap >= sqlite3_value_int64(given[1]))
      return set_error(cursor->pVtab, SQLITE_ERROR, sqlite3_mprintf(
          "bp_chunks: argument 4 (overlap) must be an INTEGER from 0 to max_tokens - 1"));
  }
  bp_model *model;
  char *message;
  int rc = bp_resolve_model(t->connection, given[2], "bp_chunks", NULL, &message, &model);
  if (rc != SQLITE_OK) return set_error(cursor->pVtab, rc, message);
  const char *text = type == SQLITE_TEXT ? (const char *)sqlite3_value_text(given[0])
                                         : (const char *)sqlite3_value_blob(given[0]);
  size_t len = (size_t)sqlite3_value_bytes(given[0]);
  bp_error err;
  bp_interrupt interrupt = {bp_sql_interrupted, bp_connection_db(t->connection)};
  rc = bp_segment_text(model, text ? text : "", len,
                       type == SQLITE_TEXT ? BP_INPUT_TEXT : BP_INPUT_BYTES, &interrupt,
                       &c->text, &err);
  bp_model_release(model);
  if (rc != BP_OK)
    return rc == BP_NOMEM || rc == BP_INTERRUPT
               ? bp_sqlite_code(rc)
               : set_error(cursor->pVtab, SQLITE_ERROR,
                           sqlite3_mprintf("bp_chunks: %s", err.message));
  return plan_chunks(c, (size_t)sqlite3_value_int64(given[1]), (size_t)overlap);
}

static int chunks_next(sqlite3_vtab_cursor *cursor) {
  ((chunks_cursor *)cursor)->current++;
  return SQLITE_OK;
}

static int chunks_eof(sqlite3_vtab_cursor *cursor) {
  chunks_cursor *c = (chunks_cursor *)cursor;
  return c->current >= c->count;
}

static int chunks_column(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx,
                         int column) {
  chunks_cursor *c = (chunks_cursor *)cursor;
  size_t first = c->first[c->current], last = c->last[c->current];
  size_t start = first ? c->text.ends[first - 1] : 0, end = c->text.ends[last - 1];
  switch (column) {
    case CHUNKS_CHUNK: sqlite3_result_int64(ctx, (sqlite3_int64)c->current); break;
    case CHUNKS_TEXT:
      if (c->text.is_text)
        sqlite3_result_text64(ctx, c->text.bytes + start, end - start, SQLITE_TRANSIENT,
                              SQLITE_UTF8);
      else
        sqlite3_result_blob64(ctx, c->text.bytes + start, end - start, SQLITE_TRANSIENT);
      break;
    case CHUNKS_TOKENS: sqlite3_result_int64(ctx, (sqlite3_int64)(last - first)); break;
    case CHUNKS_START: sqlite3_result_int64(ctx, (sqlite3_int64)start); break;
    case CHUNKS_END: sqlite3_result_int64(ctx, (sqlite3_int64)end); break;
    default: break;
  }
  return SQLITE_OK;
}

static int chunks_rowid(sqlite3_vtab_cursor *cursor, sqlite3_int64 *rowid) {
  *rowid = (sqlite3_int64)((chunks_cursor *)cursor)->current;
  return SQLITE_OK;
}

static sqlite3_module chunks_module = {
    0,                 /* iVersion */
    NULL,              /* xCreate: eponymous only */
    chunks_connect,    /* xConnect */
    chunks_best_index, /* xBestIndex */
    disconnect_function_table, /* xDisconnect */
    NULL,              /* xDestroy */
    chunks_open,       /* xOpen */
    chunks_close,      /* xClose */
    chunks_filter,     /* xFilter */
    chunks_next,       /* xNext */
    chunks_eof,        /* xEof */
    chunks_column,     /* xColumn */
    chunks_rowid,      /* xRowid */
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

/* ---- bp_vocab ------------------------------------------------------------- */

enum { VOCAB_ID, VOCAB_PIECE, VOCAB_TEXT, VOCAB_COUNT, VOCAB_SCORE, VOCAB_MODEL };

typedef struct vocab_cursor {
  sqlite3_vtab_cursor base;
  bp_model *model;
  sqlite3_int64 id, last;
} vocab_cursor;

static int vocab_connect(sqlite3 *db, void *aux, int argc,
                         const char *const *argv, sqlite3_vtab **vtab,
                         char **error) {
  (void)argc; (void)argv; (void)error;
  return connect_function_table(db, aux,
      "CREATE TABLE x(id INTEGER, piece BLOB, text TEXT, count INTEGER, "
      "score REAL, model HIDDEN)", vtab);
}

static int vocab_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  (void)vtab;
  int rc = plan_arguments(info, VOCAB_MODEL, VOCAB_MODEL, VOCAB_ID, 100000);
  if (rc != SQLITE_OK) return rc;
  /* WHERE id = ? reads one row. */
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    if (c->usable && c->iColumn == VOCAB_ID && c->op == SQLITE_INDEX_CONSTRAINT_EQ) {
      info->aConstraintUsage[i].argvIndex = (info->idxNum & 1) ? 2 : 1;
      info->aConstraintUsage[i].omit = 1;
      info->idxNum |= 2;
      info->estimatedCost = 1;
      info->estimatedRows = 1;
      info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
      break;
    }
  }
  return SQLITE_OK;
}

static int vocab_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **cursor) {
  (void)vtab;
  return open_cursor(sizeof(vocab_cursor), cursor);
}

static int vocab_close(sqlite3_vtab_cursor *cursor) {
  bp_model_release(((vocab_cursor *)cursor)->model);
  sqlite3_free(cursor);
  return SQLITE_OK;
}

static int vocab_filter(sqlite3_vtab_cursor *cursor, int idx_num,
                        const char *idx_str, int argc, sqlite3_value **argv) {
  (void)idx_str; (void)argc;
  vocab_cursor *c = (vocab_cursor *)cursor;
  function_table *t = (function_table *)cursor->pVtab;
  bp_model_release(c->model);
  c->model = NULL;
  c->id = 0;
  c->last = -1;
  char *message;
  int rc = bp_resolve_model(t->connection, (idx_num & 1) ? argv[0] : NULL,
                            "bp_vocab", NULL, &message, &c->model);
  if (rc != SQLITE_OK) return set_error(cursor->pVtab, rc, message);
  c->last = (sqlite3_int64)bp_model_vocab_size(c->model) - 1;
  if (idx_num & 2) {
    sqlite3_value *wanted = argv[(idx_num & 1) ? 1 : 0];
    sqlite3_int64 id = sqlite3_value_int64(wanted);
    int numeric = sqlite3_value_numeric_type(wanted) == SQLITE_INTEGER;
    if (!numeric || id < 0 || id > c->last) {
      c->last = -1; /* no such row */
    } else {
      c->id = id;
      c->last = id;
    }
  }
  return SQLITE_OK;
}

static int vocab_next(sqlite3_vtab_cursor *cursor) {
  ((vocab_cursor *)cursor)->id++;
  return SQLITE_OK;
}

static int vocab_eof(sqlite3_vtab_cursor *cursor) {
  vocab_cursor *c = (vocab_cursor *)cursor;
  return c->id > c->last;
}

static int vocab_column(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx,
                        int column) {
  static const char *const reserved[] = {"<pad>", "<bos>", "<eos>"};
  vocab_cursor *c = (vocab_cursor *)cursor;
  uint32_t id = (uint32_t)c->id, length;
  const uint8_t *piece = bp_model_piece(c->model, id, &length);
  switch (column) {
    case VOCAB_ID: sqlite3_result_int64(ctx, id); break;
    case VOCAB_PIECE:
      if (piece) sqlite3_result_blob(ctx, piece, (int)length, SQLITE_TRANSIENT);
      break;
    case VOCAB_TEXT:
      if (piece) result_piece_text(ctx, piece, length);
      else sqlite3_result_text(ctx, reserved[id], -1, SQLITE_STATIC);
      break;
    case VOCAB_COUNT:
      if (piece && bp_model_has_counts(c->model))
        sqlite3_result_int64(ctx, (sqlite3_int64)bp_model_count(c->model, id));
      break;
    case VOCAB_SCORE:
      if (piece) sqlite3_result_double(ctx, bp_model_score(c->model, id));
      break;
    default: break;
  }
  return SQLITE_OK;
}

static int vocab_rowid(sqlite3_vtab_cursor *cursor, sqlite3_int64 *rowid) {
  *rowid = ((vocab_cursor *)cursor)->id;
  return SQLITE_OK;
}

static sqlite3_module vocab_module = {
    0,                /* iVersion */
    NULL,             /* xCreate: eponymous only */
    vocab_connect,    /* xConnect */
    vocab_best_index, /* xBestIndex */
    disconnect_function_table, /* xDisconnect */
    NULL,             /* xDestroy */
    vocab_open,       /* xOpen */
    vocab_close,      /* xClose */
    vocab_filter,     /* xFilter */
    vocab_next,       /* xNext */
    vocab_eof,        /* xEof */
    vocab_column,     /* xColumn */
    vocab_rowid,      /* xRowid */
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};

int bp_register_tables(sqlite3 *db, bp_connection *connection) {
  int rc = sqlite3_create_module(db, "bp_tokens", &tokens_module, connection);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_module(db, "bp_vocab", &vocab_module, connection);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_module(db, "bp_chunks", &chunks_module, connection);
  return rc;
}
