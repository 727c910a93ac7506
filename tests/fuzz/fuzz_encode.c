/*
** fuzz_encode.c: libFuzzer target for encoding arbitrary bytes with a real
** model (BP_FUZZ_MODEL, default tests/data/small.model). The first input byte
** picks the mode: bit 0 text or raw bytes, bit 1 Viterbi or sampling (alpha
** from bits 2-4), bits 5-7 the segmentation stride. Properties: the ids
** decode to the input (its NFC form for text), bp_count agrees with
** bp_encode, a small stride gives the same ids as the default one, and
** invalid UTF-8 is refused as text only.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_model_file.h"
#include "internal.h"

static bp_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  model = fuzz_load_model();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  int input = data[0] & 1 ? BP_INPUT_BYTES : BP_INPUT_TEXT;
  bp_sampler sampler, replay, spans_replay;
  bp_sampler *sampling = NULL;
  if (data[0] & 2) {
    bp_sampler_init(&sampler, (double)((data[0] >> 2) & 7) * 0.25, size);
    replay = spans_replay = sampler;
    sampling = &sampler;
  }
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  bp_error err;
  bp_ids ids = {0};
  int rc = bp_encode(model, text, len, input, sampling, NULL, &ids, &err);
  if (rc == BP_INVALID && input == BP_INPUT_TEXT && bp_utf8_invalid_offset(text, len) < len) {
    bp_ids_free(&ids);
    return 0;
  }
  if (rc != BP_OK) abort();
  static const size_t strides[8] = {1u << 20, 1, 2, 3, 7, 36, 255, 1000};
  bp_segment_stride = strides[data[0] >> 5];
  bp_sampler strided_sampler;
  bp_sampler_init(&strided_sampler, sampling ? sampler.alpha : 0, size);
  bp_ids strided = {0};
  if (bp_encode(model, text, len, input, sampling ? &strided_sampler : NULL, NULL, &strided,
                &err) != BP_OK ||
      strided.count != ids.count ||
      (ids.count && memcmp(strided.ids, ids.ids, ids.count * sizeof *ids.ids) != 0))
    abort();
  bp_segment_stride = 1u << 20;
  bp_ids_free(&strided);
  size_t count;
  if (bp_count(model, text, len, input, sampling ? &replay : NULL, NULL, &count, &err) !=
          BP_OK ||
      count != ids.count)
    abort();
  int64_t *wide = malloc((ids.count + 1) * sizeof *wide);
  for (size_t i = 0; i < ids.count; i++) wide[i] = ids.ids[i];
  char *decoded, *normalized = NULL;
  size_t decoded_len, normalized_len = len;
  if (bp_decode(model, wide, ids.count, &decoded, &decoded_len, &err) != BP_OK) abort();
  if (input == BP_INPUT_TEXT &&
      bp_normalize(text, len, &normalized, &normalized_len, &err) != BP_OK)
    abort();
  const char *expected = normalized ? normalized : text;
  if (decoded_len != normalized_len || memcmp(decoded, expected, decoded_len) != 0) abort();
  /* With spans: the same tokens over the same NFC text, and the map back to
  ** the input never goes backwards and covers it. */
  bp_spans spans;
  int original_offsets = (int)(size & 1);
  if (bp_encode_spans(model, text, len, input, original_offsets,
                      sampling ? &spans_replay : NULL, NULL, &spans, &err) != BP_OK ||
      spans.length != normalized_len || memcmp(spans.text, expected, normalized_len) != 0 ||
      spans.ids.count != ids.count ||
      (ids.count && memcmp(spans.ids.ids, ids.ids, ids.count * sizeof *ids.ids) != 0) ||
      (ids.count && spans.ends[ids.count - 1] != normalized_len))
    abort();
  /* Offsets are in the input when asked for, else in the NFC text, which
  ** can be longer than the input (U+FB43 becomes two code points). */
  size_t mapped_len = original_offsets ? len : spans.length;
  size_t previous = 0;
  for (size_t i = 0; i < spans.ids.count; i++) {
    size_t start = bp_spans_original_start(&spans, bp_spans_start(&spans, i));
    size_t end = bp_spans_original_end(&spans, spans.ends[i]);
    if (start < previous || end < start || end > mapped_len) abort();
    previous = start;
  }
  if (bp_spans_original_start(&spans, spans.length) != mapped_len) abort();
  bp_spans_free(&spans);
  bp_free(decoded);
  bp_free(normalized);
  free(wide);
  bp_ids_free(&ids);
  return 0;
}
