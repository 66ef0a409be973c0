"""The format registry: every format lingshu reads and writes, detection, and the entry points
`iter_documents`, `read_documents` and `write_documents`. One module per format (cluener,
cmeee, spans, conll, plain, cmeie, pairs) holds its reader and writer; this module imports
them, and none of them imports it.

Formats (offsets in `Document` are always end-exclusive; readers convert):

- ``cluener``: JSON lines ``{"text", "label": {type: {entity: [[s, e], ...]}}}``, e inclusive.
  A record without "label" (the CLUENER test file) has no entities; "id" is kept.
- ``cmeee``: one JSON list ``[{"text", "entities": [{"start_idx", "end_idx", "type",
  "entity"}]}]``, end inclusive, nested entities allowed.
- ``spans``: JSON lines ``{"text", "entities": [{"start", "end", "type"[, "text"][, "score"]}]}``,
  end exclusive: lingshu's own layout and the default for predictions.
- ``conll``: ``char tag`` per line (extra middle columns ignored), a blank line between
  sentences; BIO/BIOS/BIOES/BMES/BILOU tags, ``B-x`` or ``B_x`` (see `lingshu.data.conll`).
- ``text``: plain text, one document per non-empty line, for prediction.
- ``cmeie``: CMeIE JSON lines ``{"text", "spo_list": [...]}`` for relation extraction, nested
  (CBLUE) or flat layout; arguments placed in the text by the policy in `lingshu.data.cmeie`.
- ``pair``: sentence pairs with a label, KUAKE-QQR's JSON list ``[{"id", "query1", "query2",
  "label"}]`` or JSON lines ``{"text1", "text2", "label"}`` (see `lingshu.data.pairs`).

``labels`` (allowed values) means entity types for the NER formats, predicates for ``cmeie``
and class labels for ``pair``.

Usage::

    result = read_documents("../shared/data/cmeee/CMeEE_dev.json")
    print(result.report.summary())
    docs = result.documents

Writing. Each writer converts our end-exclusive offsets back to the file's convention (CLUENER and
CMeEE: inclusive). What a layout cannot hold is stated and counted, never lost silently:

- ``cluener`` / ``cmeee``: no scores (use ``spans`` for predictions with scores).
- ``conll``: BIOS tags cannot nest, so the longest of overlapping entities is kept and the others
  are counted in `WriteSummary.entities_dropped`; ids and meta are not written; a text with a
  line break cannot be written (`DataError`).
- ``text``: texts only; a line break inside a text is an error.
- ``cmeie``: triples only (entities that are no triple's argument are not written), each
  record in the layout it was read in (`lingshu.data.cmeie`).
- ``pair``: the layout the pairs were read in, with the predicted label (`lingshu.data.pairs`).

A layout remembered by a reader (``meta["lingshu.layout"]``) is never written out as a field.

Files are written to a temporary file in the target folder and moved into place with
`os.replace`, so a crash never leaves a half-written file under the real name.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterable, Iterator

from lingshu.data import cluener, cmeee, cmeie, conll, pairs, plain, spans
from lingshu.data.base import (
    Checker,
    DataError,
    Document,
    Format,
    Problem,
    ValidationReport,
    WriteSummary,
    first_list_record,
)
from lingshu.data.source import Source
from lingshu.io import atomic_open

log = logging.getLogger(__name__)

FORMATS: dict[str, Format] = {m.FORMAT.name: m.FORMAT for m in (cluener, cmeee, spans, conll, plain, cmeie, pairs)}


def detect_format(path: str | Path | Source, format: str | None = None) -> str:
    """Guess a file's format from its extension and first records (the first 64 KiB).

    Rules: a CoNLL extension (.conll, .bio, .bios, .bioes, ...) -> conll; a JSON list (``[``
    then a record or ``]``) -> pair if the first record has "query1" or "text1" (KUAKE-QQR),
    else cmeee; JSON lines (a line that parses as a JSON object, or a first line starting with
    ``{"``) -> judged on the first record that has one of these keys, in this order: "spo_list"
    -> cmeie, "text1" or "query1" -> pair, "entities" -> spans, "label" -> cluener; cluener when
    none has any (CLUENER's test file holds only id/text; both read it alike); character-level
    CoNLL lines (one character, a tag; see `lingshu.data.conll.looks_like`) -> conll; anything
    else -> text, so a plain text whose first line starts with ``[`` or ``{`` is text, as is one
    whose first line is a complete JSON value followed by text (``{"注意": 1} 患者…``). Lines are
    split at ``\\n`` only: a U+2028 inside a record is part of the record.

    Args:
        path: the file, or a `Source` (needed for a pipe: detection then reads only the
            source's head, and the reader goes on from the same stream).
        format: an explicit format; returned as is after checking it exists.

    Returns:
        A key of `FORMATS`.

    Raises:
        DataError: `format` is not a known format.
    """
    if format is not None:
        if format not in FORMATS:
            raise DataError(f"unknown format {format!r}; known: {', '.join(FORMATS)}")
        return format
    if isinstance(path, Source):
        return _detect(path)
    with Source(path) as src:
        return _detect(src)


_JSON_WS = " \t\r\n"


def _head_json(body: str) -> str:
    """How the JSON value opening `body` parses: "text" when it is complete and followed, on the
    same line, by words (a plain text line such as '{"注意": 1} 患者发热' or '[]患者'); "deep"
    when it nests deeper than the parser goes (no plain text opens with thousands of brackets);
    else "json" (complete with nothing or more JSON after it, broken, or longer than the head: the
    reader reports what is wrong)."""
    try:
        _, end = json.JSONDecoder().raw_decode(body)
    except RecursionError:
        return "deep"
    except ValueError:
        return "json"
    rest = body[end:].split("\n", 1)[0].strip(_JSON_WS)
    return "text" if rest and rest[0].isalnum() else "json"


def _detect(src: Source) -> str:
    if src.path.suffix.lower() in conll.CONLL_EXTENSIONS:
        return "conll"
    head = src.head_text()
    body = head.lstrip(_JSON_WS)
    if body.startswith("{") and "\n" not in body and not src.whole:
        src.extend_head()  # JSON lines whose first record is longer than the head
        head = src.head_text()
        body = head.lstrip(_JSON_WS)
    lines = head.split("\n")
    if not src.whole:
        lines = lines[:-1]  # the head may end mid-line; judge on complete lines
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines if ln.strip(_JSON_WS)][:50]
    head_json = _head_json(body) if body[:1] in ("[", "{") else None
    if body.startswith("[") and head_json != "text":
        first = first_list_record(body)
        if isinstance(first, dict) or body[1:].lstrip(_JSON_WS)[:1] in ("{", "]") or head_json == "deep":
            if isinstance(first, dict) and ("query1" in first or "text1" in first):
                return "pair"
            return "cmeee"  # a list opening with nesting too deep to parse: its reader reports that record
    if body.startswith("{"):
        records = False
        for ln in lines[:20]:
            try:
                obj = json.loads(ln)
            except (ValueError, RecursionError):
                continue
            if not isinstance(obj, dict):
                continue
            records = True
            if "spo_list" in obj:
                return "cmeie"
            if "text1" in obj or "query1" in obj:
                return "pair"
            if "entities" in obj:  # before "label": a spans record may carry a predicted label
                return "spans"
            if "label" in obj:
                return "cluener"
        # Records with neither key (CLUENER's test file: id + text) read alike either way; a
        # first record that does not parse is a broken record, unless text follows a complete one.
        if records or (body.startswith('{"') and head_json != "text"):
            return "cluener"
    if conll.looks_like(lines):
        return "conll"
    return "text"


def iter_documents(
    path: str | Path | Source,
    format: str | None = None,
    strict: bool = False,
    labels: Collection[str] | None = None,
    allow_overlap: bool = True,
    report: ValidationReport | None = None,
) -> Iterator[Document]:
    """Stream the valid documents of a file, filling `report` as it goes.

    Args:
        path: the file to read (a pipe or ``/dev/stdin`` too: it is read once), or a `Source`
            (from which `detect_format` has read only the head).
        format: one of `FORMATS`; None detects it (`detect_format`).
        strict: raise `DataError` on the first error instead of skipping the record.
        labels: allowed labels (entity types; predicates for cmeie; class labels for pair); another
            is an error. None accepts any (pair: KUAKE-QQR's list layout then allows 0/1/2).
        allow_overlap: False turns overlapping/nested entities from warnings into errors.
        report: a `ValidationReport` to fill (counts, problems); complete once exhausted.

    Yields:
        `Document`s with end-exclusive entity offsets, ``source`` = "file:line".

    Raises:
        DataError: with ``strict=True``, on the first error, naming file:line and field.
        FileNotFoundError: the file does not exist.
        DataError: also for a directory.
    """
    src = path if isinstance(path, Source) else Source(path)
    try:
        fmt = detect_format(src, format)
        report = report if report is not None else ValidationReport()
        report.file, report.format = src.name, fmt
        ck = Checker(src.name, report, strict=strict, labels=labels, allow_overlap=allow_overlap)
        yield from FORMATS[fmt].read(src, ck)
    finally:
        src.close()


@dataclass
class ReadResult:
    """What `read_documents` returns.

    Attributes:
        documents: the valid documents, in file order.
        report: counts and problems (`ValidationReport.summary()` for a readable account).
    """

    documents: list[Document]
    report: ValidationReport

    def __iter__(self):
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)


def read_documents(
    path: str | Path | Source,
    format: str | None = None,
    strict: bool = False,
    labels: Collection[str] | None = None,
    allow_overlap: bool = True,
) -> ReadResult:
    """Read and validate a whole file.

    Bad records are skipped and counted (see `lingshu.data.validate` for the policy); with
    ``strict=True`` the first error raises instead.

    Args:
        path: the file to read.
        format: one of `FORMATS`; None detects it from the file.
        strict: raise `DataError` on the first error.
        labels: allowed labels (entity types; cmeie: predicates; pair: class labels), or None to
            accept any (pair: KUAKE-QQR's list layout then allows 0/1/2).
        allow_overlap: False makes overlapping/nested entities errors.

    Returns:
        `ReadResult` with ``.documents`` and ``.report``.

    Raises:
        DataError: with ``strict=True``, e.g. ``CMeEE_dev.json:1234: entities[2].end_idx: 57 is
            beyond the text length 40``.
    """
    report = ValidationReport()
    docs = list(iter_documents(path, format, strict, labels, allow_overlap, report))
    return ReadResult(docs, report)


def write_documents(docs: Iterable[Document], path: str | Path, format: str = "spans") -> WriteSummary:
    """Write documents in a format's own layout, atomically.

    Args:
        docs: documents (an iterator is fine; it is consumed once).
        path: the file to write; its folder is created if missing.
        format: one of `FORMATS` (cluener, cmeee, spans, conll, text, cmeie, pair); spans keeps
            entity scores.

    Returns:
        `WriteSummary` with counts, including entities the format could not express.

    Raises:
        DataError: unknown format, or a document the format cannot hold (the target file is
            left untouched).
    """
    if format not in FORMATS or FORMATS[format].write is None:
        raise DataError(f"cannot write format {format!r}; writable: {', '.join(k for k, v in FORMATS.items() if v.write)}")
    path = Path(path)
    summary = WriteSummary(str(path), format)
    with atomic_open(path) as f:
        FORMATS[format].write(docs, f, summary)
    if summary.entities_dropped:
        log.warning(
            "%s: %d entities could not be expressed in %s (nested/overlapping) and were left out",
            path, summary.entities_dropped, format,
        )
    return summary


__all__ = ["FORMATS", "Format", "Problem", "ReadResult", "WriteSummary", "detect_format", "iter_documents",
           "read_documents", "write_documents"]
