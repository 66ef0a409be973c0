"""Writers: `Document`s back to each format's own layout, written atomically.

Each writer converts our end-exclusive offsets back to the file's convention (CLUENER and
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
from typing import IO, Any, Iterable

from lingshu.data.jsonio import LAYOUT
from lingshu.data.report import DataError
from lingshu.io import atomic_open
from lingshu.schema import Document
from lingshu.text.tags import spans_to_bios

log = logging.getLogger(__name__)


@dataclass
class WriteSummary:
    """What a writer wrote.

    Attributes:
        path: the file written.
        format: its format.
        documents: documents written.
        entities: entities written.
        entities_dropped: entities the format could not express (CoNLL: nested/overlapping).
        relations: SPO triples written (cmeie).
        labels: documents written with a label (pair).
    """

    path: str
    format: str
    documents: int = 0
    entities: int = 0
    entities_dropped: int = 0
    relations: int = 0
    labels: int = 0


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _head(doc: Document) -> dict:
    # A non-string id read from the file sits in meta["id"], so it is written back as it was.
    rec: dict[str, Any] = {}
    if doc.id is not None:
        rec["id"] = doc.meta.get("id", doc.id)
    return rec


def _tail(rec: dict, doc: Document) -> dict:
    for k, v in doc.meta.items():
        if k != "id" and k != LAYOUT and k not in rec:
            rec[k] = v
    return rec


def _where(doc: Document) -> str:
    return doc.source or (f"id {doc.id}" if doc.id is not None else repr(doc.text[:30]))


def write_spans(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """JSON lines of `Document.to_dict()`: ``{"id"?, "text", "entities": [{"start", "end", "type",
    "text", "score"?}], "relations"?, "text_pair"?, "label"?, "label_scores"?}``, plus the input
    record's other fields."""
    for doc in docs:
        rec = _head(doc)
        rec.update((k, v) for k, v in doc.to_dict().items() if k != "id")
        f.write(_dumps(_tail(rec, doc)) + "\n")
        s.documents += 1
        s.entities += len(rec["entities"])


def _cluener_label(doc: Document) -> dict:
    label: dict[str, dict[str, list[list[int]]]] = {}
    for e in doc.ents:
        label.setdefault(e.type, {}).setdefault(doc.text[e.start : e.end], []).append([e.start, e.end - 1])
    return label


def write_cluener(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """CLUENER JSON lines; "label" is always written (even empty) so the file is detected."""
    for doc in docs:
        rec = _head(doc)
        rec["text"] = doc.text
        rec["label"] = _cluener_label(doc)
        f.write(_dumps(_tail(rec, doc)) + "\n")
        s.documents += 1
        s.entities += len(doc.entities)


def write_cmeee(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """A CMeEE JSON list, one record per line (valid JSON, streamable, and diffable)."""
    f.write("[\n")
    for doc in docs:
        rec = _head(doc)
        rec["text"] = doc.text
        rec["entities"] = [
            {"start_idx": e.start, "end_idx": e.end - 1, "type": e.type, "entity": doc.text[e.start : e.end]}
            for e in doc.ents
        ]
        f.write(("  " if s.documents == 0 else ",\n  ") + _dumps(_tail(rec, doc)))
        s.documents += 1
        s.entities += len(doc.entities)
    f.write("\n]\n")


def _check_one_line(doc: Document, fmt: str, f: IO[str], first: bool) -> None:
    # Readers strip one leading BOM (utf-8-sig). If the first text itself starts with U+FEFF
    # (70 CLUENER/CMeEE texts contain it), the line file would begin with it and lose it on
    # reading; writing a BOM first keeps the text intact.
    if first and doc.text.startswith("\ufeff"):
        f.write("\ufeff")
    if not doc.text.strip():
        raise DataError(f"{_where(doc)}: an empty text cannot be written as {fmt}")
    if "\n" in doc.text or "\r" in doc.text:
        raise DataError(f"{_where(doc)}: a text with a line break cannot be written as {fmt}")


def write_conll(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """``char tag`` lines in BIOS, a blank line after each document."""
    for doc in docs:
        _check_one_line(doc, "conll", f, s.documents == 0)
        tags, dropped = spans_to_bios(len(doc.text), [(e.start, e.end - 1, e.type) for e in doc.entities])
        # A whitespace character is written as is: the reader takes "<ws><sep><tag>" as that char.
        f.write("".join(f"{ch} {tag}\n" for ch, tag in zip(doc.text, tags)) + "\n")
        s.documents += 1
        s.entities += len(set(e.key for e in doc.entities)) - len(dropped)
        s.entities_dropped += len(dropped)


def write_text(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """One text per line."""
    for doc in docs:
        _check_one_line(doc, "text", f, s.documents == 0)
        f.write(doc.text + "\n")
        s.documents += 1


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
    from lingshu.data.formats import FORMATS

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

