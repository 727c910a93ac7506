/*
** bytepiece.h: the public interface of the BytePiece tokenizer library.
**
** BytePiece is a byte-based Unigram tokenizer. A model is a list of pieces
** (byte strings) with training counts; a piece's score is
** log(count) - log(sum of counts). Encoding normalizes text to NFC, cuts it
** into chunks after every run of newlines, and segments each chunk into the
** pieces whose scores sum highest (Viterbi). Ids 0, 1, 2 are <pad>, <bos>,
** <eos>; piece ids start at 3.
**
** The library has no SQLite types. Every allocation goes through the hook set
** by bp_set_allocator(), so a host can route memory through its own allocator
** (the SQLite binding uses sqlite3_malloc64) and inject failures in tests.
**
** Typical use:
**
**     bp_model *m; bp_error err;
**     if (bp_model_load_file("bytepiece_80k.zip", &m, &err) != BP_OK) ...
**     bp_ids ids = {0};
**     bp_encode(m, text, len, BP_INPUT_TEXT, NULL, NULL, &ids, &err);
**     ...
**     bp_ids_free(&ids);
**     bp_model_release(m);
*/
#ifndef BYTEPIECE_H
#define BYTEPIECE_H

#include <stddef.h>
#include <stdint.h>

#define BP_VERSION "0.2.0"

/* Result codes. */
enum {
  BP_OK = 0,
  BP_NOMEM,    /* an allocation failed */
  BP_IO,       /* a file could not be read or written */
  BP_FORMAT,   /* malformed model file or model value */
  BP_INVALID,  /* invalid argument: bad UTF-8, unknown id, ... */
  BP_TOOBIG,   /* input or output beyond a documented limit */
  BP_INTERRUPT /* the caller's interrupt check asked to stop */
};

/* An error: a code and a message that says what went wrong and where. */
typedef struct bp_error {
  int code;
  char message[512];
} bp_error;

/* The reserved ids. */
enum { BP_ID_PAD = 0, BP_ID_BOS = 1, BP_ID_EOS = 2, BP_FIRST_PIECE_ID = 3 };

/* Pieces longer than this are refused when a model is built. */
#define BP_MAX_PIECE_BYTES 255

/* Route all of the library's allocations through these three functions.
** Passing NULLs restores malloc/realloc/free. Not thread-safe: call it once,
** before any other use of the library. */
void bp_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                      void (*free_fn)(void *));

/* A caller's way to stop long work: check(context) is called now and then
** (encoding: after every 1 MB of text; compiling a model value: every 65536
** pieces read and trie nodes placed); when it returns nonzero, the work
** stops with BP_INTERRUPT. */
typedef struct bp_interrupt {
  int (*check)(void *context);
  void *context;
} bp_interrupt;

/* ---- Models ---------------------------------------------------------------
** A bp_model is immutable once built and may be used from several threads at
** once. It is reference counted: bp_model_retain/bp_model_release.
*/
typedef struct bp_model bp_model;

/* One piece as given to bp_model_build: its bytes, id and training count
** (or, for bp_model_build_scored, its score). */
typedef struct bp_piece {
  const uint8_t *bytes;
  uint32_t length;
  uint32_t id;
  uint64_t count;
  double score;
} bp_piece;

/* Builds a model from pieces. Ids must be exactly 3..n+2, each once; every
** single byte must be a piece; counts must be positive and add up to at
** most 2^63 - 1 (INT64_MAX), so that every count and sum fits a signed
** 64-bit integer. */
int bp_model_build(const bp_piece *pieces, size_t n, bp_model **out, bp_error *err);

/* The lowest score a piece may have: -FLT_MAX, the lowest a SentencePiece
** model (single-precision scores) can hold. Bounded scores keep the score of
** every segmentation of any text finite. */
#define BP_LOWEST_SCORE (-3.40282346638528859812e+38)

/* Builds a model whose pieces carry scores instead of counts (a model taken
** from another tokenizer, such as a SentencePiece Unigram model): the same
** rules, with scores at most 0 and at least BP_LOWEST_SCORE (no NaN). Such a model encodes, samples
** and exports to SentencePiece, but has no counts: BytePiece JSON and
** bp_model_shrink need them and refuse it. */
int bp_model_build_scored(const bp_piece *pieces, size_t n, bp_model **out, bp_error *err);

/* Whether the model has training counts (not only scores). */
int bp_model_has_counts(const bp_model *m);

/* Reads a model file: BytePiece JSON, a SentencePiece model, or a zip
** archive holding one .model member. Error messages name the file. */
int bp_model_load_file(const char *path, bp_model **out, bp_error *err);

/* Parses BytePiece JSON held in memory. `source` names it in messages. */
int bp_model_from_json(const char *json, size_t len, const char *source, bp_model **out,
                       bp_error *err);

/* Writes BytePiece JSON, byte for byte as the reference's Trainer.save()
** lays it out, into a new buffer (*json, *len) to be freed with bp_free. */
int bp_model_to_json(const bp_model *m, char **json, size_t *len, bp_error *err);

/* A SentencePiece model file (ModelProto) of the model, into a new buffer
** to free with bp_free: as the reference converts ensure_unicode models
** (Unigram, byte fallback, identity normalization; see sentencepiece.c),
** ids unchanged. Pieces that are not valid UTF-8 or contain U+2581 cannot
** be converted: BP_INVALID naming the first. */
int bp_model_to_sentencepiece(const bp_model *m, uint8_t **out, size_t *len, bp_error *err);

/* Reads a SentencePiece Unigram model into a model with scores: text and
** user-defined pieces with U+2581 read as a space, byte pieces <0xNN> as
** single bytes, unknown, control and unused pieces left out. Where a byte
** piece and a text piece have the same byte, the one listed first stays,
** with the text piece's score. The pieces kept are numbered from 3 in the
** file's order, so a model with <unk>, <s>, </s> at 0, 1, 2 and no such
** pair (the reference's conversions, spm_train models without byte
** fallback) keeps its ids; bytes with no piece come last. Single bytes
** without a score (0, as
** SentencePiece's trainer writes them) and bytes with no piece get the
** lowest score minus 10, SentencePiece's price for a character it has no
** piece for. Other model types and pieces that cannot be represented are
** BP_FORMAT naming the problem. */
int bp_model_from_sentencepiece(const uint8_t *data, size_t len, const char *source,
                                bp_model **out, bp_error *err);

/* Model file formats. */
enum { BP_FILE_BYTEPIECE = 0, BP_FILE_SENTENCEPIECE = 1 };

/* Writes the model to `path` in `format` through a temporary file in the
** same directory, flushed and then renamed, so a crash never leaves a
** truncated file under `path`. Sets *written_bytes to the file's size. */
int bp_model_save_file(const bp_model *m, const char *path, int format, size_t *written_bytes,
                       bp_error *err);

/* The compact binary model value (what the SQLite binding stores):
** header "BPMODEL\0", u32 format version, u32 piece count, 32-byte SHA-256 of
** the payload; then for each piece in id order: varint length, bytes, and
** varint count (format 1) or the score as 8 bytes of a little-endian IEEE
** double (format 2, models with scores only). Equal models give equal
** values. */
#define BP_VALUE_HEADER_BYTES 48
#define BP_VALUE_DIGEST_OFFSET 16
enum { BP_VALUE_FORMAT_COUNTS = 1, BP_VALUE_FORMAT_SCORES = 2 };
/* The model's value, into a new buffer to free with bp_free. Its header
** carries bp_model_digest(m), computed when the model was built (or taken
** from the value it was read from): serializing does not hash again. */
int bp_model_serialize(const bp_model *m, uint8_t **value, size_t *len, bp_error *err);
/* Every field of a value is checked (header, format, piece count against
** the length, each length and count or score, nothing after the last piece,
** varints in their shortest form) before the model is compiled. Compiling
** checks `interrupt` (may be NULL) regularly: BP_INTERRUPT. */
int bp_model_deserialize(const uint8_t *value, size_t len, const bp_interrupt *interrupt,
                         bp_model **out, bp_error *err);
/* What a value's header says, decoded. It claims the digest; only
** bp_value_verify proves the payload has it. */
typedef struct bp_value_header {
  uint32_t format;      /* BP_VALUE_FORMAT_COUNTS or BP_VALUE_FORMAT_SCORES */
  uint32_t piece_count; /* the vocabulary size minus the 3 reserved ids */
  uint8_t digest[32];   /* SHA-256 of the payload, as the header claims */
} bp_value_header;
/* Checks and decodes a value's header: its first BP_VALUE_HEADER_BYTES
** (len may be just that, for a header read alone). BP_OK, or BP_FORMAT
** "not a BytePiece model value" when the value is shorter than a header,
** the magic is wrong or the format is neither of the two (then *out is all
** zero). Nothing after the header is looked at. */
int bp_value_read_header(const uint8_t *value, size_t len, bp_value_header *out, bp_error *err);
/* Checks a whole value without decoding it: its header, and that the
** SHA-256 of its payload is the digest the header carries. BP_OK, or
** BP_FORMAT with the message bp_model_deserialize would give. */
int bp_value_verify(const uint8_t *value, size_t len, bp_error *err);

bp_model *bp_model_retain(bp_model *m);
void bp_model_release(bp_model *m);

/* Vocabulary: ids 0..vocab_size-1, of which 0..2 are the reserved ids. */
uint32_t bp_model_vocab_size(const bp_model *m);
/* A piece's bytes, count (0 in a model without counts) and score; NULL/0
** for reserved or unknown ids. */
const uint8_t *bp_model_piece(const bp_model *m, uint32_t id, uint32_t *length);
uint64_t bp_model_count(const bp_model *m, uint32_t id);
double bp_model_score(const bp_model *m, uint32_t id);
const uint8_t *bp_model_digest(const bp_model *m);
/* Bytes of memory the compiled model holds. */
size_t bp_model_memory(const bp_model *m);

/* ---- Encoding ------------------------------------------------------------ */

/* A growable array of token ids. Zero-initialize before first use. */
typedef struct bp_ids {
  int32_t *ids;
  size_t count;
  size_t capacity;
} bp_ids;
void bp_ids_free(bp_ids *ids);
/* Appends one id; returns 0 when out of memory. */
int bp_ids_push(bp_ids *ids, int32_t id);

/* How input bytes are taken. */
enum {
  BP_INPUT_TEXT = 0, /* UTF-8 text: validated and normalized to NFC */
  BP_INPUT_BYTES = 1 /* raw bytes: no validation, no normalization */
};

/* Random segmentation (subword regularization). With alpha >= 0 each
** chunk's segmentation is drawn with probability proportional to the
** product of p(piece)^alpha over its pieces, exactly, in one pass; alpha 0
** is uniform over all segmentations, large alpha approaches Viterbi. The
** random numbers come from xoshiro256** seeded through SplitMix64, so a
** seed gives the same draws on every platform. A sampler is not shared
** between threads. */
typedef struct bp_sampler {
  double alpha;
  uint64_t state[4];
} bp_sampler;

/* Seeds a sampler. alpha must be finite and >= 0. */
void bp_sampler_init(bp_sampler *s, double alpha, uint64_t seed);
/* The next uniform double in [0, 1), with 53 random bits. */
double bp_sampler_uniform(bp_sampler *s);

/* Appends the ids of `text` to `out`: the Viterbi segmentation, or a random
** one drawn with `sampler` when it is not NULL. Invalid UTF-8 in
** BP_INPUT_TEXT mode is BP_INVALID, with the byte offset in the message.
** `interrupt` may be NULL. */
int bp_encode(const bp_model *m, const char *text, size_t len, int input, bp_sampler *sampler,
              const bp_interrupt *interrupt, bp_ids *out, bp_error *err);

/* The number of tokens bp_encode would produce, without storing them. */
int bp_count(const bp_model *m, const char *text, size_t len, int input, bp_sampler *sampler,
             const bp_interrupt *interrupt, size_t *count, bp_error *err);

/* Encoding with each token's place in the text: what is needed to list
** tokens with offsets, cut text at token boundaries, or index it for search.
**
**     bp_spans s;
**     bp_encode_spans(m, text, len, BP_INPUT_TEXT, 1, NULL, NULL, &s, &err);
**     token i is s.text[bp_spans_start(&s, i) .. s.ends[i]), which came from
**     text[bp_spans_original_start(&s, bp_spans_start(&s, i)) ..
**          bp_spans_original_end(&s, s.ends[i]))
**     bp_spans_free(&s);
**
** The tokens are those of bp_encode with the same arguments. Offsets are
** into the text as segmented: the NFC form of BP_INPUT_TEXT, which is the
** input itself when it is NFC already (nearly all text is), and the input
** bytes for BP_INPUT_BYTES. */
typedef struct bp_spans {
  const char *text; /* as segmented; points into the input when unchanged */
  size_t length;
  int is_text; /* BP_INPUT_TEXT: cuts must fall between characters */
  bp_ids ids;
  size_t *ends; /* ends[i]: the offset in text where token i ends */
  /* Private: the NFC text when it differs from the input, and the map back. */
  char *owned;
  size_t *original_starts, *original_ends;
} bp_spans;

/* Encodes `text` as bp_encode does into *out (which needs no
** initialization, and is to be freed with bp_spans_free even on failure).
** With `original_offsets` nonzero the map from NFC offsets back to the
** input is kept for bp_spans_original_start/end; without it, those return
** the offset unchanged, and text that NFC changes costs no map (which takes
** two offsets per byte of it). With `m` NULL the text is only normalized
** (and mapped): no tokens. */
int bp_encode_spans(const bp_model *m, const char *text, size_t len, int input,
                    int original_offsets, bp_sampler *sampler, const bp_interrupt *interrupt,
                    bp_spans *out, bp_error *err);
/* Where token i starts in out->text (where token i - 1 ends). */
size_t bp_spans_start(const bp_spans *s, size_t i);
/* True where s->text may be cut: between characters of BP_INPUT_TEXT, at
** any byte of BP_INPUT_BYTES, and at either end. */
int bp_spans_can_cut(const bp_spans *s, size_t offset);
/* The offset in the input where something starting (ending) at `offset`
** of s->text starts (ends). Where NFC changed a stretch of text, any offset
** inside it maps to the whole stretch. */
size_t bp_spans_original_start(const bp_spans *s, size_t offset);
size_t bp_spans_original_end(const bp_spans *s, size_t offset);
void bp_spans_free(bp_spans *s);

/* Calls found() for every occurrence of a vocabulary piece inside bytes:
** its start, end and id, by end position, longest first. */
int bp_pieces_inside(const bp_model *m, const uint8_t *bytes, size_t len,
                     void (*found)(void *context, size_t start, size_t end, uint32_t id),
                     void *context);

/* The text that is actually segmented: for BP_INPUT_TEXT the NFC form (a new
** buffer to free with bp_free, or NULL with *normalized_len == len when the
** text is already NFC). Lets callers relate token offsets to text. */
int bp_normalize(const char *text, size_t len, char **normalized, size_t *normalized_len,
                 bp_error *err);

/* ---- Training ------------------------------------------------------------
** The reference's BNLM training: count byte n-grams, segment every chunk with
** the n-gram model, count the pieces, prune them to a vocabulary.
**
**     bp_trainer *t;
**     bp_trainer_new(&options, &t, &err);
**     for each text: bp_trainer_add(t, text, len, BP_INPUT_TEXT, &err);
**     bp_trainer_finish(t, &model, &err);
**     bp_trainer_free(t);
**
** Texts are normalized to NFC (BP_INPUT_TEXT) and cut into chunks as the
** reference does; the trainer keeps each distinct chunk once, with the
** number of times it occurred, which is all the later passes need.
*/
typedef struct bp_train_options {
  int order;            /* n-gram order, 1..7 (6) */
  uint32_t vocab_size;  /* including the 3 reserved ids, >= 259 (10000) */
  int max_piece_length; /* bytes, 1..255 (36) */
  uint64_t min_count;   /* >= 1 (2) */
  int isolate_digits;   /* every decimal digit is a chunk of its own (0) */
  int ensure_unicode;   /* no multi-byte piece starts inside a character (1) */
  int threads;          /* worker threads, 1..64; the result is the same (1) */
  /* About how much memory training may use, in bytes (0: no limit). Beyond
  ** it, chunks and piece counts go to temporary files and n-grams are
  ** counted in several passes; the model is the same. */
  uint64_t max_memory;
  /* Called now and then with the phase and the share of it done; a nonzero
  ** return stops training with BP_INTERRUPT. May be NULL. */
  int (*progress)(void *context, const char *phase, double done);
  void *progress_context;
} bp_train_options;

/* The reference's defaults. */
void bp_train_options_init(bp_train_options *options);

typedef struct bp_trainer bp_trainer;
int bp_trainer_new(const bp_train_options *options, bp_trainer **out, bp_error *err);
/* Adds a text: BP_INPUT_TEXT (UTF-8, normalized to NFC, digits are Unicode
** decimal digits) or BP_INPUT_BYTES (raw bytes, digits are 0-9). */
int bp_trainer_add(bp_trainer *t, const char *text, size_t len, int input, bp_error *err);
/* The number of bytes of text added so far (after normalization). */
uint64_t bp_trainer_bytes(const bp_trainer *t);
/* Trains and builds the model. BP_INVALID when no text was added. */
int bp_trainer_finish(bp_trainer *t, bp_model **model, bp_error *err);
void bp_trainer_free(bp_trainer *t);
/* Reading texts on several threads at once: each thread adds texts to a
** reader of its own, then the trainer's thread absorbs the readers.
** bp_trainer_reader_new makes a reader of t (one of `readers`, which share
** t's max_memory): bp_trainer_add on it cuts and counts chunks as on t,
** and touches nothing t or other readers use. bp_trainer_absorb adds what
** the reader counted to t (t's max_memory holds, spilling as bp_trainer_add
** does) and frees the reader, also on failure. Which reader read which text
** does not change the model. */
int bp_trainer_reader_new(const bp_trainer *t, int readers, bp_trainer **reader, bp_error *err);
int bp_trainer_absorb(bp_trainer *t, bp_trainer *reader, bp_error *err);

/* ---- Training in rounds (train_rounds.c) ---------------------------------
** The same training as sums over shards of the texts, round by round, with
** a model byte-identical to bp_trainer_finish's over all texts for any
** split of them, any order and grouping of partials, any threads:
**
**     bp_train_start(&options, &state, &len, &err);       (the driver)
**     until bp_train_info(state).done:
**       on each shard: bp_trainer_from_state(state, len, &local, &t, &err);
**                      bp_trainer_add(t, ...) for each of its texts;
**                      bp_trainer_partial(t, &partial, &plen, &err);
**       anywhere:      bp_train_combiner_* adds partials into one partial;
**       the driver:    bp_train_merger_new(state, ...); _add(each partial);
**                      _finish: the next state
**     bp_train_state_model(state, ...): the model value
**
** Round 1 counts the 1- and 2-grams, round k (2 .. order - 1) the
** (k+1)-grams whose k-parts are frequent, the last round the pieces of the
** segmentation by the n-gram model: max(order, 2) rounds; merging the last
** one prunes the pieces, and its state holds the model.
** States and partials are BLOBs: "BPTR", a format version, kind, round,
** the rounds, the 16-byte digest of the state (a partial: of the state it
** counted a round of), the payload length, the zlib-compressed payload
** (varints, sorted keys delta-coded, pieces front-coded) and a CRC-32 of
** all of it. Functions reading one fail with BP_FORMAT and a message that
** starts with the problem ("is truncated or corrupt", "is from another
** state or round", ...), for the caller to prefix with what it was given.
** Every buffer returned is to free with bp_free.
*/
enum { BP_TRAIN_STATE = 1, BP_TRAIN_PARTIAL = 2 };
typedef struct bp_train_info_data {
  int kind;       /* BP_TRAIN_STATE or BP_TRAIN_PARTIAL */
  int round;      /* a state: the round its partials count (the last when
                     done); a partial: the round it counted, 0 for the
                     empty partial, which fits any state and round */
  int rounds;     /* of the whole training (0 for the empty partial) */
  int done;       /* a state holding the model */
  uint64_t bytes; /* text counted: a state's corpus (after round 1), a
                     partial's shard */
} bp_train_info_data;

/* The number of rounds training with these options takes. */
int bp_train_rounds(const bp_train_options *options);
/* The first state. Validates options as bp_trainer_new does; only the
** model-defining ones (order, vocab_size, max_piece_length, min_count,
** isolate_digits, ensure_unicode) go into the state. */
int bp_train_start(const bp_train_options *options, uint8_t **state, size_t *len,
                   bp_error *err);
/* Reads a state's or a partial's header and checks it whole. */
int bp_train_info(const uint8_t *blob, size_t len, bp_train_info_data *info, bp_error *err);
/* The partial of a shard with no text: fits any state and round. */
int bp_train_empty_partial(uint8_t **partial, size_t *len, bp_error *err);
/* A trainer that counts the state's next round over the texts added to it:
** the state's options with `local`'s threads, max_memory, progress and
** progress_context (local may be NULL: one thread, no limit). */
int bp_trainer_from_state(const uint8_t *state, size_t len, const bp_train_options *local,
                          bp_trainer **out, bp_error *err);
/* The round's counts over the texts added, as a partial. Once per trainer. */
int bp_trainer_partial(bp_trainer *t, uint8_t **partial, size_t *len, bp_error *err);

/* Adds partials of one state and round into one partial. `local` as for
** bp_trainer_from_state (its max_memory and progress apply): counts spill
** to temporary files beyond a third of max_memory. */
typedef struct bp_train_combiner bp_train_combiner;
int bp_train_combiner_new(const bp_train_options *local, bp_train_combiner **out,
                          bp_error *err);
int bp_train_combiner_add(bp_train_combiner *c, const uint8_t *partial, size_t len,
                          bp_error *err);
/* The sum; the empty partial when only empty ones (or none) were added. */
int bp_train_combiner_finish(bp_train_combiner *c, uint8_t **partial, size_t *len,
                             bp_error *err);
void bp_train_combiner_free(bp_train_combiner *c);

/* Adds a round's partials, one at a time, into the next state. `local` as
** for bp_trainer_from_state: counts spill to temporary files beyond a third
** of max_memory, and pruning uses the threads. Finishing is BP_INVALID when
** the partials did not count as many bytes of text as round 1's (a shard
** left out or added twice). */
typedef struct bp_train_merger bp_train_merger;
int bp_train_merger_new(const uint8_t *state, size_t len, const bp_train_options *local,
                        bp_train_merger **out, bp_error *err);
int bp_train_merger_add(bp_train_merger *m, const uint8_t *partial, size_t len, bp_error *err);
/* The next state; after the last round, *model (when model is not NULL)
** is the trained model, a reference to release. */
int bp_train_merger_finish(bp_train_merger *m, uint8_t **state, size_t *len, bp_model **model,
                           bp_error *err);
void bp_train_merger_free(bp_train_merger *m);

/* The model value (bp_model_serialize's bytes) of a done state; BP_INVALID
** "the state is not done (round r of R)" otherwise. */
int bp_train_state_model(const uint8_t *state, size_t len, uint8_t **value, size_t *value_len,
                         bp_error *err);

/* How shrinking runs: the fields of bp_train_options that apply to it (the
** pieces come from the model, the size is an argument). */
typedef struct bp_shrink_options {
  int threads; /* worker threads, 1..64; the result is the same (1) */
  /* Called now and then with the phase and the share of it done; a nonzero
  ** return stops shrinking with BP_INTERRUPT. May be NULL. */
  int (*progress)(void *context, const char *phase, double done);
  void *progress_context;
} bp_shrink_options;

/* One thread, no progress callback. */
void bp_shrink_options_init(bp_shrink_options *options);

/* A smaller vocabulary from a trained model, exactly as the reference
** derives each smaller size of a multi-size training from the larger
** result: keep the vocab_size - 3 most frequent pieces (single bytes
** always), re-split the rest into them, then drop pieces no split uses.
** A model already small enough is returned as it is (another reference).
** `options` may be NULL: bp_shrink_options_init's. Re-splitting runs on
** options->threads threads, and stops with BP_INTERRUPT when progress asks,
** as training does. */
int bp_model_shrink(const bp_model *m, uint32_t vocab_size, const bp_shrink_options *options,
                    bp_model **out, bp_error *err);

/* ---- Characters (chars.c) ------------------------------------------------
** What a full-text index makes of UTF-8 text, character by character. */
enum {
  BP_CHAR_SPACE,       /* white space, controls, format characters, unassigned */
  BP_CHAR_PUNCTUATION, /* punctuation (Unicode P*; ASCII: what is not a letter,
                          digit, _ or space) */
  BP_CHAR_WORD,        /* a letter or digit of a script that spaces its words */
  BP_CHAR_ALONE,       /* Han, kana, Hangul, Thai, ..., symbols, and bytes that
                        are not UTF-8: indexed one by one */
  BP_CHAR_MARK         /* internal: a combining mark, part of the character before */
};
/* The character at bytes[offset] (offset < len): returns its length in
** bytes, a code point and the combining marks after it (one byte that is not
** well-formed UTF-8 is a character of its own, *code_point -1), and sets
** *kind to BP_CHAR_SPACE, BP_CHAR_PUNCTUATION, BP_CHAR_WORD or BP_CHAR_ALONE. */
size_t bp_char_next(const char *bytes, size_t len, size_t offset, int32_t *code_point,
                    int *kind);
/* Writes bytes lower-cased code point by code point (utf8proc's simple
** mapping; bytes that are not UTF-8 are copied) to out, stopping before the
** first code point that would not fit in capacity. Returns the length written. */
size_t bp_text_fold(const char *bytes, size_t len, char *out, size_t capacity);

/* ---- Decoding ------------------------------------------------------------ */

/* The concatenated bytes of the pieces of `ids`; reserved ids 0..2 add
** nothing. An id outside the vocabulary is BP_INVALID naming the id. The
** result (to free with bp_free) is exact bytes and may be invalid UTF-8. */
int bp_decode(const bp_model *m, const int64_t *ids, size_t n, char **bytes, size_t *len,
              bp_error *err);

/* Drops every byte that is not part of a well-formed UTF-8 sequence, in
** place, as Python's bytes.decode('utf-8', 'ignore') does. Returns the new
** length. */
size_t bp_utf8_drop_invalid(char *bytes, size_t len);

/* Offset of the first byte that is not well-formed UTF-8, or len. */
size_t bp_utf8_invalid_offset(const char *bytes, size_t len);

/* The version of the Unicode library used for NFC (utf8proc). */
const char *bp_unicode_library_version(void);

/* ---- Memory -------------------------------------------------------------- */
void *bp_malloc(size_t n);
void *bp_realloc(void *p, size_t n);
void bp_free(void *p);

#endif /* BYTEPIECE_H */
