"""Walk JSON record files with line numbers: JSON lines and one JSON list of records.

Both walkers start a record in the `Checker` (``ck.begin(line)``) before yielding it, so the
caller reports problems against the record's line; what the walker itself finds is reported and
skipped here: broken JSON (with the parser's line and column), a line or record that is not
valid UTF-8, a duplicate key in an object (the file states two values; neither is trusted),
nesting too deep for the parser, a number too long to convert.

A JSON list is read element by element with the standard parser (`json.JSONDecoder.raw_decode`).
When an element does not parse, its extent is found structurally (brackets and strings, outside
any key heuristics) and reading goes on at the next element of the list. When the element is
unbalanced (cut off, a missing bracket), the next element is the first later position that
starts a line at the broken record's indentation (or, in a list written on one line, follows a
``,``) and begins a well-formed value followed by ``,`` or ``]``. On one line, a candidate is
taken only where the values from it on close the list at the end of the file (or run into
another broken record), which a broken record's inner objects do not: their list closes with a
``]`` that is followed by more of the record. So the good records after a broken one are all
read, and a broken record's inner objects are never taken for records.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Iterator

from lingshu.data.source import Source, decode_line, encoding_problem
from lingshu.data.validate import Checker

_WS = re.compile(r"[ \t\n\r]*")
_STRUCT = re.compile(r'["{}\[\],]')
_STRING_TAIL = re.compile(r'(?:[^"\\\n]|\\[^\n])*("?)')
_LINE_START = re.compile(r"\n([ \t]*)(?=[{\[])")
_AFTER_COMMA = re.compile(r",[ \t\r\n]*(?=[{\[])")

LAYOUT = "lingshu.layout"
"""`Document.meta` key under which readers remember a file's layout for the writer; writers
never write it out as a field."""


class _Decoder:
    """The standard JSON parser, noting duplicate keys in the objects it builds."""

    def __init__(self):
        self.duplicates: list[str] = []
        self._dec = json.JSONDecoder(object_pairs_hook=self._pairs)

    def _pairs(self, pairs: list[tuple[str, Any]]) -> dict:
        d = dict(pairs)
        if len(d) < len(pairs):
            seen: set[str] = set()
            for k, _ in pairs:
                if k in seen:
                    self.duplicates.append(k)
                    break
                seen.add(k)
        return d

    def decode(self, s: str) -> Any:
        self.duplicates.clear()
        return self._dec.decode(s)

    def raw_decode(self, s: str, pos: int) -> tuple[Any, int]:
        self.duplicates.clear()
        return self._dec.raw_decode(s, pos)


def _parse_failure(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"invalid JSON: {e.msg} (line {e.lineno} column {e.colno})"
    if isinstance(e, RecursionError):
        return "invalid record: nested too deeply to read"
    if "integer string conversion" in str(e):  # Python refuses ints of more than sys.get_int_max_str_digits()
        return f"invalid record: a number of more than {sys.get_int_max_str_digits():,} digits"
    return f"invalid record: {e}"


def _skip(ck: Checker, kind: str, message: str, field: str = "", line: int | None = None) -> None:
    ck.error(field, kind, message, line)
    ck.finish(None, [])


def _duplicate(ck: Checker, dec: _Decoder) -> bool:
    if not dec.duplicates:
        return False
    k = dec.duplicates[0]
    _skip(ck, "duplicate_key", f"the key {json.dumps(k, ensure_ascii=False)} appears twice in one object; "
          "the record is ambiguous and skipped", k)
    return True


def json_lines(src: Source, ck: Checker) -> Iterator[Any]:
    """Yield the parsed object of each non-blank line, its record begun in `ck`."""
    dec = _Decoder()
    for lineno, raw in src.lines():
        if not raw.strip():
            continue
        line, why = decode_line(raw)
        ck.begin(lineno, line if line is not None else raw.decode("utf-8", "replace"))
        if line is None:
            _skip(ck, "bad_encoding", why)
            continue
        try:
            obj = dec.decode(line)
        except (ValueError, RecursionError) as e:
            jd = isinstance(e, json.JSONDecodeError)
            _skip(ck, "bad_json", f"invalid JSON: {e.msg} (column {e.colno})" if jd else _parse_failure(e))
            continue
        if _duplicate(ck, dec):
            continue
        yield obj


def _scan(s: str, pos: int) -> tuple[int, bool]:
    """The extent of the JSON value at `pos`, by brackets and strings only: (end, balanced).

    A value ends where its brackets close, or, for a scalar, at the next ``,``/``]``/``}`` of
    the enclosing list. Unbalanced: a closer of the wrong kind, a string with no closing quote
    on its line (JSON strings cannot hold a raw line break), or the end of the input inside it;
    `end` is then where that was found.
    """
    stack: list[str] = []
    i = pos
    while True:
        m = _STRUCT.search(s, i)
        if m is None:
            return len(s), not stack
        c, j = m.group(), m.start()
        if c == '"':
            t = _STRING_TAIL.match(s, j + 1)
            if not t.group(1):
                return t.end(), False
            i = t.end()
        elif c in "{[":
            stack.append(c)
            i = j + 1
        elif c in "}]":
            if not stack:
                return j, True
            if (stack[-1] == "{") != (c == "}"):
                return j, False
            stack.pop()
            i = j + 1
            if not stack:
                return i, True
        else:  # ","
            if not stack:
                return j, True
            i = j + 1


def _well_formed_at(s: str, pos: int, dec: _Decoder) -> bool:
    """Whether a value that parses starts at `pos` and is followed by ``,`` or ``]``."""
    try:
        _, end = dec.raw_decode(s, pos)
    except (ValueError, RecursionError):
        return False
    end = _WS.match(s, end).end()
    return end < len(s) and s[end] in ",]"


def _closes_the_list(s: str, pos: int, dec: _Decoder, strict: bool = False) -> bool:
    """Whether the values from `pos` on, separated by ``,``, end with the ``]`` that ends the
    file. Unless `strict`, True too where they run into a value that does not parse (another
    broken record: nothing more can be told) or the file ends; False where they end with a
    ``]`` that more data follows, or with a ``:`` (the candidate was an object's member)."""
    while True:
        try:
            _, end = dec.raw_decode(s, pos)
        except (ValueError, RecursionError):
            return not strict
        end = _WS.match(s, end).end()
        if end >= len(s):
            return not strict  # an unclosed list: reported when read
        if s[end] == ",":
            pos = _WS.match(s, end + 1).end()
            if s.startswith("]", pos):  # a trailing comma
                end = pos
            else:
                continue
        if s[end] == "]":
            return _WS.match(s, end + 1).end() >= len(s)
        return s[end] != ":"


def _record_inside(s: str, start: int, end: int, dec: _Decoder) -> int:
    """A position inside the broken element s[start:end], right after a ``,``, from which the
    values close the list at the end of the file (`_closes_the_list`, strict), or -1. A cut
    inside a string flips which quotes open strings, so the element's extent can run over the
    records after it; no inner part of a record closes the list at the end."""
    for m in _AFTER_COMMA.finditer(s, start + 1, end):
        if _well_formed_at(s, m.end(), dec) and _closes_the_list(s, m.end(), dec, strict=True):
            return m.end()
    return -1


def _next_element(s: str, start: int, after: int, dec: _Decoder) -> int:
    """Where reading resumes after the unbalanced element at `start` (broken at `after`), or -1.

    Candidates: positions after `start` that begin a line at the element's own indentation
    (when the element began its line), then positions right after a ``,``: of these the first
    where a well-formed value begins and the values from there close the list at the end of the
    file; failing that, the first where a well-formed value begins.
    """
    line_start = s.rfind("\n", 0, start) + 1
    indent = s[line_start:start]
    if not indent.strip(" \t"):
        for m in _LINE_START.finditer(s, start):
            if m.group(1) == indent and _well_formed_at(s, m.end(), dec):
                return m.end()
    first = -1
    for m in _AFTER_COMMA.finditer(s, start + 1):
        if _well_formed_at(s, m.end(), dec):
            if _closes_the_list(s, m.end(), dec):
                return m.end()
            if first < 0:
                first = m.end()
    return first


def json_list(src: Source, ck: Checker) -> Iterator[Any]:
    """Yield the elements of one JSON list, each begun in `ck` at the line where it starts.

    See the module docstring for how broken elements are skipped. Also reported: a file that
    is not a list, a missing ``,`` between elements (reading goes on), a list that is not
    closed, and anything after the closing ``]`` (not read).
    """
    s = src.read_text()
    undecodable = encoding_problem(s) >= 0  # one pass; records are searched only if needed
    dec = _Decoder()
    last, line = 0, 1  # newlines are counted incrementally from `last`

    def line_at(p: int) -> int:
        nonlocal last, line
        if p >= last:
            line += s.count("\n", last, p)
        else:  # going back (recovery looked ahead): recount
            line = 1 + s.count("\n", 0, p)
        last = p
        return line

    pos = _WS.match(s, 0).end()
    if pos >= len(s) or s[pos] != "[":
        ck.file_error(line_at(pos), "bad_json", "expected a JSON list of records ([ ... ])")
        return
    pos = _WS.match(s, pos + 1).end()
    if s.startswith("]", pos):
        pos += 1
    else:
        while True:
            if pos >= len(s):
                ck.file_error(line_at(pos), "bad_json", "the list is not closed with ']'")
                return
            ck.begin(line_at(pos))
            try:
                obj, end = dec.raw_decode(s, pos)
                failure = None
            except (ValueError, RecursionError) as e:
                failure = _parse_failure(e)
            if failure is None:
                bad = encoding_problem(s, pos, end) if undecodable else -1
                if bad >= 0:
                    _skip(ck, "bad_encoding", "invalid UTF-8 in the record; the record is skipped",
                          line=line + s.count("\n", pos, bad))
                elif not _duplicate(ck, dec):
                    ck.raw = s[pos:end]
                    yield obj
            else:
                end, balanced = _scan(s, pos)
                if balanced:  # a cut inside a string flips which quotes open strings: the extent is
                    after = _WS.match(s, end).end()  # trusted only if a ',' or the list's last ']' follows
                    balanced = after < len(s) and (s[after] == "," or (
                        s[after] == "]" and _WS.match(s, after + 1).end() >= len(s)))
                inner = _record_inside(s, pos, end, dec) if balanced else -1
                _skip(ck, "bad_json", failure)
                if inner >= 0:  # ... or it swallowed good records up to the list's end
                    pos = inner
                    continue
                if not balanced:
                    nxt = _next_element(s, pos, end, dec)
                    if nxt < 0:
                        ck.file_error(line_at(end), "bad_json",
                                      "no readable record follows the broken one; the rest of the list is not read")
                        return
                    pos = nxt
                    continue
            pos = _WS.match(s, end).end()
            if s.startswith(",", pos):
                pos = _WS.match(s, pos + 1).end()
                if s.startswith("]", pos):  # a trailing comma: tolerated, as many writers emit it
                    pos += 1
                    break
            elif s.startswith("]", pos):
                pos += 1
                break
            elif pos < len(s) and s[pos] in "{[":
                ck.file_error(line_at(pos), "bad_json", "missing ',' before this record; it is read all the same")
            elif pos < len(s):
                ck.file_error(line_at(pos), "bad_json", f"expected ',' or ']' after a record, found {s[pos]!r}")
                nxt = _next_element(s, pos, pos, dec)
                if nxt < 0:
                    ck.file_error(line, "bad_json", "no readable record follows; the rest of the list is not read")
                    return
                pos = nxt
    rest = _WS.match(s, pos).end()
    if rest < len(s):
        ck.file_error(line_at(rest), "bad_json", "data after the list's closing ']' is not read (two lists, or trailing text)")


class _Text:
    def __init__(self, text: str):
        self.text = text

    def read_text(self) -> str:
        return self.text


def first_list_record(head: str) -> Any:
    """The first readable object of a JSON list that starts `head` (a file's first bytes), past
    broken records as `json_list` skips them; None when there is none."""
    from lingshu.data.report import ValidationReport

    for obj in json_list(_Text(head), Checker("", ValidationReport())):  # type: ignore[arg-type]
        if isinstance(obj, dict):
            return obj
    return None
