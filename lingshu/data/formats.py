"""Readers for the file formats lingshu speaks; every reader yields `Document`s.

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
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

from lingshu.data import conll as _conll
from lingshu.data import jsonio as _jsonio
from lingshu.data.report import DataError, Problem, ValidationReport
from lingshu.data.validate import Checker, RawEntity
from lingshu.schema import Document

CONLL_EXTENSIONS = {".conll", ".bio", ".bios", ".bioes", ".iob", ".iobes", ".bmes", ".bilou"}


def _meta(obj: dict, known: tuple[str, ...]) -> dict:
    return {k: v for k, v in obj.items() if k not in known}


# --- JSON lines formats ---------------------------------------------------------------


def _json_lines(path: Path, ck: Checker) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object) per non-blank line; bad JSON is reported and skipped."""
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                ck.begin(lineno)
                ck.error("", "bad_json", f"invalid JSON: {e.msg} (column {e.colno})")
                ck.finish(None, [])
                continue
            yield lineno, obj


# CLUENER spans are [start, end] pairs; type and entity text are the enclosing dict keys.
_CLUENER_KEYS = ("[0]", "[1]", "", "")


def _cluener_record(obj: Any, ck: Checker) -> Document | None:
    if not isinstance(obj, dict):
        ck.error("", "bad_record", f"expected a JSON object, got {type(obj).__name__}")
        return ck.finish(None, [])
    text = ck.text(obj)
    raws: list[RawEntity] = []
    label = obj.get("label") or {}
    if not isinstance(label, dict):
        ck.error("label", "bad_field", "expected {type: {entity: [[start, end], ...]}}")
        label = {}
    for typ, mentions in label.items():
        if not isinstance(mentions, dict):
            ck.error(f"label.{typ}", "bad_field", "expected {entity: [[start, end], ...]}")
            continue
        for ent, spans in mentions.items():
            f = f"label.{typ}[{json.dumps(ent, ensure_ascii=False)}]"
            if not isinstance(spans, list):
                ck.error(f, "bad_field", "expected a list of [start, end] pairs")
                continue
            for k, sp in enumerate(spans):
                fk = f"{f}[{k}]"
                if not isinstance(sp, list) or len(sp) != 2:
                    ck.error(fk, "bad_offset", f"{sp!r} is not a [start, end] pair")
                    continue
                raws.append(
                    RawEntity(fk, sp[0], sp[1], typ, ent, None, True, _CLUENER_KEYS, f"label.{typ}", f)
                )
    return ck.finish(text, raws, obj.get("id"), _meta(obj, ("text", "label", "id")))


def _entity_list(obj: dict, ck: Checker, keys: tuple[str, str, str, str], inclusive: bool) -> list[RawEntity]:
    """Raw entities from the "entities" list; `keys` are the file's start/end/type/text names."""
    ents = obj.get("entities")
    if ents is None:  # test files carry no entities
        return []
    if not isinstance(ents, list):
        ck.error("entities", "bad_field", f"expected a list, got {type(ents).__name__}")
        return []
    ks, ke, kt, kx = keys
    suffixes = tuple("." + k for k in keys)
    raws = []
    for i, e in enumerate(ents):
        try:
            raws.append(RawEntity(f"entities[{i}]", e[ks], e[ke], e[kt], e.get(kx), e.get("score"), inclusive, suffixes))
        except (KeyError, TypeError, AttributeError):
            f = f"entities[{i}]"
            if not isinstance(e, dict):
                ck.error(f, "bad_field", f"expected an object, got {type(e).__name__}")
            else:
                missing = [k for k in (ks, ke, kt) if k not in e]
                ck.error(f, "missing_field", "missing " + ", ".join(f'"{m}"' for m in missing))
    return raws


_SPANS_KEYS = ("start", "end", "type", "text")
_CMEEE_KEYS = ("start_idx", "end_idx", "type", "entity")


def _spans_record(obj: Any, ck: Checker) -> Document | None:
    if not isinstance(obj, dict):
        ck.error("", "bad_record", f"expected a JSON object, got {type(obj).__name__}")
        return ck.finish(None, [])
    text = ck.text(obj)
    raws = _entity_list(obj, ck, _SPANS_KEYS, inclusive=False)
    return ck.finish(text, raws, obj.get("id"), _meta(obj, ("text", "entities", "id")))


def _cmeee_record(obj: Any, ck: Checker) -> Document | None:
    if not isinstance(obj, dict):
        ck.error("", "bad_record", f"expected a JSON object, got {type(obj).__name__}")
        return ck.finish(None, [])
    text = ck.text(obj)
    raws = _entity_list(obj, ck, _CMEEE_KEYS, inclusive=True)
    return ck.finish(text, raws, obj.get("id"), _meta(obj, ("text", "entities", "id")))


def read_cluener(path: Path, ck: Checker) -> Iterator[Document]:
    """CLUENER JSON lines (see module docstring)."""
    for lineno, obj in _json_lines(path, ck):
        ck.begin(lineno)
        doc = _cluener_record(obj, ck)
        if doc is not None:
            yield doc


def read_spans(path: Path, ck: Checker) -> Iterator[Document]:
    """lingshu spans JSON lines (see module docstring)."""
    for lineno, obj in _json_lines(path, ck):
        ck.begin(lineno)
        doc = _spans_record(obj, ck)
        if doc is not None:
            yield doc


# --- CMeEE: one JSON list ---------------------------------------------------------------


def read_cmeee(path: Path, ck: Checker) -> Iterator[Document]:
    """CMeEE: one JSON list of records; each record's line is where its ``{`` starts
    (see `lingshu.data.jsonio.json_list`)."""
    for obj in _jsonio.json_list(path, ck):
        doc = _cmeee_record(obj, ck)
        if doc is not None:
            yield doc


# --- CoNLL ----------------------------------------------------------------------------

# char, optional middle columns, tag. The char may itself be a whitespace character (a space or
# U+3000 in the text), written as "<char><sep><tag>", hence the `\s` alternative.
_CONLL_LINE = re.compile(r"(\S+|\s)[ \t]+(?:\S+[ \t]+)*?(\S+)[ \t]*")


def read_conll(path: Path, ck: Checker) -> Iterator[Document]:
    """CoNLL char/tag columns; a document per blank-line-separated sentence.

    Tags are decoded with the repair policy in `lingshu.data.conll` (each repair a warning
    ``ill_formed_tags`` on the tag's line); a line without two columns or an unknown tag is an
    error that skips its sentence.
    """
    tokens: list[tuple[str, str, int]] = []  # (char, tag, line)
    bad: list[tuple[int, str, str, str]] = []  # (line, field, kind, message)

    def flush() -> Document | None:
        ck.begin(min([t[2] for t in tokens[:1]] + [b[0] for b in bad[:1]]))
        for ln, fld, kind, msg in bad:
            ck.error(fld, kind, msg, line=ln)
        if bad:
            return ck.finish(None, [])
        text = "".join(c for c, _, _ in tokens)
        offsets = [0]
        for c, _, _ in tokens:
            offsets.append(offsets[-1] + len(c))
        spans, repairs = _conll.decode([t for _, t, _ in tokens])
        for i, msg in repairs:
            ck.warning("tag", "ill_formed_tags", msg, line=tokens[i][2])
        raws = [
            RawEntity(f"tokens[{s}:{e}]", offsets[s], offsets[e], t, type_field="tag", line=tokens[s][2])
            for s, e, t in spans
        ]
        return ck.finish(text, raws)

    with open(path, encoding="utf-8-sig", newline=None) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                if tokens or bad:
                    doc = flush()
                    if doc is not None:
                        yield doc
                    tokens, bad = [], []
                continue
            if line.startswith("-DOCSTART-"):
                continue
            m = _CONLL_LINE.fullmatch(line)
            if not m:
                bad.append((lineno, "columns", "bad_line", f"expected 'char tag', got {line!r}"))
                continue
            char, tag = m.group(1), m.group(2)
            if _conll.parse_tag(tag) is None:
                bad.append((lineno, "tag", "bad_tag", f"{tag!r} is not a BIO/BIOS/BIOES tag"))
                continue
            tokens.append((char, tag, lineno))
    if tokens or bad:
        doc = flush()
        if doc is not None:
            yield doc


# --- plain text -----------------------------------------------------------------------


def read_text(path: Path, ck: Checker) -> Iterator[Document]:
    """One document per non-blank line, text kept exactly (only the line ending removed)."""
    with open(path, encoding="utf-8-sig") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            ck.begin(lineno)
            yield ck.finish(line, [])


# --- format registry and detection ----------------------------------------------------


@dataclass(frozen=True)
class Format:
    """A file format: its reader, its writer and what it looks like.

    Attributes:
        name: the format's name, as passed to `read_documents(format=...)`.
        description: one line for help texts.
        read: reader(path, checker) -> Iterator[Document].
        write: writer(docs, text file, WriteSummary) filling the summary's counts, or None.
        extensions: file extensions that imply this format.
    """

    name: str
    description: str
    read: Callable[[Path, Checker], Iterator[Document]]
    write: Callable | None = None
    extensions: frozenset = field(default_factory=frozenset)


def detect_format(path: str | Path, format: str | None = None) -> str:
    """Guess a file's format from its extension and first bytes.

    Rules: a CoNLL extension (.conll, .bio, .bios, .bioes, ...) -> conll; content starting with
    ``[`` -> pair if the first record has "query1" or "text1" (KUAKE-QQR), else cmeee; ``{`` ->
    JSON lines, judged on the first record that has one of these keys, in this order: "spo_list"
    -> cmeie, "text1" or "query1" -> pair, "label" -> cluener, "entities" -> spans; cluener when
    none has any (CLUENER's test file holds only id/text; both read it alike); lines of two or
    more columns ending in a tag -> conll; anything else -> text.

    Args:
        path: the file.
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
    path = Path(path)
    if path.suffix.lower() in CONLL_EXTENSIONS:
        return "conll"
    with open(path, "rb") as f:
        head_bytes = f.read(1 << 16)
    head = head_bytes.decode("utf-8", errors="replace").lstrip("\ufeff")
    body = head.lstrip()
    if body.startswith("["):
        first = _jsonio.first_list_record(body)
        if isinstance(first, dict) and ("query1" in first or "text1" in first):
            return "pair"
        return "cmeee"
    lines = head.splitlines()
    if len(head_bytes) == 1 << 16:
        lines = lines[:-1]  # a full sample may end mid-line; judge on complete lines
    lines = [ln for ln in lines if ln.strip()][:50]
    if body.startswith("{"):
        for ln in lines[:20]:
            try:
                obj = json.loads(ln)
            except json.JSONDecodeError:
                continue
            if not isinstance(obj, dict):
                continue
            if "spo_list" in obj:
                return "cmeie"
            if "text1" in obj or "query1" in obj:
                return "pair"
            if "label" in obj:
                return "cluener"
            if "entities" in obj:
                return "spans"
        # Records with neither key (CLUENER's test file: id + text) read alike either way.
        return "cluener"
    if lines and all(
        (m := _CONLL_LINE.fullmatch(ln)) and _conll.parse_tag(m.group(2)) is not None for ln in lines
    ):
        return "conll"
    return "text"


def iter_documents(
    path: str | Path,
    format: str | None = None,
    strict: bool = False,
    labels: Collection[str] | None = None,
    allow_overlap: bool = True,
    report: ValidationReport | None = None,
) -> Iterator[Document]:
    """Stream the valid documents of a file, filling `report` as it goes.

    Args:
        path: the file to read.
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
    """
    path = Path(path)
    fmt = detect_format(path, format)
    report = report if report is not None else ValidationReport()
    report.file, report.format = str(path), fmt
    ck = Checker(str(path), report, strict=strict, labels=labels, allow_overlap=allow_overlap)
    yield from FORMATS[fmt].read(path, ck)


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
    path: str | Path,
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


def _formats() -> dict[str, Format]:
    from lingshu.data import cmeie as _cmeie
    from lingshu.data import pairs as _pairs
    from lingshu.data import writers as w

    return {
        "cluener": Format("cluener", "CLUENER JSON lines, label dict, inclusive ends", read_cluener, w.write_cluener),
        "cmeee": Format("cmeee", "CMeEE JSON list, inclusive ends, nested allowed", read_cmeee, w.write_cmeee),
        "spans": Format("spans", "lingshu JSON lines, exclusive ends, optional score", read_spans, w.write_spans,
                        frozenset({".jsonl"})),
        "conll": Format("conll", "char/tag columns, BIO/BIOS/BIOES (written as BIOS)", read_conll, w.write_conll,
                        frozenset(CONLL_EXTENSIONS)),
        "text": Format("text", "plain text, one document per line", read_text, w.write_text, frozenset({".txt"})),
        "cmeie": Format("cmeie", "CMeIE JSON lines, spo_list triples (relation extraction)", _cmeie.read_cmeie,
                        _cmeie.write_cmeie),
        "pair": Format("pair", "sentence pairs with a label: KUAKE-QQR JSON list or text1/text2 JSON lines",
                       _pairs.read_pair, _pairs.write_pair),
    }


FORMATS: dict[str, Format] = _formats()

__all__ = [
    "FORMATS",
    "Format",
    "ReadResult",
    "Problem",
    "detect_format",
    "iter_documents",
    "read_documents",
]
