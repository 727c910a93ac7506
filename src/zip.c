/*
** zip.c: extracts the model member of a zip archive, as the published
** BytePiece models are distributed (one .model member, deflated).
**
** Reads the central directory, picks the member, and inflates it with zlib,
** checking its size and CRC-32. Members beyond 1 GiB, zip64 archives and
** methods other than stored and deflate are refused.
*/
#include "internal.h"

#include <string.h>
#include <zlib.h>

#define MAX_MEMBER_BYTES ((uint64_t)1 << 30)

static voidpf zlib_alloc(voidpf opaque, uInt items, uInt size) {
  (void)opaque;
  return bp_malloc((size_t)items * size);
}
static void zlib_free(voidpf opaque, voidpf p) {
  (void)opaque;
  bp_free(p);
}

static bool ends_with(const uint8_t *name, size_t len, const char *suffix) {
  size_t n = strlen(suffix);
  return len >= n && memcmp(name + len - n, suffix, n) == 0;
}

/* The central directory: where it starts, how long it is, how many entries. */
static int find_directory(const char *path, const uint8_t *data, size_t len,
                          const uint8_t **directory, size_t *size, uint32_t *entries,
                          bp_error *err) {
  /* The end-of-central-directory record is within the last 64 KiB + 22. */
  const uint8_t *eocd = NULL;
  if (len >= 22) {
    size_t lowest = len > 65535 + 22 ? len - 65535 - 22 : 0;
    for (size_t i = len - 22 + 1; i-- > lowest;)
      if (bp_get_u32(data + i) == 0x06054b50) {
        eocd = data + i;
        break;
      }
  }
  if (!eocd) return bp_fail(err, BP_FORMAT, "%s: zip archive has no central directory", path);
  *entries = bp_get_u16(eocd + 10);
  uint32_t directory_size = bp_get_u32(eocd + 12), directory_offset = bp_get_u32(eocd + 16);
  if (directory_offset == 0xFFFFFFFF || *entries == 0xFFFF)
    return bp_fail(err, BP_FORMAT, "%s: zip64 archives are not supported", path);
  if ((uint64_t)directory_offset + directory_size > (uint64_t)(eocd - data))
    return bp_fail(err, BP_FORMAT, "%s: zip central directory is out of bounds", path);
  *directory = data + directory_offset;
  *size = directory_size;
  return BP_OK;
}

/* The directory entry of the .model member, or of the only member. */
static int choose_member(const char *path, const uint8_t *directory, size_t size,
                         uint32_t entries, const uint8_t **chosen, bp_error *err) {
  uint32_t model_members = 0, file_members = 0;
  const uint8_t *only = NULL, *p = directory, *end = directory + size;
  *chosen = NULL;
  for (uint32_t e = 0; e < entries; e++) {
    if (end - p < 46 || bp_get_u32(p) != 0x02014b50)
      return bp_fail(err, BP_FORMAT, "%s: zip central directory is corrupt", path);
    uint32_t name_len = bp_get_u16(p + 28);
    size_t entry_len = 46 + (size_t)name_len + bp_get_u16(p + 30) + bp_get_u16(p + 32);
    if ((size_t)(end - p) < entry_len)
      return bp_fail(err, BP_FORMAT, "%s: zip central directory is corrupt", path);
    const uint8_t *name = p + 46;
    if (!ends_with(name, name_len, "/")) {
      file_members++;
      only = p;
      if (ends_with(name, name_len, ".model")) {
        model_members++;
        *chosen = p;
      }
    }
    p += entry_len;
  }
  if (model_members > 1)
    return bp_fail(err, BP_FORMAT, "%s: zip archive holds %u .model members; expected one",
                   path, model_members);
  if (!*chosen && file_members == 1) *chosen = only;
  if (!*chosen) return bp_fail(err, BP_FORMAT, "%s: zip archive holds no .model member", path);
  return BP_OK;
}

/* Inflates `packed` bytes of raw deflate into exactly `size` bytes at out. */
static int inflate_exactly(const char *path, const uint8_t *packed_data, uint64_t packed,
                           char *out, uint64_t size, bp_error *err) {
  z_stream z;
  memset(&z, 0, sizeof z);
  z.zalloc = zlib_alloc;
  z.zfree = zlib_free;
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return bp_fail_nomem(err);
  z.next_in = (Bytef *)packed_data;
  z.avail_in = (uInt)packed;
  z.next_out = (Bytef *)out;
  z.avail_out = (uInt)size;
  int zrc = inflate(&z, Z_FINISH);
  uint64_t produced = z.total_out;
  inflateEnd(&z);
  if (zrc == Z_MEM_ERROR) return bp_fail_nomem(err);
  /* Z_BUF_ERROR with no room left means the member is larger than its
  ** directory entry says: a corrupt entry or a zip bomb. */
  if (zrc != Z_STREAM_END || produced != size)
    return bp_fail(err, BP_FORMAT, "%s: zip member does not inflate to its stated size", path);
  return BP_OK;
}

int bp_zip_extract_model(const char *path, const uint8_t *data, size_t len, char **member,
                         size_t *member_len, bp_error *err) {
  *member = NULL;
  *member_len = 0;
  if (len < 4 || memcmp(data, "PK\x03\x04", 4) != 0) return BP_OK;
  const uint8_t *directory = NULL, *chosen = NULL;
  size_t directory_size = 0;
  uint32_t entries = 0;
  int rc = find_directory(path, data, len, &directory, &directory_size, &entries, err);
  if (rc == BP_OK) rc = choose_member(path, directory, directory_size, entries, &chosen, err);
  if (rc != BP_OK) return rc;
  if (!chosen) return bp_fail(err, BP_FORMAT, "%s: zip archive holds no .model member", path);
  uint32_t method = bp_get_u16(chosen + 10), crc = bp_get_u32(chosen + 16);
  uint64_t packed = bp_get_u32(chosen + 20), size = bp_get_u32(chosen + 24);
  uint64_t local = bp_get_u32(chosen + 42);
  if (packed == 0xFFFFFFFF || size == 0xFFFFFFFF || local == 0xFFFFFFFF)
    return bp_fail(err, BP_FORMAT, "%s: zip64 archives are not supported", path);
  if (size > MAX_MEMBER_BYTES)
    return bp_fail(err, BP_TOOBIG, "%s: zip member is larger than 1 GiB", path);
  if (local + 30 > len || bp_get_u32(data + local) != 0x04034b50)
    return bp_fail(err, BP_FORMAT, "%s: zip member header is corrupt", path);
  uint64_t start = local + 30 + bp_get_u16(data + local + 26) + bp_get_u16(data + local + 28);
  if (start > len || packed > len - start)
    return bp_fail(err, BP_FORMAT, "%s: zip member is truncated", path);
  if (method != 0 && method != 8)
    return bp_fail(err, BP_FORMAT,
                   "%s: zip compression method %u is not supported (only "
                   "stored and deflate)",
                   path, method);
  if (method == 0 && packed != size)
    return bp_fail(err, BP_FORMAT, "%s: zip member sizes disagree", path);
  char *out = bp_malloc((size_t)size + 1);
  if (!out) return bp_fail_nomem(err);
  if (method == 0)
    memcpy(out, data + start, (size_t)size);
  else
    rc = inflate_exactly(path, data + start, packed, out, size, err);
  if (rc == BP_OK && crc32(0L, (const Bytef *)out, (uInt)size) != crc)
    rc = bp_fail(err, BP_FORMAT, "%s: zip member fails its CRC check", path);
  if (rc != BP_OK) {
    bp_free(out);
    return rc;
  }
  out[size] = 0;
  *member = out;
  *member_len = (size_t)size;
  return BP_OK;
}
