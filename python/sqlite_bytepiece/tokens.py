"""sqlite_bytepiece.tokens: reads the token files bp_export writes.

    from sqlite_bytepiece import tokens
    t = tokens.open("/data/train")          # train.bin and train.idx
    t.ids                                   # numpy memmap of every id
    t.offsets                               # numpy memmap, documents + 1 of them
    len(t), t[5], list(t)[:3]               # documents as arrays of ids
    t.dtype, t.vocab_size, t.digest, t.eos  # from the .idx header

Both layouts bp_export writes are read: its own (format "bytepiece", the
.idx described in the README's "Token files") and Megatron-LM's ("megatron":
"MMIDIDX" header, int32 lengths, int64 byte pointers, int64 document
indices; the .idx has no vocabulary size or digest, so those are None).
Ids are a memory map of the .bin; offsets a memory map of the .idx (for
Megatron's layout they are summed from its lengths, 8 bytes a document in
memory). Needs numpy.
"""
import builtins
import os
import struct

import numpy

__all__ = ["open", "TokenFiles"]

_MAGIC = b"BPTOKENS"
_HEADER = struct.Struct("<8sIIII32sQQ")  # 72 bytes
_DTYPES = {0: "<i4", 1: "<u4", 2: "<u2"}
_DTYPE_NAMES = {0: "int32", 1: "uint32", 2: "uint16"}
_MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
_MEGATRON_HEADER = struct.Struct("<9sQBQQ")  # 34 bytes
_MEGATRON_DTYPES = {4: "<i4", 8: "<u2"}


class TokenFiles:
    """A pair of token files: ids (the .bin) and document offsets (the .idx)."""

    def __init__(self, prefix):
        self.prefix = os.fspath(prefix)
        index_path, bin_path = self.prefix + ".idx", self.prefix + ".bin"
        with builtins.open(index_path, "rb") as f:
            head = f.read(_HEADER.size)
        if head.startswith(_MAGIC):
            self._read_bytepiece(index_path, head)
        elif head.startswith(_MEGATRON_MAGIC):
            self._read_megatron(index_path, head)
        else:
            raise ValueError(f"{index_path}: not a token index written by bp_export")
        itemsize = numpy.dtype(self._numpy_dtype).itemsize
        expected = self.tokens * itemsize
        actual = os.path.getsize(bin_path)
        if actual != expected:
            raise ValueError(
                f"{bin_path}: {actual} bytes, but its index says {self.tokens} tokens "
                f"of {itemsize} bytes ({expected} bytes)"
            )
        # numpy cannot map an empty file.
        if self.tokens:
            self.ids = numpy.memmap(bin_path, dtype=self._numpy_dtype, mode="r")
        else:
            self.ids = numpy.zeros(0, dtype=self._numpy_dtype)
        if self.offsets[-1] != self.tokens:
            raise ValueError(f"{index_path}: the last offset is not the token count")

    def _read_bytepiece(self, path, head):
        if len(head) < _HEADER.size:
            raise ValueError(f"{path}: truncated header")
        (_, version, dtype, vocab_size, flags, digest, documents,
         tokens) = _HEADER.unpack(head)
        if version != 1 or dtype not in _DTYPES:
            raise ValueError(f"{path}: version {version}, dtype {dtype} not known")
        self.format = "bytepiece"
        self.dtype = _DTYPE_NAMES[dtype]
        self._numpy_dtype = _DTYPES[dtype]
        self.vocab_size = vocab_size
        self.bos = bool(flags & 1)
        self.eos = bool(flags & 2)
        self.digest = digest.hex()
        self.documents = documents
        self.tokens = tokens
        self.offsets = numpy.memmap(path, dtype="<u8", mode="r", offset=_HEADER.size,
                                    shape=(documents + 1,))

    def _read_megatron(self, path, head):
        if len(head) < _MEGATRON_HEADER.size:
            raise ValueError(f"{path}: truncated header")
        _, version, code, sequences, document_indices = _MEGATRON_HEADER.unpack(
            head[:_MEGATRON_HEADER.size])
        if version != 1 or code not in _MEGATRON_DTYPES:
            raise ValueError(f"{path}: version {version}, dtype code {code} not read here")
        self.format = "megatron"
        self._numpy_dtype = _MEGATRON_DTYPES[code]
        self.dtype = "int32" if code == 4 else "uint16"
        self.vocab_size = self.digest = self.bos = self.eos = None
        start = _MEGATRON_HEADER.size
        lengths = numpy.memmap(path, dtype="<i4", mode="r", offset=start, shape=(sequences,)) \
            if sequences else numpy.zeros(0, "<i4")
        start += 4 * sequences
        self.sequence_pointers = numpy.memmap(
            path, dtype="<i8", mode="r", offset=start, shape=(sequences,)) \
            if sequences else numpy.zeros(0, "<i8")
        start += 8 * sequences
        self.document_indices = numpy.memmap(
            path, dtype="<i8", mode="r", offset=start, shape=(document_indices,))
        self.sequence_lengths = lengths
        # bp_export writes one sequence per document.
        self.documents = document_indices - 1
        offsets = numpy.zeros(sequences + 1, dtype="<u8")
        numpy.cumsum(lengths, out=offsets[1:])
        self.offsets = offsets[self.document_indices]
        self.tokens = int(offsets[-1])

    def __len__(self):
        return self.documents

    def __getitem__(self, document):
        """The ids of one document (a view into the memory map)."""
        if document < 0:
            document += self.documents
        if not 0 <= document < self.documents:
            raise IndexError("document index out of range")
        return self.ids[int(self.offsets[document]):int(self.offsets[document + 1])]

    def __iter__(self):
        for d in range(self.documents):
            yield self[d]

    def __repr__(self):
        return (f"TokenFiles({self.prefix!r}, format={self.format!r}, dtype={self.dtype!r}, "
                f"documents={self.documents}, tokens={self.tokens})")


def open(prefix):  # noqa: A001 - the module's reader, as io.open is
    """Opens PREFIX.bin and PREFIX.idx as bp_export wrote them."""
    return TokenFiles(prefix)
