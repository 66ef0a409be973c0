"""lingshu spans: JSON lines ``{"text", "entities": [{"start", "end", "type"[, "text"][, "score"]}]}``,
end exclusive: lingshu's own layout (`Document.to_dict()`) and the default for predictions.
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
    json_lines,
    read_records,
    record_head,
    record_tail,
)

_SPANS_KEYS = ("start", "end", "type", "text")


def _spans_record(obj: Any, ck: Checker) -> Document | None:
    return entity_list_record(obj, ck, _SPANS_KEYS, inclusive=False, fmt="spans")


def read_spans(src: Source, ck: Checker) -> Iterator[Document]:
    """lingshu spans JSON lines (see module docstring)."""
    return read_records(json_lines(src, ck), _spans_record, ck)


def write_spans(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """JSON lines of `Document.to_dict()`: ``{"id"?, "text", "entities": [{"start", "end", "type",
    "text", "score"?}], "relations"?, "text_pair"?, "label"?, "label_scores"?}``, plus the input
    record's other fields."""
    for doc in docs:
        rec = record_head(doc)
        rec.update((k, v) for k, v in doc.to_dict().items() if k != "id")
        f.write(dumps(record_tail(rec, doc)) + "\n")
        s.documents += 1
        s.entities += len(rec["entities"])


FORMAT = Format("spans", "lingshu JSON lines, exclusive ends, optional score", read_spans, write_spans,
                frozenset({".jsonl"}))
