"""One input read once, from its first byte: a file, a pipe, ``/dev/stdin`` or ``<(...)``.

Detection looks at the first 64 KiB (`Source.head`) and the reader then goes on from the same
stream, so a pipe loses nothing (opening it a second time would start after the head). Bytes
are decoded per record: a line or record that is not valid UTF-8 is reported with its file and
line and the rest of the file is read (`decode_line`, `SURROGATE_ESCAPES`).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Iterator

from lingshu.data.report import DataError

HEAD_BYTES = 1 << 16

BOM = "\ufeff"

SURROGATE_ESCAPES = re.compile("[\udc80-\udcff]")
"""Characters that stand for undecodable bytes after ``decode("utf-8", "surrogateescape")``."""

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""Any lone surrogate: not valid Unicode, cannot be written as UTF-8 nor tokenized."""


class _Prefixed(io.RawIOBase):
    """A raw stream that yields `head` and then the rest of `f`."""

    def __init__(self, head: bytes, f: io.BufferedReader):
        self._head = memoryview(head)
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self._f.readinto(b)


class Source:
    """An input opened once; `head` for detection, then `lines()` or `read_text()` for the reader.

    Args:
        path: a file, or anything `open` reads (``/dev/stdin``, a named pipe).

    Raises:
        FileNotFoundError: the path does not exist.
        DataError: the path is a directory.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = str(path)
        if self.path.is_dir():
            raise DataError(f"{self.name}: is a directory, not a data file")
        self._f = open(self.path, "rb")
        self.head = self._f.read(HEAD_BYTES)
        self._taken = False

    def extend_head(self, limit: int = 1 << 26) -> None:
        """Read on until the head holds a complete first line (or `limit` bytes, or the end):
        for detection on JSON lines whose first record is longer than the head."""
        if self._taken:
            raise RuntimeError(f"{self.name} has already been read")
        while b"\n" not in self.head and len(self.head) < limit:
            more = self._f.read(HEAD_BYTES)
            if not more:
                break
            self.head += more

    @property
    def whole(self) -> bool:
        """True when `head` holds the whole input."""
        return len(self.head) < HEAD_BYTES or self._f.peek(1) == b""

    def head_text(self) -> str:
        """The head decoded (undecodable bytes as surrogate escapes), without a leading BOM."""
        t = self.head.decode("utf-8", errors="surrogateescape")
        return t[1:] if t.startswith(BOM) else t

    def _take(self) -> io.BufferedReader:
        if self._taken:
            raise RuntimeError(f"{self.name} has already been read")
        self._taken = True
        return io.BufferedReader(_Prefixed(self.head, self._f), buffer_size=1 << 20)

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """(1-based line number, raw line without its ``\\n`` / ``\\r\\n``), split at ``\\n`` only
        (JSON Lines); the leading BOM is removed from the first line."""
        f = self._take()
        try:
            for lineno, raw in enumerate(f, 1):
                if raw.endswith(b"\n"):
                    raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                yield lineno, raw
        finally:
            self.close()

    def text_lines(self) -> Iterator[tuple[int, str | None, str]]:
        """Text lines for the line formats (plain text, CoNLL): (line number, text, "") split at
        ``\\n``, ``\\r\\n`` and a lone ``\\r``; (line number, None, why) for a line that is
        not valid UTF-8."""
        lineno = 0
        for _, raw in self.lines():
            for part in raw.split(b"\r") if b"\r" in raw else (raw,):
                lineno += 1
                line, why = decode_line(part)
                yield lineno, line, why

    def read_text(self) -> str:
        """The whole input decoded; undecodable bytes become `SURROGATE_ESCAPES` characters, which
        the JSON list reader reports per record."""
        f = self._take()
        try:
            t = f.read().decode("utf-8", errors="surrogateescape")
        finally:
            self.close()
        return t[1:] if t.startswith(BOM) else t

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_line(raw: bytes) -> tuple[str | None, str]:
    """A line's text, or (None, why) when it is not valid UTF-8 (naming the character column)."""
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError as e:
        col = len(raw[: e.start].decode("utf-8", errors="replace")) + 1
        return None, f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at column {col}); the record is skipped"


def encoding_problem(s: str, start: int = 0, end: int | None = None) -> int:
    """Index of the first undecodable byte's escape in ``s[start:end]``, or -1."""
    m = SURROGATE_ESCAPES.search(s, start, len(s) if end is None else end)
    return m.start() if m else -1
