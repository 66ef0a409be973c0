"""CMeEE (CBLUE): one JSON list ``[{"text", "entities": [{"start_idx", "end_idx", "type", "entity"}]}]``,
end inclusive, nested entities allowed; each record's line is where its ``{`` starts.
"""

from __future__ import annotations

from typing import IO, Any, Iterable, Iterator

from lingshu.data.base import (
    Checker,
    Document,
    Format,
    Source,
    WriteSummary,
    dumps,
    entity_list_record,
    json_list,
    read_records,
    record_head,
    record_tail,
)

_CMEEE_KEYS = ("start_idx", "end_idx", "type", "entity")


def _cmeee_record(obj: Any, ck: Checker) -> Document | None:
    return entity_list_record(obj, ck, _CMEEE_KEYS, inclusive=True, fmt="cmeee")


def read_cmeee(src: Source, ck: Checker) -> Iterator[Document]:
    """CMeEE: one JSON list of records; each record's line is where its ``{`` starts
    (see `lingshu.data.jsonio.json_list`)."""
    return read_records(json_list(src, ck), _cmeee_record, ck)


def write_cmeee(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """A CMeEE JSON list, one record per line (valid JSON, streamable, and diffable)."""
    f.write("[\n")
    for doc in docs:
        rec = record_head(doc)
        rec["text"] = doc.text
        rec["entities"] = [
            {"start_idx": e.start, "end_idx": e.end - 1, "type": e.type, "entity": doc.text[e.start : e.end]}
            for e in doc.ents
        ]
        f.write(("  " if s.documents == 0 else ",\n  ") + dumps(record_tail(rec, doc)))
        s.documents += 1
        s.entities += len(doc.entities)
    f.write("\n]\n")


FORMAT = Format("cmeee", "CMeEE JSON list, inclusive ends, nested allowed", read_cmeee, write_cmeee)
