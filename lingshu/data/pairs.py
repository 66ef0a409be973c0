"""Sentence pairs with a class label (KUAKE-QQR query-query relevance).

Layouts (both read; the writer writes the one the documents were read in):

- ``kuake``: one JSON list ``[{"id", "query1", "query2", "label"}]``, as CBLUE ships KUAKE-QQR
  and expects its submissions;
- ``jsonl``: JSON lines ``{"text1", "text2", "label"}``, optionally with "id".

Predictions in either layout carry ``"probabilities": {label: p}``.

A record becomes ``Document(text=query1/text1, text_pair=query2/text2, label=str(label), id=id)``
(records of either key naming are read in either container; the layout follows the container).

Labels: ``labels`` given to the reader is the allowed set; when it is None the ``kuake`` layout
allows "0", "1", "2" and ``jsonl`` allows any. A label outside the allowed set (KUAKE-QQR's
dev file has one "NA") is an error naming the record's id and the label: the record is skipped
and counted. An absent, null or empty label (the test file) gives ``label=None``, counted as
unlabelled in the report, not an error. An integer label is read as its string.

Errors (record skipped, or `DataError` with ``strict=True``): a record that is not an object,
a missing, non-string or empty first or second text, a label that is neither a string nor an
integer. A malformed "probabilities" is a warning and stays in ``meta`` untouched.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import IO, Any, Iterable, Iterator

from lingshu.data.base import (
    LAYOUT,
    Checker,
    DataError,
    Document,
    Format,
    Source,
    WriteSummary,
    dumps,
    json_lines,
    json_list,
    record_tail,
    where,
)

KUAKE = "kuake"
JSONL = "jsonl"
KUAKE_LABELS = frozenset({"0", "1", "2"})
_KEYS = {KUAKE: ("query1", "query2"), JSONL: ("text1", "text2")}


def _who(id: Any) -> str:
    return f"record id {id!r}" if id is not None else "record (no id)"


def _record(obj: Any, ck: Checker, layout: str) -> Document | None:
    if not isinstance(obj, dict):
        ck.error("", "bad_record", f"expected a JSON object, got {type(obj).__name__}")
        return ck.finish(None, [])
    id = obj.get("id")
    who = _who(id)
    if "query1" in obj or "query2" in obj:
        k1, k2 = _KEYS[KUAKE]
    elif "text1" in obj or "text2" in obj:
        k1, k2 = _KEYS[JSONL]
    else:
        k1, k2 = _KEYS[layout]
    texts = []
    for k in (k1, k2):
        v = obj.get(k)
        if k not in obj:
            ck.error(k, "missing_text", f'{who}: no "{k}" field')
        elif not isinstance(v, str):
            ck.error(k, "bad_text", f"{who}: expected a string, got {type(v).__name__}")
        elif not v.strip():
            ck.error(k, "empty_text", f"{who}: the text is empty")
        elif ck.bad_unicode(k, v):
            pass
        else:
            texts.append(v)
            continue
        texts.append(None)
    label = obj.get("label")
    if type(label) is int:  # 1 and "1" are one label: checked alike below
        label = str(label)
    if label is None or label == "":
        label = None
    elif not isinstance(label, str):
        ck.error("label", "bad_label", f"{who}: label {label!r} is not a string")
        label = None
    elif ck.bad_unicode("label", label, "label"):
        label = None
    else:
        allowed = ck.labels if ck.labels is not None else (KUAKE_LABELS if layout == KUAKE else None)
        if allowed is not None and label not in allowed:
            ck.error("label", "unknown_label",
                     f"{who}: label {label!r} is not one of the allowed labels {', '.join(sorted(allowed))}")
    meta = {k: v for k, v in obj.items() if k not in (k1, k2, "label", "id")}
    scores = None
    if "probabilities" in meta:
        p = meta["probabilities"]
        if isinstance(p, dict) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for k, v in p.items()
        ):
            scores = {k: float(v) for k, v in meta.pop("probabilities").items()}
        else:
            ck.warning("probabilities", "bad_field", f"{who}: expected {{label: probability}}; kept as is")
    meta[LAYOUT] = layout
    doc = ck.finish(texts[0], [], id, meta, text_pair=texts[1], label=label, label_scores=scores)
    if doc is not None:
        if label is None:
            ck.report.unlabelled += 1
        else:
            ck.report.labels[label] += 1
    return doc


def _lines_after_a_wrapped_record(head: str) -> bool:
    """A head that starts with ``[`` but is JSON lines: its first line is a whole JSON value (a
    record wrapped in a list) and the next non-blank line starts a record with ``{``. A KUAKE
    list's first line is ``[`` or opens a record it closes on a later line; a one-line list is
    the whole file."""
    text = head.lstrip()
    first, _, rest = text.partition("\n")
    if not rest.lstrip().startswith("{"):
        return False
    try:
        json.loads(first)
    except (ValueError, RecursionError):
        return False
    return True


def read_pair(src: Source, ck: Checker) -> Iterator[Document]:
    """KUAKE-QQR JSON list or pair JSON lines, by the file's first character (``[``: a list,
    unless the first line is a whole value followed by a line that starts a record)."""
    head = src.head_text()
    if head.lstrip()[:1] == "[" and not _lines_after_a_wrapped_record(head):
        layout, records = KUAKE, json_list(src, ck)
    else:
        layout, records = JSONL, json_lines(src, ck)
    for obj in records:
        doc = _record(obj, ck, layout)
        if doc is not None:
            yield doc


def write_pair(docs: Iterable[Document], f: IO[str], summary: WriteSummary) -> None:
    """Pairs in the layout of the first document (``meta["lingshu.layout"]``; ``jsonl`` when
    none was remembered), with ``Document.label`` as "label".

    ``kuake``: a JSON list, one record a line, "label" "" when a document has none (CBLUE's
    submission layout). ``jsonl``: "label" only when set. Both: "probabilities" from
    ``label_scores`` when present (rounded to 6 digits; in ``kuake`` a fifth key beside
    CBLUE's four).

    Raises:
        DataError: a document without ``text_pair``.
    """
    it = iter(docs)
    first = next(it, None)
    if first is None:
        return
    layout = first.meta.get(LAYOUT, JSONL)
    if layout not in _KEYS:
        layout = JSONL
    k1, k2 = _KEYS[layout]
    if layout == KUAKE:
        f.write("[\n")
    for doc in itertools.chain([first], it):
        why = _refuse(doc)
        if why:
            raise DataError(f"{where(doc)}: {why}")
        rec: dict[str, Any] = {}
        if doc.id is not None:
            rec["id"] = doc.meta.get("id", doc.id)
        rec[k1] = doc.text
        rec[k2] = doc.text_pair
        if layout == KUAKE:
            rec["label"] = doc.label if doc.label is not None else ""
        elif doc.label is not None:
            rec["label"] = doc.label
        if doc.label_scores is not None:
            rec["probabilities"] = {k: round(float(v), 6) for k, v in doc.label_scores.items()}
        line = dumps(record_tail(rec, doc))
        if layout == KUAKE:
            f.write(("  " if summary.documents == 0 else ",\n  ") + line)
        else:
            f.write(line + "\n")
        summary.documents += 1
        summary.labels += doc.label is not None
    if layout == KUAKE:
        f.write("\n]\n")


def _refuse(doc: Document) -> str | None:
    return "a document without text_pair cannot be written as pair" if doc.text_pair is None else None


FORMAT = Format("pair", "sentence pairs with a label: KUAKE-QQR JSON list or text1/text2 JSON lines",
                read_pair, write_pair, refuse=_refuse)
