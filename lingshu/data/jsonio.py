"""Walk JSON record files with line numbers: JSON lines and one JSON list of records.

Both walkers start a record in the `Checker` (``ck.begin(line)``) before yielding it, so the
caller reports problems against the record's line; broken JSON is reported and skipped here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from lingshu.data.validate import Checker

_WS = re.compile(r"\s*")
_DECODER = json.JSONDecoder()

LAYOUT = "lingshu.layout"
"""`Document.meta` key under which readers remember a file's layout for the writer; writers
never write it out as a field."""


def read_text(path: Path) -> str:
    # utf-8-sig: files saved by Windows tools start with a BOM that is not part of any text.
    return path.read_text(encoding="utf-8-sig")


def first_char(path: Path) -> str:
    """The first non-blank character of a file ("" for an empty file)."""
    with open(path, encoding="utf-8-sig") as f:
        while True:
            chunk = f.read(4096)
            if not chunk:
                return ""
            s = chunk.lstrip()
            if s:
                return s[0]


def json_lines(path: Path, ck: Checker) -> Iterator[Any]:
    """Yield the parsed object of each non-blank line, its record begun in `ck`."""
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            ck.begin(lineno)
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                ck.error("", "bad_json", f"invalid JSON: {e.msg} (column {e.colno})")
                ck.finish(None, [])
                continue
            yield obj


def json_list(path: Path, ck: Checker, record_keys: tuple[str, ...] = ("text",)) -> Iterator[Any]:
    """Yield the elements of one JSON list, each begun in `ck` at the line where it starts.

    The list is walked element by element with `json.JSONDecoder.raw_decode`, which gives each
    record's position; newlines are counted incrementally between records, so line numbers
    cost one pass over the text (a 10 MB file reads in well under a second). A record with
    broken JSON is skipped by scanning for the next ``{`` that decodes to an object holding one
    of `record_keys` (so an inner object of the broken record is not taken for a record).
    """
    s = read_text(path)
    pos = _WS.match(s, 0).end()
    line = 1 + s.count("\n", 0, pos)
    if pos >= len(s) or s[pos] != "[":
        ck.begin(line)
        ck.error("", "bad_json", "expected a JSON list of records ([ ... ])")
        ck.finish(None, [])
        return
    pos = _WS.match(s, pos + 1).end()
    if s.startswith("]", pos):
        return
    last = 0  # newlines are counted from here
    line = 1
    while pos < len(s):
        line += s.count("\n", last, pos)
        last = pos
        ck.begin(line)
        try:
            obj, end = _DECODER.raw_decode(s, pos)
        except json.JSONDecodeError as e:
            ck.error("", "bad_json", f"invalid JSON: {e.msg} (line {e.lineno} column {e.colno})")
            ck.finish(None, [])
            pos = _resync(s, pos + 1, record_keys)
            if pos < 0:
                return
            continue
        yield obj
        pos = _WS.match(s, end).end()
        if s.startswith(",", pos):
            pos = _WS.match(s, pos + 1).end()
        elif s.startswith("]", pos):
            return
        elif pos < len(s):
            line += s.count("\n", last, pos)
            last = pos
            ck.begin(line)
            ck.error("", "bad_json", "expected ',' or ']' after a record; the rest of the file is unreadable")
            ck.finish(None, [])
            return
    ck.begin(line + s.count("\n", last, len(s)))
    ck.error("", "bad_json", "the list is not closed with ']'")
    ck.finish(None, [])


def _resync(s: str, pos: int, keys: tuple[str, ...]) -> int:
    """Position of the next ``{`` at or after pos that decodes to a record with one of `keys`, or -1."""
    while True:
        pos = s.find("{", pos)
        if pos < 0:
            return -1
        try:
            obj, _ = _DECODER.raw_decode(s, pos)
            if isinstance(obj, dict) and any(k in obj for k in keys):
                return pos
        except json.JSONDecodeError:
            pass
        pos += 1


def first_list_record(head: str) -> Any:
    """The first element of a JSON list that starts `head` (a file's first bytes), or None."""
    pos = _WS.match(head, 0).end()
    if not head.startswith("[", pos):
        return None
    pos = _WS.match(head, pos + 1).end()
    try:
        return _DECODER.raw_decode(head, pos)[0]
    except json.JSONDecodeError:
        return None
