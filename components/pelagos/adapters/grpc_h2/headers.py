"""HPACK decoding (RFC 7541) of request header blocks, on the `hpack` library's
header table and Huffman codec.

Why not `hpack.Decoder.decode`: a pymilvus call sends ~12 fields, and the
library's generic loop (memoryview slices, tuple subclasses, per-field
logging calls) took ~90 us of the server's ~600 us per search; this loop
takes ~10 us. Blocks are never byte-identical between calls (pymilvus sends
`client-request-unixmsec`), so caching whole blocks does not help; decoded
text is cached per distinct byte string instead, and the run of one-byte
indexed fields a block starts with (8 of a pymilvus call's 12 fields:
`bec48386c3c2c1bf`) is decoded once per state of the dynamic table.

Invariants:
- the dynamic table is the library's HeaderTable, updated exactly as the
  RFC says (incremental-indexing literals add, size updates resize), so it
  always mirrors the peer's encoder;
- a size update above `max_table_size` (what we advertised), one after the
  first field, a truncated field, a bad index or bad Huffman code, and a
  decoded list over `max_list_size` are HPACKDecodingError; the connection
  must end (its HPACK state is unknown);
- names and values are str (UTF-8; invalid bytes are an error);
- a remembered run of indexed fields is forgotten whenever the dynamic table
  changes (an entry added, a size update), so it always decodes as the
  table says now.
"""

from __future__ import annotations

from hpack import HPACKDecodingError
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

Headers = list[tuple[str, str]]

#: distinct texts remembered (names and repeated values); the map is emptied when full
MAX_TEXTS = 4096
#: distinct runs of leading indexed fields remembered; the map is emptied when full
MAX_RUNS = 256


class HeaderDecoder:
    def __init__(self, max_table_size: int = 4096, max_list_size: int = 1 << 16) -> None:
        self._table = HeaderTable()
        self._table.maxsize = max_table_size
        self.max_table_size = max_table_size
        self.max_list_size = max_list_size
        self._texts: dict[bytes, str] = {}
        self._runs: dict[bytes, tuple[Headers, int]] = {}

    def decode(self, block: bytes) -> Headers:
        n = len(block)
        run = 0  # the leading one-byte indexed fields (index < 127)
        while run < n and block[run] & 0x80 and block[run] != 0xFF:
            run += 1
        if not run:
            return self._decode(block, 0, [], 0)
        key = block[:run]
        known = self._runs.get(key)
        if known is None:
            fields = self._decode(key, 0, [], 0)
            known = fields, sum(len(name) + len(value) + 32 for name, value in fields)
            if len(self._runs) >= MAX_RUNS:
                self._runs.clear()
            self._runs[key] = known
        fields, size = known
        if size > self.max_list_size:
            raise HPACKDecodingError(f"a header list over {self.max_list_size} bytes")
        return self._decode(block, run, list(fields), size) if run < n else list(fields)

    def _decode(self, block: bytes, i: int, out: Headers, size: int) -> Headers:
        """Decode the fields of block[i:] onto `out` (whose fields count `size` bytes)."""
        table = self._table
        n = len(block)
        while i < n:
            b = block[i]
            if b & 0x80:  # indexed field
                index, i = _integer(block, i, 7)
                if index == 0:
                    raise HPACKDecodingError("HPACK index 0")
                name_b, value_b = self._entry(index)
                name, value = self._text(name_b), self._text(value_b)
            elif b & 0x40 or not b & 0x20:  # a literal, indexed or not
                add = bool(b & 0x40)
                index, i = _integer(block, i, 6 if add else 4)
                if index:
                    name_b = self._entry(index)[0]
                else:
                    name_b, i = _string(block, i)
                value_b, i = _string(block, i)
                if add:
                    table.add(name_b, value_b)
                    self._runs.clear()
                name, value = self._text(name_b), self._text(value_b)
            else:  # dynamic table size update
                if out:
                    raise HPACKDecodingError("a table size update after the first field")
                new_size, i = _integer(block, i, 5)
                if new_size > self.max_table_size:
                    raise HPACKDecodingError(
                        f"table size {new_size} above the advertised {self.max_table_size}"
                    )
                table.maxsize = new_size
                self._runs.clear()
                continue
            size += len(name) + len(value) + 32
            if size > self.max_list_size:
                raise HPACKDecodingError(f"a header list over {self.max_list_size} bytes")
            out.append((name, value))
        return out

    def _entry(self, index: int) -> tuple[bytes, bytes]:
        try:
            entry: tuple[bytes, bytes] = self._table.get_by_index(index)
        except Exception as exc:  # hpack's InvalidTableIndex
            raise HPACKDecodingError(f"HPACK index {index} is not in the table") from exc
        return entry

    def _text(self, raw: bytes) -> str:
        text = self._texts.get(raw)
        if text is None:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise HPACKDecodingError("a header is not UTF-8") from exc
            if len(self._texts) >= MAX_TEXTS:
                self._texts.clear()
            self._texts[raw] = text
        return text


def _integer(data: bytes, i: int, prefix_bits: int) -> tuple[int, int]:
    """An HPACK integer at data[i] with a prefix of `prefix_bits`; (value, next offset)."""
    if i >= len(data):
        raise HPACKDecodingError("truncated header block")
    mask = (1 << prefix_bits) - 1
    value = data[i] & mask
    i += 1
    if value < mask:
        return value, i
    shift = 0
    while True:
        if i >= len(data) or shift > 28:
            raise HPACKDecodingError("truncated or oversized HPACK integer")
        b = data[i]
        i += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _string(data: bytes, i: int) -> tuple[bytes, int]:
    if i >= len(data):
        raise HPACKDecodingError("truncated header block")
    huffman = data[i] & 0x80
    length, i = _integer(data, i, 7)
    end = i + length
    if end > len(data):
        raise HPACKDecodingError("truncated header block")
    raw = data[i:end]
    return (bytes(decode_huffman(raw)) if huffman else raw), end
