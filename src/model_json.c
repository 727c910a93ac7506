/*
** model_json.c: the BytePiece model file, the interchange format of the
** reference implementation.
**
** A model file is a JSON object mapping base64(piece bytes) to
** [id, text, count]; `text` is for display and ignored on reading. Files may
** also come as a zip archive holding one .model member (as the published
** models do). Writing reproduces the reference's json.dump(indent=4,
** ensure_ascii=False) layout byte for byte, through a temporary file that is
** renamed into place.
*/
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Model files larger than this are refused (the published ones are 3-6 MB). */
#define MAX_MODEL_FILE_BYTES ((size_t)1 << 30)

/* ---- Base64 --------------------------------------------------------------- */

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int base64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Strict padded base64; returns the decoded length or -1. `out` must hold
** len / 4 * 3 bytes. */
static long base64_decode(const char *in, size_t len, uint8_t *out) {
  if (len % 4 != 0) return -1;
  size_t n = 0;
  for (size_t i = 0; i < len; i += 4) {
    int v[4];
    int padding = 0;
    for (int k = 0; k < 4; k++) {
      if (in[i + k] == '=' && i + 4 == len && k >= 2) {
        v[k] = 0;
        padding++;
      } else {
        if (padding) return -1;
        v[k] = base64_value((unsigned char)in[i + k]);
        if (v[k] < 0) return -1;
      }
    }
    uint32_t triple =
        (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    out[n++] = (uint8_t)(triple >> 16);
    if (padding < 2) out[n++] = (uint8_t)(triple >> 8);
    if (padding < 1) out[n++] = (uint8_t)triple;
  }
  return (long)n;
}

static bool base64_append(bp_buffer *b, const uint8_t *in, size_t len) {
  if (!bp_buffer_reserve(b, (len + 2) / 3 * 4)) return false;
  char *o = b->data + b->length;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t triple = (uint32_t)in[i] << 16;
    if (i + 1 < len) triple |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len) triple |= in[i + 2];
    *o++ = base64_alphabet[triple >> 18 & 63];
    *o++ = base64_alphabet[triple >> 12 & 63];
    *o++ = i + 1 < len ? base64_alphabet[triple >> 6 & 63] : '=';
    *o++ = i + 2 < len ? base64_alphabet[triple & 63] : '=';
  }
  b->length = (size_t)(o - b->data);
  return true;
}

/* ---- Reading -------------------------------------------------------------- */

typedef struct json_reader {
  const char *start, *p, *end;
  const char *source;
  bp_error *err;
} json_reader;

static int json_error(json_reader *r, const char *what) {
  size_t line = 1, column = 1;
  for (const char *q = r->start; q < r->p && q < r->end; q++) {
    if (*q == '\n') {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  return bp_fail(r->err, BP_FORMAT, "%s: %s at line %zu, column %zu", r->source, what, line,
                 column);
}

static void json_skip_space(json_reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
    r->p++;
}

static bool json_accept(json_reader *r, char c) {
  json_skip_space(r);
  if (r->p < r->end && *r->p == c) {
    r->p++;
    return true;
  }
  return false;
}

static int hex4(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int c = (unsigned char)p[i], d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Reads a JSON string; appends its UTF-8 to `out` unless `out` is NULL. */
static int json_read_string(json_reader *r, bp_buffer *out) {
  json_skip_space(r);
  if (r->p >= r->end || *r->p != '"') return json_error(r, "expected a string");
  r->p++;
  for (;;) {
    const char *run = r->p;
    while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (unsigned char)*r->p >= 0x20)
      r->p++;
    if (out && !bp_buffer_append(out, run, (size_t)(r->p - run))) return bp_fail_nomem(r->err);
    if (r->p >= r->end) return json_error(r, "unterminated string");
    if (*r->p == '"') {
      r->p++;
      return BP_OK;
    }
    if ((unsigned char)*r->p < 0x20) return json_error(r, "control character in string");
    /* An escape. */
    if (r->end - r->p < 2) return json_error(r, "unterminated string");
    char e = r->p[1];
    r->p += 2;
    uint32_t cp;
    switch (e) {
      case '"': cp = '"'; break;
      case '\\': cp = '\\'; break;
      case '/': cp = '/'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u': {
        int v = r->end - r->p >= 4 ? hex4(r->p) : -1;
        if (v < 0) return json_error(r, "bad \\u escape");
        r->p += 4;
        cp = (uint32_t)v;
        if (cp >= 0xD800 && cp < 0xDC00 && r->end - r->p >= 6 && r->p[0] == '\\' &&
            r->p[1] == 'u') {
          int low = hex4(r->p + 2);
          if (low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)low - 0xDC00);
            r->p += 6;
          }
        }
        break;
      }
      default: r->p--; return json_error(r, "bad escape in string");
    }
    if (out) {
      /* Lone surrogates are kept as their 3-byte form, like Python's
      ** surrogatepass; they only matter in display text. */
      char u[4];
      size_t n;
      if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
      } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 63));
        n = 2;
      } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 63));
        u[2] = (char)(0x80 | (cp & 63));
        n = 3;
      } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 63));
        u[2] = (char)(0x80 | (cp >> 6 & 63));
        u[3] = (char)(0x80 | (cp & 63));
        n = 4;
      }
      if (!bp_buffer_append(out, u, n)) return bp_fail_nomem(r->err);
    }
  }
}

/* Reads a non-negative JSON integer. */
static int json_read_uint(json_reader *r, uint64_t *v, const char *what) {
  json_skip_space(r);
  char message[96];
  const char *digits = r->p;
  if (r->p < r->end && *r->p == '-') {
    snprintf(message, sizeof message, "%s must not be negative", what);
    return json_error(r, message);
  }
  uint64_t value = 0;
  while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
    unsigned d = (unsigned)(*r->p - '0');
    if (value > (UINT64_MAX - d) / 10) {
      r->p = digits;
      snprintf(message, sizeof message, "%s is too large", what);
      return json_error(r, message);
    }
    value = value * 10 + d;
    r->p++;
  }
  if (r->p == digits || (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E'))) {
    r->p = digits;
    snprintf(message, sizeof message, "%s must be an integer", what);
    return json_error(r, message);
  }
  *v = value;
  return BP_OK;
}

int bp_model_from_json(const char *json, size_t len, const char *source, bp_model **out,
                       bp_error *err) {
  *out = NULL;
  json_reader r = {json, json, json + len, source, err};
  bp_buffer key = {0}, arena = {0};
  bp_piece *pieces = NULL;
  size_t count = 0, capacity = 0;
  int rc;
  /* Piece bytes go to one arena; pieces point into it once it stops moving. */
  size_t *arena_offset = NULL;
  if (!json_accept(&r, '{')) {
    rc = json_error(&r, "expected '{' (a BytePiece model is a JSON object)");
    goto done;
  }
  if (!json_accept(&r, '}')) {
    do {
      key.length = 0;
      json_skip_space(&r);
      const char *key_start = r.p;
      if ((rc = json_read_string(&r, &key)) != BP_OK) goto done;
      if (!bp_buffer_reserve(&arena, key.length / 4 * 3 + 3)) goto nomem;
      long n = base64_decode(key.data, key.length, (uint8_t *)arena.data + arena.length);
      if (n < 0) {
        r.p = key_start;
        rc = json_error(&r, "piece key is not valid base64");
        goto done;
      }
      if (count == capacity) {
        capacity = capacity ? capacity * 2 : 4096;
        bp_piece *grown = bp_realloc(pieces, capacity * sizeof *pieces);
        size_t *offsets = bp_realloc(arena_offset, capacity * sizeof *offsets);
        if (grown) pieces = grown;
        if (offsets) arena_offset = offsets;
        if (!grown || !offsets) goto nomem;
      }
      bp_piece *p = &pieces[count];
      arena_offset[count] = arena.length;
      p->length = (uint32_t)n;
      arena.length += (size_t)n;
      uint64_t id = 0;
      if (!json_accept(&r, ':')) {
        rc = json_error(&r, "expected ':'");
        goto done;
      }
      if (!json_accept(&r, '[')) {
        rc = json_error(&r, "expected '[' starting [id, text, count]");
        goto done;
      }
      if ((rc = json_read_uint(&r, &id, "piece id")) != BP_OK) goto done;
      if (id > UINT32_MAX) {
        rc = json_error(&r, "piece id is too large");
        goto done;
      }
      p->id = (uint32_t)id;
      if (!json_accept(&r, ',')) {
        rc = json_error(&r, "expected ','");
        goto done;
      }
      if ((rc = json_read_string(&r, NULL)) != BP_OK) goto done;
      if (!json_accept(&r, ',')) {
        rc = json_error(&r, "expected ','");
        goto done;
      }
      if ((rc = json_read_uint(&r, &p->count, "piece count")) != BP_OK) goto done;
      if (!json_accept(&r, ']')) {
        rc = json_error(&r, "expected ']' closing [id, text, count]");
        goto done;
      }
      count++;
    } while (json_accept(&r, ','));
    if (!json_accept(&r, '}')) {
      rc = json_error(&r, "expected ',' or '}'");
      goto done;
    }
  }
  json_skip_space(&r);
  if (r.p != r.end) {
    rc = json_error(&r, "unexpected text after the model object");
    goto done;
  }
  for (size_t i = 0; i < count; i++)
    pieces[i].bytes = (const uint8_t *)arena.data + arena_offset[i];
  rc = bp_model_build(pieces, count, out, err);
  if (rc == BP_FORMAT) {
    /* Name the file in validation errors too. */
    char message[sizeof err->message];
    snprintf(message, sizeof message, "%s", err->message);
    bp_fail(err, rc, "%s: %s", source, message);
  }
  goto done;
nomem:
  rc = bp_fail_nomem(err);
done:
  bp_buffer_free(&key);
  bp_buffer_free(&arena);
  bp_free(pieces);
  bp_free(arena_offset);
  return rc;
}

/* Opened without blocking (O_NONBLOCK): opening a FIFO for reading would
** otherwise wait for a writer forever, deaf to any interrupt. Only regular
** files are read; a FIFO, a device or a directory is refused before the
** first read. */
int bp_read_file(const char *path, char **data, size_t *len, bp_error *err) {
  *data = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return bp_fail(err, BP_IO, "cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return bp_fail(err, BP_IO, "cannot read '%s': not a regular file", path);
  }
  if ((uint64_t)st.st_size > MAX_MODEL_FILE_BYTES) {
    close(fd);
    return bp_fail(err, BP_TOOBIG, "'%s' is larger than 1 GiB", path);
  }
  size_t size = (size_t)st.st_size;
  char *buffer = bp_malloc(size + 1);
  if (!buffer) {
    close(fd);
    return bp_fail_nomem(err);
  }
  size_t got = 0;
  int failed = 0;
  while (got < size) {
    ssize_t k = read(fd, buffer + got, size - got);
    if (k > 0)
      got += (size_t)k;
    else if (k < 0 && errno == EINTR)
      continue;
    else {
      if (k < 0) failed = errno;
      break;
    }
  }
  close(fd);
  if (failed || got != size) {
    bp_free(buffer);
    return bp_fail(err, BP_IO, "cannot read '%s': %s", path,
                   failed ? strerror(failed) : "file changed while reading");
  }
  buffer[size] = 0;
  *data = buffer;
  *len = size;
  return BP_OK;
}

/* A SentencePiece model begins with its first piece (field 1, bytes: 0x0A);
** JSON's first character other than white space is '{'. */
static bool looks_like_sentencepiece(const char *data, size_t len) {
  size_t i = 0;
  while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
    i++;
  return len > 0 && data[0] == 0x0A && (i == len || data[i] != '{');
}

int bp_model_load_file(const char *path, bp_model **out, bp_error *err) {
  *out = NULL;
  char *data, *member;
  size_t len, member_len;
  int rc = bp_read_file(path, &data, &len, err);
  if (rc != BP_OK) return rc;
  rc = bp_zip_extract_model(path, (const uint8_t *)data, len, &member, &member_len, err);
  if (rc == BP_OK && member) {
    bp_free(data);
    data = member;
    len = member_len;
  }
  if (rc == BP_OK) {
    if (looks_like_sentencepiece(data, len))
      rc = bp_model_from_sentencepiece((const uint8_t *)data, len, path, out, err);
    else
      rc = bp_model_from_json(data, len, path, out, err);
  }
  bp_free(data);
  return rc;
}

/* ---- Writing -------------------------------------------------------------- */

/* The letter of a two-character escape (\n for a newline), or 0. */
static char short_escape(unsigned char c) {
  switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    default: return 0;
  }
}

/* Appends `text` as a JSON string the way Python's json.dumps does with
** ensure_ascii=False: short escapes for \b \f \n \r \t \" \\, \u00XX for
** the other characters below U+0020, everything else as is. */
static bool json_append_string(bp_buffer *b, const char *text, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (!bp_buffer_append(b, "\"", 1)) return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    char escape[6] = {'\\', short_escape(c), '0', '0', hex[c >> 4], hex[c & 15]};
    size_t n = escape[1] ? 2 : c < 0x20 ? 6 : 0;
    if (n == 6) escape[1] = 'u';
    bool ok = n ? bp_buffer_append(b, escape, n) : bp_buffer_append(b, &text[i], 1);
    if (!ok) return false;
  }
  return bp_buffer_append(b, "\"", 1);
}

int bp_model_to_json(const bp_model *m, char **json, size_t *len, bp_error *err) {
  *json = NULL;
  *len = 0;
  if (!bp_model_has_counts(m))
    return bp_fail(err, BP_INVALID,
                   "the model has scores but no training counts (it came "
                   "from SentencePiece), and BytePiece JSON needs counts; save it in the "
                   "SentencePiece format instead");
  bp_buffer b = {0}, text = {0};
  char number[32];
  if (!bp_buffer_append(&b, "{", 1)) goto nomem;
  for (uint32_t i = 0; i < m->piece_count; i++) {
    const uint8_t *bytes = m->bytes + m->offsets[i];
    size_t length = m->offsets[i + 1] - m->offsets[i];
    if (!bp_buffer_append(&b, i ? ",\n    \"" : "\n    \"", i ? 7 : 6)) goto nomem;
    if (!base64_append(&b, bytes, length)) goto nomem;
    int n = snprintf(number, sizeof number, "%u", i + BP_FIRST_PIECE_ID);
    if (!bp_buffer_append(&b, "\": [\n        ", 13) ||
        !bp_buffer_append(&b, number, (size_t)n) || !bp_buffer_append(&b, ",\n        ", 10))
      goto nomem;
    text.length = 0;
    if (!bp_buffer_append(&text, bytes, length)) goto nomem;
    text.length = bp_utf8_drop_invalid(text.data, text.length);
    if (!json_append_string(&b, text.data, text.length)) goto nomem;
    n = snprintf(number, sizeof number, "%llu", (unsigned long long)m->counts[i]);
    if (!bp_buffer_append(&b, ",\n        ", 10) || !bp_buffer_append(&b, number, (size_t)n) ||
        !bp_buffer_append(&b, "\n    ]", 6))
      goto nomem;
  }
  if (!bp_buffer_append(&b, "\n}", 2)) goto nomem;
  bp_buffer_free(&text);
  *json = b.data;
  *len = b.length;
  return BP_OK;
nomem:
  bp_buffer_free(&b);
  bp_buffer_free(&text);
  return bp_fail_nomem(err);
}

/* Flushes the directory holding `path`, so that the rename survives a crash
** too. Best effort: the file itself is already safely written. */
static void sync_directory_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char *directory = slash ? bp_malloc((size_t)(slash - path) + 2) : NULL;
  if (slash && !directory) return;
  if (directory) {
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    memcpy(directory, path, n);
    directory[n] = 0;
  }
  int fd = open(directory ? directory : ".", O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  bp_free(directory);
}

/* Creates `path`.tmp-XXXXXX (into `temporary`, path_len + 16 bytes) for
** writing, exclusively. Not mkstemp: it creates the file with mode 0600
** whatever the umask, and a model saved by a user whose umask shares files
** should be shared too. Here the umask applies to 0666. */
static int create_temporary(const char *path, size_t path_len, char *temporary) {
  static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  static uint64_t counter;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  uint64_t x = ((uint64_t)now.tv_sec * 1000000007u) ^ (uint64_t)now.tv_nsec ^
               ((uint64_t)getpid() << 32) ^
               __atomic_add_fetch(&counter, 0x9E3779B97F4A7C15ull, __ATOMIC_RELAXED);
  memcpy(temporary, path, path_len);
  memcpy(temporary + path_len, ".tmp-", 5);
  for (int attempt = 0; attempt < 100; attempt++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t y = x ^ (x >> 29);
    for (int i = 0; i < 6; i++) temporary[path_len + 5 + i] = letters[(y >> (6 * i)) % 36];
    temporary[path_len + 11] = 0;
    int fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1; /* errno is EEXIST */
}

int bp_model_save_file(const bp_model *m, const char *path, int format, size_t *written_bytes,
                       bp_error *err) {
  *written_bytes = 0;
  char *json = NULL;
  uint8_t *proto = NULL;
  size_t len;
  int rc = format == BP_FILE_SENTENCEPIECE ? bp_model_to_sentencepiece(m, &proto, &len, err)
                                           : bp_model_to_json(m, &json, &len, err);
  if (rc != BP_OK) return rc;
  const char *bytes = json ? json : (const char *)proto;
  size_t path_len = strlen(path);
  char *temporary = bp_malloc(path_len + 16);
  if (!temporary) {
    bp_free(json);
    bp_free(proto);
    return bp_fail_nomem(err);
  }
  int fd = create_temporary(path, path_len, temporary);
  if (fd < 0) {
    rc = bp_fail(err, BP_IO, "cannot write '%s': %s", path, strerror(errno));
    goto done;
  }
  /* A file replaced keeps its permission bits; a new one gets what the
  ** umask leaves of 0666, as any file the user creates. */
  struct stat existing;
  bool replacing = stat(path, &existing) == 0 && S_ISREG(existing.st_mode);
  const char *step = NULL;
  size_t written = 0;
  while (written < len && !step) {
    ssize_t k = write(fd, bytes + written, len - written);
    if (k > 0)
      written += (size_t)k;
    else if (k < 0 && errno == EINTR)
      continue;
    else {
      if (k == 0) errno = EIO;
      step = "write";
    }
  }
  if (!step && replacing && fchmod(fd, existing.st_mode & 07777) != 0) step = "chmod";
  if (!step && fsync(fd) != 0) step = "fsync";
  int saved_errno = errno;
  if (close(fd) != 0 && !step) {
    step = "close";
    saved_errno = errno;
  }
  if (!step && rename(temporary, path) != 0) {
    step = "rename";
    saved_errno = errno;
  }
  if (!step) {
    *written_bytes = len;
    sync_directory_of(path);
  } else {
    unlink(temporary);
    rc = bp_fail(err, BP_IO, "cannot write '%s': %s failed: %s", path, step,
                 strerror(saved_errno ? saved_errno : EIO));
  }
done:
  bp_free(temporary);
  bp_free(json);
  bp_free(proto);
  return rc;
}
