"""What every format module shares: the `Format` description, the checks and reports (re-exported
from lingshu.data.validate and lingshu.data.report), the JSON walkers (lingshu.data.jsonio),
`WriteSummary`, and the record helpers readers and writers use.

Format modules (cluener, spans, cmeee, conll, plain, cmeie, pairs) import this module only;
lingshu.data.registry imports the format modules, and nothing imports the registry back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterator

from lingshu.data.jsonio import LAYOUT, first_list_record, json_lines, json_list
from lingshu.data.report import DataError, Problem, ValidationReport
from lingshu.data.source import LONE_SURROGATE, Source
from lingshu.data.validate import AnyLabel, Checker, RawEntity
from lingshu.schema import Document

__all__ = ["LAYOUT", "AnyLabel", "Checker", "DataError", "Document", "Format", "Problem", "RawEntity",
           "Source", "ValidationReport", "WriteSummary", "check_one_line", "dumps", "one_line_refusal", "entity_list",
           "entity_list_record", "extra_fields", "first_list_record", "foreign_record", "json_lines", "json_list",
           "read_records", "record_head", "record_tail", "where"]


@dataclass(frozen=True)
class Format:
    """A file format: its reader, its writer and what it looks like.

    Attributes:
        name: the format's name, as passed to `read_documents(format=...)`.
        description: one line for help texts.
        read: reader(source, checker) -> Iterator[Document]; the `Source` is read once, from
            its first byte (detection has only looked at its head).
        write: writer(docs, text file, WriteSummary) filling the summary's counts, or None.
        extensions: file extensions that imply this format.
        refuse: refuse(document) -> why the format cannot hold it (its writer raises
            `DataError` with that reason), or None when it can; None: it holds any document.
            `lingshu predict` asks before predicting, so such a record is rejected up front
            instead of failing the output at the end.
    """

    name: str
    description: str
    read: Callable[[Source, Checker], Iterator[Document]]
    write: Callable | None = None
    extensions: frozenset = field(default_factory=frozenset)
    refuse: Callable[[Document], str | None] | None = None


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


def extra_fields(obj: dict, known: tuple[str, ...]) -> dict:
    return {k: v for k, v in obj.items() if k not in known}


_SEPARATORS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def dumps(obj: Any) -> str:
    """One JSON record on one line, non-ASCII kept readable except the Unicode line separators
    (U+2028, U+2029, U+0085), escaped: tools that split lines on them (``str.splitlines``, many
    editors) would otherwise see a record broken in two. A lone surrogate (read from a ``\\udXXX``
    escape in an id or an extra field) is written back as that escape: it has no UTF-8 form."""
    out = json.dumps(obj, ensure_ascii=False).translate(_SEPARATORS)
    if LONE_SURROGATE.search(out):  # only inside strings, where the escape means the same
        out = LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", out)
    return out


# Keys that hold each layout's annotation; a record with another layout's key and none of its
# own file's would lose its annotation silently if read as the file's layout.
_ANNOTATION_KEYS = (("spo_list", "CMeIE"), ("query1", "KUAKE-QQR pair"), ("text1", "pair"),
                    ("label", "CLUENER"), ("entities", "spans/CMeEE"))


def _holds_annotation(key: str, value: Any) -> bool:
    if key == "label":  # CLUENER's label dict (a spans or pair record's label is a string)
        return isinstance(value, dict) and bool(value)
    if key in ("spo_list", "entities"):
        return isinstance(value, list) and bool(value)
    return value is not None


def foreign_record(obj: dict, own: tuple[str, ...], fmt: str, ck: Checker) -> bool:
    """Report a record that is in another layout (e.g. a spans line in a CLUENER file): it has
    another layout's annotation key and none of `own`, or its own keys are empty while another
    layout's key holds annotations (`{"entities": [], "spo_list": [...]}` in a spans file). True
    when reported (an error: the record is skipped rather than kept without its annotation)."""
    present = [k for k in own if k in obj]
    if any(_holds_annotation(k, obj[k]) for k in present):
        return False
    for k, name in _ANNOTATION_KEYS:
        if k in own or k not in obj or (present and not _holds_annotation(k, obj[k])):
            continue
        ck.error(k, "other_layout", f'the record is in the {name} layout ("{k}"), not {fmt} '
                 f'({" / ".join(own)}); read as {fmt} it would lose its annotation')
        return True
    return False


def record_head(doc: Document) -> dict:
    # A non-string id read from the file sits in meta["id"], so it is written back as it was.
    rec: dict[str, Any] = {}
    if doc.id is not None:
        rec["id"] = doc.meta.get("id", doc.id)
    return rec


def record_tail(rec: dict, doc: Document) -> dict:
    for k, v in doc.meta.items():
        if k != "id" and k != LAYOUT and k not in rec:
            rec[k] = v
    return rec


def where(doc: Document) -> str:
    return doc.source or (f"id {doc.id}" if doc.id is not None else repr(doc.text[:30]))


def one_line_refusal(doc: Document, fmt: str, allow_empty: bool = False) -> str | None:
    """Why a line-based format (text, conll) cannot hold `doc`, or None."""
    if not allow_empty and not doc.text.strip():
        return f"an empty text cannot be written as {fmt}"
    if "\n" in doc.text or "\r" in doc.text:
        return f"a text with a line break cannot be written as {fmt}"
    return None


def check_one_line(doc: Document, fmt: str, f: IO[str], first: bool, allow_empty: bool = False) -> None:
    # Readers strip one leading BOM (utf-8-sig). If the first text itself starts with U+FEFF
    # (70 CLUENER/CMeEE texts contain it), the line file would begin with it and lose it on
    # reading; writing a BOM first keeps the text intact.
    if first and doc.text.startswith("\ufeff"):
        f.write("\ufeff")
    why = one_line_refusal(doc, fmt, allow_empty)
    if why:
        raise DataError(f"{where(doc)}: {why}")


def entity_list(obj: dict, ck: Checker, keys: tuple[str, str, str, str], inclusive: bool) -> list[RawEntity]:
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


def read_records(objs: Iterator[Any], record: Callable[[Any, Checker], Document | None], ck: Checker) -> Iterator[Document]:
    """The documents `record(obj, ck)` makes of the walker's objects (None: the record was skipped)."""
    for obj in objs:
        doc = record(obj, ck)
        if doc is not None:
            yield doc


def entity_list_record(obj: Any, ck: Checker, keys: tuple[str, str, str, str], inclusive: bool,
                       fmt: str) -> Document | None:
    """A ``{"text", "entities": [...], "id"?}`` record, the layout spans and CMeEE share (`keys`:
    the file's start/end/type/text names; `inclusive`: whether its end offsets are; `fmt`: the
    format's name, for messages)."""
    if not isinstance(obj, dict):
        ck.error("", "bad_record", f"expected a JSON object, got {type(obj).__name__}")
        return ck.finish(None, [])
    text = ck.text(obj)
    foreign_record(obj, ("entities",), fmt, ck)
    raws = entity_list(obj, ck, keys, inclusive=inclusive)
    return ck.finish(text, raws, obj.get("id"), extra_fields(obj, ("text", "entities", "id")))
