/*
** spans.c: encoding with each token's place in the text (bp_encode_spans).
**
** The text is normalized here rather than inside bp_encode, so that the
** caller gets the NFC text the offsets refer to and, when asked, the map
** from those offsets back to the input (normalize.c builds it while
** normalizing). The NFC text is then encoded as bytes, which gives exactly
** bp_encode's tokens, and each token's end is the running sum of its
** pieces' lengths.
*/
#include "internal.h"

#include <string.h>

int bp_encode_spans(const bp_model *m, const char *text, size_t len, int input,
                    int original_offsets, bp_sampler *sampler, const bp_interrupt *interrupt,
                    bp_spans *out, bp_error *err) {
  memset(out, 0, sizeof *out);
  out->text = text;
  out->length = len;
  out->is_text = input == BP_INPUT_TEXT;
  int rc = BP_OK;
  if (out->is_text && original_offsets) {
    rc = bp_nfc_mapped(text, len, out, err);
  } else if (out->is_text) {
    rc = bp_normalize(text, len, &out->owned, &out->length, err);
    if (out->owned) out->text = out->owned;
  }
  if (rc == BP_OK && m)
    rc = bp_encode(m, out->text, out->length, BP_INPUT_BYTES, sampler, interrupt, &out->ids,
                   err);
  if (rc != BP_OK) return rc;
  out->ends = bp_malloc((out->ids.count + 1) * sizeof *out->ends);
  if (!out->ends) return bp_fail_nomem(err);
  size_t end = 0;
  for (size_t i = 0; i < out->ids.count; i++) {
    uint32_t length;
    bp_model_piece(m, (uint32_t)out->ids.ids[i], &length);
    end += length;
    out->ends[i] = end;
  }
  return BP_OK;
}

size_t bp_spans_start(const bp_spans *s, size_t i) { return i ? s->ends[i - 1] : 0; }

int bp_spans_can_cut(const bp_spans *s, size_t offset) {
  return !s->is_text || offset >= s->length || ((uint8_t)s->text[offset] & 0xC0) != 0x80;
}

size_t bp_spans_original_start(const bp_spans *s, size_t offset) {
  if (!s->original_starts) return offset;
  /* The end of the text is where its last byte's stretch ends. */
  return offset < s->length ? s->original_starts[offset] : s->original_ends[s->length - 1];
}

size_t bp_spans_original_end(const bp_spans *s, size_t offset) {
  return s->original_ends && offset > 0 ? s->original_ends[offset - 1] : offset;
}

void bp_spans_free(bp_spans *s) {
  bp_free(s->owned);
  bp_free(s->original_starts);
  bp_free(s->original_ends);
  bp_ids_free(&s->ids);
  bp_free(s->ends);
  memset(s, 0, sizeof *s);
}
