/*
** builtin_models.c: the published BytePiece models, built into the extension.
**
**     SELECT bp_encode('今天天气不错', 'bytepiece_80k');   -- nothing stored
**
** models/NAME.value.z holds each model's value (the format bp_models
** stores), zlib-compressed (scripts/convert-models.sh makes them from the
** published zips). The assembler's .incbin puts those bytes into this
** object file at build time, so the extension needs no file and no
** network, and the build no tool beyond the compiler. A model is inflated
** and compiled only when a connection first uses it, through the process's
** shared compiled models (model_cache.c), which also check the SHA-256 its
** value carries; while any connection holds it, others share it. Registry.c
** consults these models after bp_models, so a stored model of the same name
** takes precedence.
*/
#include "builtin_models.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

SQLITE_EXTENSION_INIT3

/* Embeds a file as the hidden symbols SYMBOL and SYMBOL_end, which only
** this object and the others of the extension see. */
#ifdef __APPLE__
#define EMBED(symbol, path)                                                      \
  __asm__(".const_data\n.private_extern _" #symbol "\n.private_extern _" #symbol \
          "_end\n.balign 16\n_" #symbol ":\n.incbin \"" path "\"\n_" #symbol     \
          "_end:\n.text\n");
#else
#define EMBED(symbol, path)                                                                \
  __asm__(".pushsection .rodata\n.globl " #symbol "\n.hidden " #symbol "\n.globl " #symbol \
          "_end\n.hidden " #symbol "_end\n.balign 16\n" #symbol ":\n.incbin \"" path       \
          "\"\n" #symbol "_end:\n.popsection\n");
#endif
/* NOLINTBEGIN(bugprone-macro-parentheses): a declarator, not an expression */
#define DECLARE(symbol)                                                      \
  extern const unsigned char symbol[] __attribute__((visibility("hidden"))); \
  extern const unsigned char symbol##_end[] __attribute__((visibility("hidden")));
/* NOLINTEND(bugprone-macro-parentheses) */

/* The models, by their published names; the first is the default. */
#define BUILTIN_MODELS(X)                                     \
  X(bpsql_builtin_80k, "bytepiece_80k")                       \
  X(bpsql_builtin_eu_plus_80k, "bytepiece.eu.plus.80k")       \
  X(bpsql_builtin_id_eu_plus_80k, "bytepiece.id.eu.plus.80k") \
  X(bpsql_builtin_plus_40k, "bytepiece.plus.40k")             \
  X(bpsql_builtin_zh_id_eu_40k, "bytepiece.zh.id.eu.40k")

#define AS_EMBED(symbol, name) EMBED(symbol, "models/" name ".value.z")
#define AS_DECLARE(symbol, name) DECLARE(symbol)
#define AS_ROW(symbol, name) {name, symbol, symbol##_end},
BUILTIN_MODELS(AS_EMBED)
BUILTIN_MODELS(AS_DECLARE)

typedef struct builtin_model {
  const char *name;
  const unsigned char *start, *end; /* its compressed value */
} builtin_model;

static const builtin_model builtins[] = {BUILTIN_MODELS(AS_ROW)};
#define BUILTIN_COUNT ((int)(sizeof builtins / sizeof builtins[0]))

int bpsql_builtin_count(void) { return BUILTIN_COUNT; }

const char *bpsql_builtin_name(int i) { return builtins[i].name; }

int bpsql_builtin_find(const char *name) {
  if (!name) name = BPSQL_BUILTIN_DEFAULT;
  for (int i = 0; i < BUILTIN_COUNT; i++)
    if (strcmp(builtins[i].name, name) == 0) return i;
  return -1;
}

static voidpf zlib_alloc(voidpf opaque, uInt items, uInt size) {
  (void)opaque;
  return sqlite3_malloc64((sqlite3_uint64)items * size);
}
static void zlib_free(voidpf opaque, voidpf p) {
  (void)opaque;
  sqlite3_free(p);
}

/* Inflates the i-th model's value into *value, a buffer grown as needed, or
** only its first `limit` bytes into `into` (of that size) when `into` is not
** NULL. Returns an SQLite code; the embedded bytes were checked when they
** were made, so a failure here is out of memory, or a corrupt build. */
static int inflate_value(int i, uint8_t *into, size_t limit, uint8_t **value,
                         sqlite3_int64 *len) {
  if (!into) limit = 0;
  const builtin_model *b = &builtins[i];
  z_stream z;
  memset(&z, 0, sizeof z);
  z.zalloc = zlib_alloc;
  z.zfree = zlib_free;
  z.next_in = (Bytef *)b->start;
  z.avail_in = (uInt)(b->end - b->start);
  if (inflateInit(&z) != Z_OK) return SQLITE_NOMEM;
  size_t capacity = limit ? limit : (size_t)(b->end - b->start) * 2;
  uint8_t *out = limit ? into : sqlite3_malloc64(capacity);
  int rc = out ? SQLITE_OK : SQLITE_NOMEM;
  while (rc == SQLITE_OK) {
    z.next_out = out + z.total_out;
    z.avail_out = (uInt)(capacity - z.total_out);
    int zrc = inflate(&z, Z_NO_FLUSH);
    if (zrc == Z_STREAM_END || (limit && z.total_out == limit)) break;
    /* Anything but progress with room to grow is the end: out of memory,
    ** or a stream that is corrupt or ended early. */
    int full = (zrc == Z_OK || zrc == Z_BUF_ERROR) && z.avail_out == 0 && !limit;
    if (zrc == Z_MEM_ERROR) {
      rc = SQLITE_NOMEM;
    } else if (!full) {
      rc = SQLITE_CORRUPT;
    } else {
      uint8_t *grown = sqlite3_realloc64(out, capacity * 2);
      if (!grown) {
        rc = SQLITE_NOMEM;
      } else {
        out = grown;
        capacity *= 2;
      }
    }
  }
  *len = (sqlite3_int64)z.total_out;
  inflateEnd(&z);
  if (rc != SQLITE_OK && !limit) {
    sqlite3_free(out);
    out = NULL;
  }
  if (value) *value = limit ? NULL : out;
  return rc;
}

int bpsql_builtin_vocab_size(int i, sqlite3_int64 *vocab_size) {
  uint8_t header[BP_VALUE_HEADER_BYTES] = {0};
  sqlite3_int64 len;
  int rc = inflate_value(i, header, sizeof header, NULL, &len);
  if (rc != SQLITE_OK) return rc;
  bp_value_header info;
  bp_error err;
  if (bp_value_read_header(header, (size_t)len, &info, &err) != BP_OK) return SQLITE_CORRUPT;
  *vocab_size = (sqlite3_int64)info.piece_count + BP_FIRST_PIECE_ID;
  return SQLITE_OK;
}

int bpsql_builtin_value(int i, uint8_t **value, sqlite3_int64 *len) {
  return inflate_value(i, NULL, 0, value, len);
}

int bpsql_builtin_compile(sqlite3 *db, int i, bp_model **model,
                          uint8_t header[BP_VALUE_HEADER_BYTES], sqlite3_int64 *len,
                          bp_error *err) {
  *model = NULL;
  uint8_t *value;
  int rc = inflate_value(i, NULL, 0, &value, len);
  if (rc != SQLITE_OK) {
    err->code = rc == SQLITE_NOMEM ? BP_NOMEM : BP_FORMAT;
    snprintf(err->message, sizeof err->message, "built-in model '%s' does not inflate",
             builtins[i].name);
    return err->code;
  }
  int brc = bpsql_model_cache_compile(db, value, (size_t)*len, model, err);
  if (brc == BP_OK) memcpy(header, value, BP_VALUE_HEADER_BYTES);
  sqlite3_free(value);
  return brc;
}
