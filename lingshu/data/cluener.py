"""CLUENER2020: JSON lines ``{"text", "label": {type: {entity: [[s, e], ...]}}}``, e inclusive.

A record without "label" (the CLUENER test file) has no entities; "id" is kept.
"""

from __future__ import annotations

import json
from typing import IO, Any, Iterable, Iterator

from lingshu.data.base import (
    Checker,
    Document,
    Format,
    RawEntity,
    Source,
    WriteSummary,
    dumps,
    extra_fields,
    foreign_record,
    json_lines,
    read_records,
    record_head,
    record_tail,
)

# CLUENER spans are [start, end] pairs; type and entity text are the enclosing dict keys.
_CLUENER_KEYS = ("[0]", "[1]", "", "")


def _cluener_record(obj: Any, ck: Checker) -> Document | None:
    if not isinstance(obj, dict):
        ck.error("", "bad_record", f"expected a JSON object, got {type(obj).__name__}")
        return ck.finish(None, [])
    text = ck.text(obj)
    raws: list[RawEntity] = []
    foreign_record(obj, ("label",), "cluener", ck)
    label = obj.get("label")
    if label is None:  # no "label" (the test file) or null: no entities
        label = {}
    elif not isinstance(label, dict):
        # [], 0, false, "" are not "no entities": the record says something else than CLUENER's layout.
        ck.error("label", "bad_field", "expected {type: {entity: [[start, end], ...]}}, got " + json.dumps(label)[:60])
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
    return ck.finish(text, raws, obj.get("id"), extra_fields(obj, ("text", "label", "id")))


def read_cluener(src: Source, ck: Checker) -> Iterator[Document]:
    """CLUENER JSON lines (see module docstring)."""
    return read_records(json_lines(src, ck), _cluener_record, ck)


def _cluener_label(doc: Document) -> dict:
    label: dict[str, dict[str, list[list[int]]]] = {}
    for e in doc.ents:
        label.setdefault(e.type, {}).setdefault(doc.text[e.start : e.end], []).append([e.start, e.end - 1])
    return label


def write_cluener(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """CLUENER JSON lines; "label" is always written (even empty) so the file is detected."""
    for doc in docs:
        rec = record_head(doc)
        rec["text"] = doc.text
        rec["label"] = _cluener_label(doc)
        f.write(dumps(record_tail(rec, doc)) + "\n")
        s.documents += 1
        s.entities += len(doc.entities)


FORMAT = Format("cluener", "CLUENER JSON lines, label dict, inclusive ends", read_cluener, write_cluener)
