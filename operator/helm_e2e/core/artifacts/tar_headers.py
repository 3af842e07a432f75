"""Tar headers checked before `tarfile` reads them (pure: decompressed bytes in, a refusal reason out).

Python's tarfile reads a PAX extended header ('x', 'g', 'X') or a GNU long name/link ('L', 'K') whole into
memory and follows a chain of them recursively: a 45 KiB gzip upload holding one 50 MiB PAX header peaked
at 135 MiB. `HeaderScan` is fed every decompressed byte before tarfile reads it, walks the stream header by
header as tarfile does (`TarInfo.frombuf` parses each 512-byte block; data follows a regular or unknown
entry and an extended header, nothing else), and refuses:

- an entry's extended headers of more than MAX_EXTENDED_BYTES together, or more than MAX_CHAIN of them;
- more than `max_extended_total` extended-header bytes in the bundle, or more than `max_entries` entries;
- a negative size, a corrupt header block, sparse files (GNU 'S' and PAX GNU.sparse.*) and a PAX `size`
  keyword: each moves where tarfile finds the next header (or makes it read a sparse map of any length), and
  no artifact bundle needs one (the octal size field holds 8 GiB).
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass, field

BLOCK = tarfile.BLOCKSIZE
MAX_EXTENDED_BYTES = 8192  # a 255-byte name's PAX record is ~300 bytes; GNU tar adds times and xattrs
MAX_CHAIN = 4  # extended headers before one entry: GNU long name + long link, or PAX ('g' and 'x')
PAX_TYPES = frozenset({tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE})
EXTENDED_TYPES = PAX_TYPES | {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
# a record is "<length> <keyword>=<value>\n": these match any record tarfile would read as size or sparse
_MOVES_OFFSETS = re.compile(rb"\d size=|GNU\.sparse")


def padded(size: int) -> int:
    """Bytes a header's data occupies: whole 512-byte blocks."""
    return -(-size // BLOCK) * BLOCK


@dataclass
class HeaderScan:
    """Feed it the decompressed bundle in order; a non-empty answer is why it is refused."""

    max_entries: int
    max_extended_total: int
    done: bool = field(default=False, init=False)  # the end-of-archive block was seen: tarfile stops there
    _want: int = field(default=BLOCK, init=False)  # what is being assembled: a header block or a PAX payload
    _held: bytearray = field(default_factory=bytearray, init=False)
    _in_pax: bool = field(default=False, init=False)
    _skip: int = field(default=0, init=False)  # data bytes to pass unread
    _chain: int = field(default=0, init=False)  # extended headers since the last entry, and their bytes
    _chain_bytes: int = field(default=0, init=False)
    _entries: int = field(default=0, init=False)
    _extended_total: int = field(default=0, init=False)

    def feed(self, data: bytes) -> str:
        pos = 0
        while pos < len(data) and not self.done:
            if self._skip:
                step = min(self._skip, len(data) - pos)
                self._skip, pos = self._skip - step, pos + step
                continue
            take = data[pos : pos + self._want - len(self._held)]
            self._held += take
            pos += len(take)
            if len(self._held) == self._want and (why := self._complete()):
                return why
        return ""

    def _complete(self) -> str:
        chunk, self._held = bytes(self._held), bytearray()
        if self._in_pax:
            self._in_pax, self._want = False, BLOCK
            return check_pax_payload(chunk)
        return self._header(chunk)

    def _header(self, block: bytes) -> str:
        if not block.strip(b"\0"):  # the end-of-archive block: tarfile stops at it
            self.done = True
            return ""
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except (tarfile.HeaderError, ValueError):
            return "the bundle is not a valid tar (a corrupt header block)"
        if info.size < 0:
            return "the bundle is not a valid tar (a header declares a negative size)"
        if info.type == tarfile.GNUTYPE_SPARSE:
            return "the bundle holds a sparse file"
        if info.type in EXTENDED_TYPES:
            return self._extended(info)
        self._chain = self._chain_bytes = 0
        self._entries += 1
        if self._entries > self.max_entries:
            return f"the bundle holds more than {self.max_entries} entries (files and directories)"
        if info.isreg() or info.type not in tarfile.SUPPORTED_TYPES:  # as tarfile's _proc_builtin
            self._skip = padded(info.size)
        return ""

    def _extended(self, info: tarfile.TarInfo) -> str:
        self._chain += 1
        self._chain_bytes += info.size
        self._extended_total += info.size
        if self._chain_bytes > MAX_EXTENDED_BYTES:
            return f"a tar header (PAX or GNU long name) is larger than {MAX_EXTENDED_BYTES} bytes"
        if self._chain > MAX_CHAIN:
            return f"a tar entry has more than {MAX_CHAIN} extended headers (PAX or GNU long name)"
        if self._extended_total > self.max_extended_total:
            return f"the bundle's tar headers (PAX or GNU long names) exceed {self.max_extended_total} bytes"
        if info.type in PAX_TYPES and info.size:
            self._in_pax, self._want = True, padded(info.size)  # tarfile parses the padding too
        else:
            self._skip = padded(info.size)
        return ""


def check_pax_payload(payload: bytes) -> str:
    if _MOVES_OFFSETS.search(payload):
        return "a PAX header sets a size or a sparse map (an artifact bundle never needs one)"
    return ""


def scan_for(max_files: int) -> HeaderScan:
    """The scan of an upload of at most `max_files` files: as many directories again, and 1 KiB of extended
    headers per entry (what artifacts.inflated_bound allows for headers)."""
    return HeaderScan(max_entries=2 * max_files, max_extended_total=1024 * (2 * max_files + 2))
