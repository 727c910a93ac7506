/*
** tables.c: the table-valued functions bp_tokens, bp_vocab and bp_chunks.
**
**     SELECT * FROM bp_tokens('今天天气不错', 'zh80k');
**       -- position, id, piece (BLOB), text, start, end (byte offsets)
**     SELECT * FROM bp_tokens('今天天气不错', 'zh80k', 0.5, 7);  -- sampled
**     SELECT * FROM bp_vocab('zh80k') WHERE id = 37037;
**       -- id, piece (BLOB), text, count, score
**     SELECT * FROM bp_chunks(body, 256, 'zh80k', 32);
**       -- chunk, text, tokens, start, end
**
** All are eponymous virtual tables whose arguments are hidden columns: the
** EQ constraints on them are the arguments (xBestIndex passes them to
** xFilter and omits them), and the hidden columns read back the values
** given, so that SQLite can check any other constraint on them. The only
** other constraint consumed is bp_vocab's id = N, evaluated as SQLite
** compares an INTEGER column; the rest is left to SQLite.
**
** bp_tokens and bp_chunks encode once in xFilter (bp_encode_spans); their
** offsets are into the text as segmented, i.e. its NFC form (equal to the
** input when the input is already NFC, as nearly all text is). bp_chunks
** finds each chunk as the cursor reaches it, with work in proportion to the
** chunk. bp_vocab lists every id, including the reserved ids 0..2 (piece,
** count and score NULL).
*/
#include "binding.h"

#include <stdint.h>
#include <string.h>

SQLITE_EXTENSION_INIT3

/* Reports a message a helper gave (bpsql_text_value, bpsql_resolve_model, ...)
** through the table, and frees it; no message means out of memory. */
static int report_message(sqlite3_vtab *vtab, int rc, char *message) {
  rc = bpsql_vtab_error(vtab, message ? rc : SQLITE_NOMEM, "%s", message);
  sqlite3_free(message);
  return rc;
}

/* Both tables: a vtab that knows the connection's model registry. */
typedef struct function_table {
  sqlite3_vtab base;
  bpsql_connection *connection;
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
static void result_piece_text(sqlite3_context *ctx, const uint8_t *bytes, uint32_t length) {
  char *text = sqlite3_malloc64(length + 1);
  if (!text) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  memcpy(text, bytes, length);
  size_t n = bp_utf8_drop_invalid(text, length);
  sqlite3_result_text64(ctx, text, n, sqlite3_free, SQLITE_UTF8);
}

/* Keeps copies of the arguments a cursor was given (NULL where absent):
** the hidden columns read them back, and text cut into chunks must outlive
** xFilter. */
static int keep_arguments(sqlite3_value **given, int count, sqlite3_value **kept) {
  for (int k = 0; k < count; k++) {
    sqlite3_value_free(kept[k]);
    kept[k] = NULL;
    if (given[k] && !(kept[k] = sqlite3_value_dup(given[k]))) return SQLITE_NOMEM;
  }
  return SQLITE_OK;
}

static void free_arguments(sqlite3_value **kept, int count) {
  for (int k = 0; k < count; k++) {
    sqlite3_value_free(kept[k]);
    kept[k] = NULL;
  }
}

/* A hidden argument column: the value given, or NULL. */
static void result_argument(sqlite3_context *ctx, sqlite3_value *kept) {
  if (kept) sqlite3_result_value(ctx, kept);
}

/* Finds usable EQ constraints on the hidden argument columns first..last
** and passes them to xFilter in order; idxNum has bit k set when argument k
** is given. When a column has more than one (an argument and a WHERE term),
** the last one, which is the argument as SQLite lists them, is passed and
** the others are left to SQLite, which checks them against the value read
** back. Rows come in the order of `ordered_column`, ascending. Returns
** SQLITE_CONSTRAINT when an argument is present but not usable, so that
** SQLite picks a plan where it is. */
static int plan_arguments(sqlite3_index_info *info, int first, int last, int ordered_column,
                          double rows) {
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
  TOKENS_POSITION,
  TOKENS_ID,
  TOKENS_PIECE,
  TOKENS_TEXT,
  TOKENS_START,
  TOKENS_END,
  TOKENS_INPUT,
  TOKENS_MODEL,
  TOKENS_ALPHA,
  TOKENS_SEED
};

typedef struct tokens_cursor {
  sqlite3_vtab_cursor base;
  sqlite3_value *arguments[4]; /* input, model, alpha, seed as given */
  bp_model *model;
  bp_spans tokens;
  size_t position;
} tokens_cursor;

static int tokens_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                          sqlite3_vtab **vtab, char **error) {
  (void)argc;
  (void)argv;
  (void)error;
  return connect_function_table(
      db, aux,
      "CREATE TABLE x(position INTEGER, id INTEGER, piece BLOB, text TEXT, "
      "start INTEGER, \"end\" INTEGER, input HIDDEN, model HIDDEN, "
      "alpha HIDDEN, seed HIDDEN)",
      vtab);
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
  bp_spans_free(&c->tokens);
  c->position = 0;
}

static int tokens_close(sqlite3_vtab_cursor *cursor) {
  tokens_reset((tokens_cursor *)cursor);
  free_arguments(((tokens_cursor *)cursor)->arguments, 4);
  sqlite3_free(cursor);
  return SQLITE_OK;
}

static int tokens_filter(sqlite3_vtab_cursor *cursor, int idx_num, const char *idx_str,
                         int argc, sqlite3_value **argv) {
  (void)idx_str;
  (void)argc;
  tokens_cursor *c = (tokens_cursor *)cursor;
  function_table *t = (function_table *)cursor->pVtab;
  tokens_reset(c);
  /* argv holds the given arguments in column order; bit k of idx_num says
  ** whether argument k (input, model, alpha, seed) is among them. */
  sqlite3_value *given[4] = {NULL, NULL, NULL, NULL};
  for (int k = 0, next = 0; k < 4; k++)
    if (idx_num & (1 << k)) given[k] = argv[next++];
  if (keep_arguments(given, 4, c->arguments) != SQLITE_OK) return SQLITE_NOMEM;
  if (!given[0])
    return bpsql_vtab_error(cursor->pVtab, SQLITE_ERROR,
                            "bp_tokens: the text argument is required, as in "
                            "bp_tokens('some text', 'model')");
  const char *text;
  size_t len;
  int input;
  char *message;
  int r = bpsql_text_value(given[0], "bp_tokens", 1, &text, &len, &input, &message);
  if (r == 0) return SQLITE_OK; /* no rows */
  if (r < 0) return report_message(cursor->pVtab, SQLITE_ERROR, message);
  int has_alpha, has_seed, sampling = 0;
  double alpha = -1;
  sqlite3_int64 seed = 0;
  bp_sampler sampler;
  int rc = bpsql_alpha_and_seed(given[2], given[3], "bp_tokens", 3, &has_alpha, &alpha,
                                &has_seed, &seed, &message);
  if (rc == SQLITE_OK)
    rc = bpsql_sampler_from_options("bp_tokens", has_alpha, alpha, has_seed, seed, &sampler,
                                    &sampling, &message);
  if (rc == SQLITE_OK)
    rc = bpsql_resolve_model(t->connection, given[1], "bp_tokens", NULL, &message, &c->model);
  if (rc != SQLITE_OK) return report_message(cursor->pVtab, rc, message);
  bp_error err;
  bp_interrupt interrupt = {bpsql_sql_interrupted, bpsql_connection_db(t->connection)};
  if (bp_encode_spans(c->model, text, len, input, 0, sampling ? &sampler : NULL, &interrupt,
                      &c->tokens, &err) != BP_OK)
    return err.code == BP_NOMEM || err.code == BP_INTERRUPT
               ? bpsql_sqlite_code(err.code)
               : bpsql_vtab_error(cursor->pVtab, SQLITE_ERROR, "bp_tokens: %s", err.message);
  return SQLITE_OK;
}

static int tokens_next(sqlite3_vtab_cursor *cursor) {
  tokens_cursor *c = (tokens_cursor *)cursor;
  c->position++;
  return SQLITE_OK;
}

static int tokens_eof(sqlite3_vtab_cursor *cursor) {
  tokens_cursor *c = (tokens_cursor *)cursor;
  return c->position >= c->tokens.ids.count;
}

static int tokens_column(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx, int column) {
  tokens_cursor *c = (tokens_cursor *)cursor;
  uint32_t id = (uint32_t)c->tokens.ids.ids[c->position], length;
  const uint8_t *piece = bp_model_piece(c->model, id, &length);
  switch (column) {
    case TOKENS_POSITION: sqlite3_result_int64(ctx, (sqlite3_int64)c->position); break;
    case TOKENS_ID: sqlite3_result_int64(ctx, id); break;
    case TOKENS_PIECE: sqlite3_result_blob(ctx, piece, (int)length, SQLITE_TRANSIENT); break;
    case TOKENS_TEXT: result_piece_text(ctx, piece, length); break;
    case TOKENS_START:
      sqlite3_result_int64(ctx, (sqlite3_int64)bp_spans_start(&c->tokens, c->position));
      break;
    case TOKENS_END:
      sqlite3_result_int64(ctx, (sqlite3_int64)c->tokens.ends[c->position]);
      break;
    default: result_argument(ctx, c->arguments[column - TOKENS_INPUT]); break;
  }
  return SQLITE_OK;
}

static int tokens_rowid(sqlite3_vtab_cursor *cursor, sqlite3_int64 *rowid) {
  *rowid = (sqlite3_int64)((tokens_cursor *)cursor)->position;
  return SQLITE_OK;
}

const sqlite3_module bpsql_tokens_module = {
    0,                         /* iVersion */
    NULL,                      /* xCreate: eponymous only */
    tokens_connect,            /* xConnect */
    tokens_best_index,         /* xBestIndex */
    disconnect_function_table, /* xDisconnect */
    NULL,                      /* xDestroy */
    tokens_open,               /* xOpen */
    tokens_close,              /* xClose */
    tokens_filter,             /* xFilter */
    tokens_next,               /* xNext */
    tokens_eof,                /* xEof */
    tokens_column,             /* xColumn */
    tokens_rowid,              /* xRowid */
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};

/* ---- bp_chunks ------------------------------------------------------------- */

enum {
  CHUNKS_CHUNK,
  CHUNKS_TEXT,
  CHUNKS_TOKENS,
  CHUNKS_START,
  CHUNKS_END,
  CHUNKS_INPUT,
  CHUNKS_MAX_TOKENS,
  CHUNKS_MODEL,
  CHUNKS_OVERLAP
};

typedef struct chunks_cursor {
  sqlite3_vtab_cursor base;
  sqlite3 *db;                 /* asked about interrupts */
  sqlite3_value *arguments[4]; /* input, max_tokens, model, overlap as given */
  bp_spans text;               /* of arguments[0] */
  size_t budget, overlap;
  size_t first, last;  /* the current chunk's tokens: [first, last) */
  sqlite3_int64 chunk; /* its number */
  int eof;
  unsigned scanned; /* tokens looked at, for interrupt checks */
} chunks_cursor;

static int chunks_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                          sqlite3_vtab **vtab, char **error) {
  (void)argc;
  (void)argv;
  (void)error;
  return connect_function_table(
      db, aux,
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
  bp_spans_free(&c->text);
  c->first = c->last = 0;
  c->chunk = 0;
  c->eof = 1;
}

static int chunks_close(sqlite3_vtab_cursor *cursor) {
  chunks_reset((chunks_cursor *)cursor);
  free_arguments(((chunks_cursor *)cursor)->arguments, 4);
  sqlite3_free(cursor);
  return SQLITE_OK;
}

/* Counts a token looked at. Asking about an interrupt can cost a statement
** (bpsql_sql_interrupted before SQLite 3.41), so a scan asks every 65,536
** tokens; SQLite itself checks between rows. */
static int chunks_interrupted(chunks_cursor *c) {
  return (++c->scanned & 0xFFFF) == 0 && bpsql_sql_interrupted(c->db);
}

/* Whether token k - 1 ends a line: with a newline not followed by another. */
static bool ends_line(const bp_spans *s, size_t k) {
  size_t end = s->ends[k - 1];
  return s->text[end - 1] == '\n' && (end == s->length || s->text[end] != '\n');
}

/* Finds the chunk after the tokens [first, last) (the first chunk when
** last is 0), of at most `budget` tokens, looking only at its own tokens.
** It ends after `last`: at the last line end that fits, else at the last
** token that fits and ends a character. It starts `overlap` tokens before
** `last`, moved forward to a character, after `first`, and later still
** when the first character after `last` would not fit otherwise; a chunk
** is longer than the budget only when that character alone is. So chunks
** advance, cover the text, and overlap by at most `overlap` tokens. */
static int next_chunk(chunks_cursor *c, size_t first, size_t last) {
  const bp_spans *s = &c->text;
  size_t n = s->ids.count, i = 0;
  /* The end of the first character after `last`: any chunk must reach it. */
  size_t reach = last + 1;
  while (reach < n && !bp_spans_can_cut(s, s->ends[reach - 1])) {
    reach++;
    if (chunks_interrupted(c)) return SQLITE_INTERRUPT;
  }
  if (last > 0) {
    i = last > c->overlap ? last - c->overlap : 0;
    if (i <= first) i = first + 1;
    if (reach - i > c->budget) i = reach - c->budget;
    if (i > last) i = last;
    while (i < last && !bp_spans_can_cut(s, s->ends[i - 1])) i++;
  }
  size_t limit = n - i > c->budget ? i + c->budget : n, j = 0;
  if (reach > limit) {
    j = reach; /* one character longer than the budget */
  } else {
    for (size_t k = limit; k > last && !j; k--) {
      if (ends_line(s, k)) j = k;
      if (chunks_interrupted(c)) return SQLITE_INTERRUPT;
    }
    for (size_t k = limit; k > last && !j; k--) {
      if (bp_spans_can_cut(s, s->ends[k - 1])) j = k;
      if (chunks_interrupted(c)) return SQLITE_INTERRUPT;
    }
  }
  c->first = i;
  c->last = j;
  return SQLITE_OK;
}

static int chunks_filter(sqlite3_vtab_cursor *cursor, int idx_num, const char *idx_str,
                         int argc, sqlite3_value **argv) {
  (void)idx_str;
  (void)argc;
  chunks_cursor *c = (chunks_cursor *)cursor;
  function_table *t = (function_table *)cursor->pVtab;
  chunks_reset(c);
  c->db = bpsql_connection_db(t->connection);
  sqlite3_value *given[4] = {NULL, NULL, NULL, NULL};
  for (int k = 0, next = 0; k < 4; k++)
    if (idx_num & (1 << k)) given[k] = argv[next++];
  if (keep_arguments(given, 4, c->arguments) != SQLITE_OK) return SQLITE_NOMEM;
  if (!given[0] || !given[1])
    return bpsql_vtab_error(cursor->pVtab, SQLITE_ERROR,
                            "bp_chunks: the text and max_tokens arguments are required, as in "
                            "bp_chunks('some text', 256, 'model')");
  sqlite3_value *input = c->arguments[0]; /* the copy: chunks point into it */
  const char *text;
  size_t len;
  int kind;
  char *message;
  int r = bpsql_text_value(input, "bp_chunks", 1, &text, &len, &kind, &message);
  if (r == 0) return SQLITE_OK;
  if (r < 0) return report_message(cursor->pVtab, SQLITE_ERROR, message);
  if (sqlite3_value_type(given[1]) != SQLITE_INTEGER || sqlite3_value_int64(given[1]) < 1)
    return bpsql_vtab_error(
        cursor->pVtab, SQLITE_ERROR,
        "bp_chunks: argument 2 (max_tokens) must be an INTEGER of 1 or more");
  sqlite3_int64 overlap = 0;
  if (given[3] && sqlite3_value_type(given[3]) != SQLITE_NULL) {
    overlap = sqlite3_value_int64(given[3]);
    if (sqlite3_value_type(given[3]) != SQLITE_INTEGER || overlap < 0 ||
        overlap >= sqlite3_value_int64(given[1]))
      return bpsql_vtab_error(
          cursor->pVtab, SQLITE_ERROR,
          "bp_chunks: argument 4 (overlap) must be an INTEGER from 0 to max_tokens - 1");
  }
  bp_model *model;
  int rc = bpsql_resolve_model(t->connection, given[2], "bp_chunks", NULL, &message, &model);
  if (rc != SQLITE_OK) return report_message(cursor->pVtab, rc, message);
  bp_error err;
  bp_interrupt interrupt = {bpsql_sql_interrupted, c->db};
  rc = bp_encode_spans(model, text, len, kind, 0, NULL, &interrupt, &c->text, &err);
  bp_model_release(model);
  if (rc != BP_OK)
    return rc == BP_NOMEM || rc == BP_INTERRUPT
               ? bpsql_sqlite_code(rc)
               : bpsql_vtab_error(cursor->pVtab, SQLITE_ERROR, "bp_chunks: %s", err.message);
  sqlite3_int64 budget = sqlite3_value_int64(given[1]);
  c->budget = (sqlite3_uint64)budget > SIZE_MAX ? SIZE_MAX : (size_t)budget;
  c->overlap = (size_t)overlap;
  if (c->text.ids.count == 0) return SQLITE_OK; /* no chunks */
  c->eof = 0;
  return next_chunk(c, 0, 0);
}

static int chunks_next(sqlite3_vtab_cursor *cursor) {
  chunks_cursor *c = (chunks_cursor *)cursor;
  if (c->last >= c->text.ids.count) {
    c->eof = 1;
    return SQLITE_OK;
  }
  c->chunk++;
  return next_chunk(c, c->first, c->last);
}

static int chunks_eof(sqlite3_vtab_cursor *cursor) { return ((chunks_cursor *)cursor)->eof; }

static int chunks_column(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx, int column) {
  chunks_cursor *c = (chunks_cursor *)cursor;
  size_t start = bp_spans_start(&c->text, c->first), end = c->text.ends[c->last - 1];
  switch (column) {
    case CHUNKS_CHUNK: sqlite3_result_int64(ctx, c->chunk); break;
    case CHUNKS_TEXT:
      if (c->text.is_text)
        sqlite3_result_text64(ctx, c->text.text + start, end - start, SQLITE_TRANSIENT,
                              SQLITE_UTF8);
      else
        sqlite3_result_blob64(ctx, c->text.text + start, end - start, SQLITE_TRANSIENT);
      break;
    case CHUNKS_TOKENS: sqlite3_result_int64(ctx, (sqlite3_int64)(c->last - c->first)); break;
    case CHUNKS_START: sqlite3_result_int64(ctx, (sqlite3_int64)start); break;
    case CHUNKS_END: sqlite3_result_int64(ctx, (sqlite3_int64)end); break;
    default: result_argument(ctx, c->arguments[column - CHUNKS_INPUT]); break;
  }
  return SQLITE_OK;
}

static int chunks_rowid(sqlite3_vtab_cursor *cursor, sqlite3_int64 *rowid) {
  *rowid = ((chunks_cursor *)cursor)->chunk;
  return SQLITE_OK;
}

const sqlite3_module bpsql_chunks_module = {
    0,                         /* iVersion */
    NULL,                      /* xCreate: eponymous only */
    chunks_connect,            /* xConnect */
    chunks_best_index,         /* xBestIndex */
    disconnect_function_table, /* xDisconnect */
    NULL,                      /* xDestroy */
    chunks_open,               /* xOpen */
    chunks_close,              /* xClose */
    chunks_filter,             /* xFilter */
    chunks_next,               /* xNext */
    chunks_eof,                /* xEof */
    chunks_column,             /* xColumn */
    chunks_rowid,              /* xRowid */
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};

/* ---- bp_vocab ------------------------------------------------------------- */

enum { VOCAB_ID, VOCAB_PIECE, VOCAB_TEXT, VOCAB_COUNT, VOCAB_SCORE, VOCAB_MODEL };

typedef struct vocab_cursor {
  sqlite3_vtab_cursor base;
  sqlite3_value *model_argument; /* as given, or NULL */
  bp_model *model;
  sqlite3_int64 id, last;
} vocab_cursor;

static int vocab_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                         sqlite3_vtab **vtab, char **error) {
  (void)argc;
  (void)argv;
  (void)error;
  return connect_function_table(
      db, aux,
      "CREATE TABLE x(id INTEGER, piece BLOB, text TEXT, count INTEGER, "
      "score REAL, model HIDDEN)",
      vtab);
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
  free_arguments(&((vocab_cursor *)cursor)->model_argument, 1);
  sqlite3_free(cursor);
  return SQLITE_OK;
}

static int vocab_filter(sqlite3_vtab_cursor *cursor, int idx_num, const char *idx_str, int argc,
                        sqlite3_value **argv) {
  (void)idx_str;
  (void)argc;
  vocab_cursor *c = (vocab_cursor *)cursor;
  function_table *t = (function_table *)cursor->pVtab;
  bp_model_release(c->model);
  c->model = NULL;
  c->id = 0;
  c->last = -1;
  sqlite3_value *given = (idx_num & 1) ? argv[0] : NULL;
  if (keep_arguments(&given, 1, &c->model_argument) != SQLITE_OK) return SQLITE_NOMEM;
  char *message;
  int rc = bpsql_resolve_model(t->connection, given, "bp_vocab", NULL, &message, &c->model);
  if (rc != SQLITE_OK) return report_message(cursor->pVtab, rc, message);
  c->last = (sqlite3_int64)bp_model_vocab_size(c->model) - 1;
  if (idx_num & 2) {
    /* As SQLite compares the INTEGER column id: numeric affinity on the
    ** value ('3' is 3), then by value (3.0 is 3). What stays TEXT or BLOB,
    ** NULL, and any other number match no id. */
    sqlite3_value *wanted = argv[(idx_num & 1) ? 1 : 0];
    int type = sqlite3_value_numeric_type(wanted);
    sqlite3_int64 id = -1;
    if (type == SQLITE_INTEGER) {
      id = sqlite3_value_int64(wanted);
    } else if (type == SQLITE_FLOAT) {
      double r = sqlite3_value_double(wanted);
      if (r >= 0 && r <= (double)c->last && r == (double)(sqlite3_int64)r)
        id = (sqlite3_int64)r;
    }
    if (id < 0 || id > c->last) {
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

static int vocab_column(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx, int column) {
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
      if (piece)
        result_piece_text(ctx, piece, length);
      else
        sqlite3_result_text(ctx, reserved[id], -1, SQLITE_STATIC);
      break;
    case VOCAB_COUNT:
      if (piece && bp_model_has_counts(c->model))
        sqlite3_result_int64(ctx, (sqlite3_int64)bp_model_count(c->model, id));
      break;
    case VOCAB_SCORE:
      if (piece) sqlite3_result_double(ctx, bp_model_score(c->model, id));
      break;
    default: result_argument(ctx, c->model_argument); break;
  }
  return SQLITE_OK;
}

static int vocab_rowid(sqlite3_vtab_cursor *cursor, sqlite3_int64 *rowid) {
  *rowid = ((vocab_cursor *)cursor)->id;
  return SQLITE_OK;
}

const sqlite3_module bpsql_vocab_module = {
    0,                         /* iVersion */
    NULL,                      /* xCreate: eponymous only */
    vocab_connect,             /* xConnect */
    vocab_best_index,          /* xBestIndex */
    disconnect_function_table, /* xDisconnect */
    NULL,                      /* xDestroy */
    vocab_open,                /* xOpen */
    vocab_close,               /* xClose */
    vocab_filter,              /* xFilter */
    vocab_next,                /* xNext */
    vocab_eof,                 /* xEof */
    vocab_column,              /* xColumn */
    vocab_rowid,               /* xRowid */
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};
