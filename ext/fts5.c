/*
** fts5.c: a BytePiece tokenizer for FTS5, for text without spaces.
**
**     CREATE VIRTUAL TABLE docs_fts USING fts5(body, tokenize = 'bytepiece zh80k');
**     SELECT highlight(docs_fts, 0, '[', ']') FROM docs_fts WHERE docs_fts MATCH '天气';
**     -- search mode: also index the vocabulary pieces inside each token
**     CREATE VIRTUAL TABLE s USING fts5(body, tokenize = 'bytepiece zh80k subwords 1');
**
** Arguments: an optional model name from bp_models (else the default
** model), then key/value options; unknown keys are an error. The model is
** compiled when the table is opened in a connection and kept while it is
** open. Text is normalized to NFC and segmented as bp_encode does; token
** offsets are mapped back to the original text, so highlight() and
** snippet() mark the right characters even where NFC changed the text.
** Queries are always segmented deterministically. A term is a piece with
** the ASCII white space around it removed and ASCII letters in lower case
** (pieces carry the space before a word: " world"); pieces of white space
** alone are not indexed. With subwords on,
** documents also index, at the same position (FTS5_TOKEN_COLOCATED), every
** smaller vocabulary piece inside each token that starts and ends on a
** character, so a single character or a sub-word matches too.
**
** Registered through FTS5's version 2 tokenizer interface where SQLite has
** it (3.47 and later, built against such headers; the locale it passes is
** not needed here), else through version 1, which SQLite 3.40 has.
*/
#include "binding.h"

#include <string.h>

SQLITE_EXTENSION_INIT3

struct Fts5Tokenizer {
  bp_model *model;
  int subwords;
  bp_interrupt interrupt; /* indexing a huge document stops on sqlite3_interrupt */
};

static int tokenizer_create(void *user_data, const char **arguments, int count,
                            Fts5Tokenizer **out) {
  *out = NULL;
  const char *name = NULL;
  int subwords = 0, i = 0;
  if (count > 0 && strcmp(arguments[0], "subwords") != 0) name = arguments[i++];
  for (; i < count; i += 2) {
    if (strcmp(arguments[i], "subwords") != 0 || i + 1 >= count ||
        (strcmp(arguments[i + 1], "0") != 0 && strcmp(arguments[i + 1], "1") != 0))
      return SQLITE_ERROR; /* FTS5 reports "error in tokenizer constructor" */
    subwords = arguments[i + 1][0] == '1';
  }
  bp_model *model;
  char *message;
  int rc = bp_resolve_model_name(user_data, name, "bytepiece tokenizer", &message, &model);
  sqlite3_free(message);
  if (rc != SQLITE_OK) return rc;
  Fts5Tokenizer *t = sqlite3_malloc64(sizeof *t);
  if (!t) {
    bp_model_release(model);
    return SQLITE_NOMEM;
  }
  t->model = model;
  t->subwords = subwords;
  t->interrupt = (bp_interrupt){bp_sql_interrupted, bp_connection_db(user_data)};
  *out = t;
  return SQLITE_OK;
}

static void tokenizer_delete(Fts5Tokenizer *t) {
  if (!t) return;
  bp_model_release(t->model);
  sqlite3_free(t);
}

/* ASCII white space, and NUL: FTS5's integrity-check does not hold for terms
** with a NUL byte, so NUL separates terms like a space. */
static bool is_space(uint8_t c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == 0;
}

/* Reports one term: the bytes [start, end) of the text as segmented,
** trimmed of ASCII white space and lower-cased, with offsets into the
** original. A piece with a NUL byte inside gives no term. */
static int emit_term(const bp_spans *text, size_t start, size_t end, int flags,
                     void *context, int (*emit)(void *, int, const char *, int, int, int)) {
  const uint8_t *bytes = (const uint8_t *)text->text;
  while (start < end && is_space(bytes[start])) start++;
  while (end > start && is_space(bytes[end - 1])) end--;
  if (start == end) return SQLITE_OK;
  char term[BP_MAX_PIECE_BYTES];
  size_t n = end - start;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = bytes[start + i];
    if (c == 0) return SQLITE_OK;
    term[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  }
  return emit(context, flags, term, (int)n, (int)bp_spans_original_start(text, start),
              (int)bp_spans_original_end(text, end));
}

/* What the subword callback needs to report a piece inside a token. */
typedef struct inside {
  const bp_spans *text;
  size_t token_start, token_length;
  void *fts5_context;
  int (*emit)(void *, int, const char *, int, int, int);
  int rc;
} inside;

static bool starts_character(uint8_t byte) { return (byte & 0xC0) != 0x80; }

static void emit_subword(void *context, size_t start, size_t end, uint32_t id) {
  inside *in = context;
  if (in->rc != SQLITE_OK || end - start == in->token_length) return;
  const uint8_t *token = (const uint8_t *)in->text->text + in->token_start;
  if (!starts_character(token[start]) ||
      (end < in->token_length && !starts_character(token[end])))
    return;
  (void)id;
  in->rc = emit_term(in->text, in->token_start + start, in->token_start + end,
                     FTS5_TOKEN_COLOCATED, in->fts5_context, in->emit);
}

static int tokenizer_tokenize(Fts5Tokenizer *t, void *context, int flags, const char *text,
                              int length, int (*emit)(void *, int, const char *, int, int, int)) {
  bp_spans tokens;
  bp_error err;
  int rc = bp_encode_spans(t->model, text, (size_t)length, BP_INPUT_TEXT, 1, NULL,
                           &t->interrupt, &tokens, &err);
  if (rc == BP_INVALID) {
    /* Not UTF-8: index the bytes as they are rather than lose the row. */
    bp_spans_free(&tokens);
    rc = bp_encode_spans(t->model, text, (size_t)length, BP_INPUT_BYTES, 1, NULL,
                         &t->interrupt, &tokens, &err);
  }
  int result = bp_sqlite_code(rc);
  for (size_t i = 0; i < tokens.ids.count && result == SQLITE_OK; i++) {
    size_t start = bp_spans_start(&tokens, i), piece_length = tokens.ends[i] - start;
    const uint8_t *piece = (const uint8_t *)tokens.text + start;
    bool blank = true;
    for (size_t k = 0; k < piece_length && blank; k++) blank = is_space(piece[k]);
    if (blank) continue;
    result = emit_term(&tokens, start, tokens.ends[i], 0, context, emit);
    if (result == SQLITE_OK && t->subwords && !(flags & FTS5_TOKENIZE_QUERY) &&
        piece_length > 1) {
      inside in = {&tokens, start, piece_length, context, emit, SQLITE_OK};
      bp_pieces_inside(t->model, piece, piece_length, emit_subword, &in);
      result = in.rc;
    }
  }
  bp_spans_free(&tokens);
  return result;
}

#if SQLITE_VERSION_NUMBER >= 3047000
static int tokenizer_tokenize_v2(Fts5Tokenizer *t, void *context, int flags, const char *text,
                                 int length, const char *locale, int locale_length,
                                 int (*emit)(void *, int, const char *, int, int, int)) {
  (void)locale; (void)locale_length;
  return tokenizer_tokenize(t, context, flags, text, length, emit);
}
#endif

int bp_register_fts5(sqlite3 *db, bp_connection *connection) {
  fts5_api *api = NULL;
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, NULL);
  /* SQLite built without FTS5 has no fts5() function: nothing to register.
  ** Any other failure (out of memory) is the load's. */
  if (rc == SQLITE_ERROR && strncmp(sqlite3_errmsg(db), "no such function", 16) == 0)
    return SQLITE_OK;
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_pointer(stmt, 1, (void *)&api, "fts5_api_ptr", NULL);
  sqlite3_step(stmt);
  if ((rc = sqlite3_finalize(stmt)) != SQLITE_OK) return rc;
  if (!api) return SQLITE_OK;
#if SQLITE_VERSION_NUMBER >= 3047000
  if (api->iVersion >= 3) {
    static fts5_tokenizer_v2 tokenizer_v2 = {2, tokenizer_create, tokenizer_delete,
                                             tokenizer_tokenize_v2};
    rc = api->xCreateTokenizer_v2(api, "bytepiece", bp_connection_retain(connection),
                                  &tokenizer_v2, bp_connection_release);
  } else
#endif
  {
    static fts5_tokenizer tokenizer = {tokenizer_create, tokenizer_delete,
                                       tokenizer_tokenize};
    rc = api->xCreateTokenizer(api, "bytepiece", bp_connection_retain(connection),
                               &tokenizer, bp_connection_release);
  }
  /* FTS5 calls the destructor only for a tokenizer it has registered. */
  if (rc != SQLITE_OK) bp_connection_release(connection);
  return rc;
}
