"""Turn one raw record into a `Document` or a counted skip.

Format readers only pull raw values out of their layout (`RawEntity`); the checks live here,
once, so every format reports problems the same way.

Skip policy (the whole record, not just the entity): an error anywhere in a record - bad text,
an offset that is not an integer or out of range, start after end, entity text that does not
match ``text[start:end]``, a label outside the allowed set, an overlap when overlaps are not
allowed - skips the record, so nothing half-right is trained on (a record missing one of its
entities teaches the model that the mention is not an entity). Warnings keep the record:
overlapping/nested spans (legitimate in CMeEE), duplicates (the copy is dropped), empty spans
(dropped: they mark nothing), repaired CoNLL tags. Everything is counted in the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Collection

from lingshu.data.report import ERROR, WARNING, DataError, Problem, ValidationReport
from lingshu.data.source import LONE_SURROGATE
from lingshu.schema import Document, Entity


@dataclass(slots=True)
class RawEntity:
    """An entity as the file states it, before any check.

    Field paths for messages are built only when a problem is reported (`where`), because
    formatting them for every entity of a 10 MB file costs more than the checks.
    """

    field: str  # e.g. "entities[2]"
    start: Any
    end: Any
    type: Any
    text: Any = None  # None: the format carries no entity text to check
    score: Any = None
    inclusive: bool = False  # True: the file's end offset is inclusive (CLUENER, CMeEE)
    keys: tuple = (".start", ".end", ".type", ".text")  # suffixes of `field` per part
    type_field: str | None = None  # absolute paths where the part is not under `field`
    text_field: str | None = None
    line: int | None = None  # where to point problems, when not the record's line (CoNLL)

    def where(self, part: int) -> str:
        """Field path of part 0 start, 1 end, 2 type, 3 text, 4 score."""
        if part == 2 and self.type_field is not None:
            return self.type_field
        if part == 3 and self.text_field is not None:
            return self.text_field
        return self.field + (self.keys[part] if part < 4 else ".score")


class AnyLabel(frozenset):
    """An allowed-label set that allows every label: for prediction input, whose gold labels are
    ignored (`read_documents(path, labels=AnyLabel())` keeps a KUAKE-QQR record labelled "NA")."""

    def __contains__(self, item) -> bool:
        return True


class Checker:
    """Validates records of one file and fills its `ValidationReport`.

    Args:
        file: the file name used in problems.
        report: the report to fill.
        strict: raise `DataError` on the first error instead of skipping.
        labels: allowed entity types, or None to accept any.
        allow_overlap: False makes overlapping entities an error.
    """

    def __init__(
        self,
        file: str,
        report: ValidationReport,
        strict: bool = False,
        labels: Collection[str] | None = None,
        allow_overlap: bool = True,
    ):
        self.file = file
        self.report = report
        self.strict = strict
        self.labels = labels if isinstance(labels, AnyLabel) else set(labels) if labels is not None else None
        self.allow_overlap = allow_overlap
        self.line = 0
        self.raw: str | None = None  # the current record's text in the file, when the reader has it
        self._errors = 0  # errors in the current record
        self._problems: list[Problem] = []  # and the errors themselves
        self._types_seen: set[str] = set()  # entity types already checked for valid Unicode

    def begin(self, line: int, raw: str | None = None) -> None:
        """Start a record at the given 1-based line; `raw` is its text in the file, when the
        reader has it (for the rejects of `ValidationReport.on_reject`)."""
        self.line = line
        self.raw = raw
        self._errors = 0
        self._problems: list[Problem] = []
        self.dropped = 0  # entities of the current record dropped by a warning
        self.report.records_read += 1

    def error(self, field: str, kind: str, message: str, line: int | None = None) -> None:
        """Report an error in the current record (raises when strict)."""
        p = Problem(self.file, line or self.line, field, kind, message, ERROR)
        self.report.add(p)
        self._errors += 1
        self._problems.append(p)
        if self.strict:
            raise DataError(p)

    def file_error(self, line: int, kind: str, message: str) -> None:
        """Report an error in the file's structure that belongs to no record (a missing ``,``
        between records, data after a list's end); counted as an error, raises when strict."""
        p = Problem(self.file, line, "", kind, message, ERROR)
        self.report.add(p)
        if self.strict:
            raise DataError(p)
        if self.report.on_reject is not None:
            self.report.on_reject(line, [p], None)

    def bad_unicode(self, field: str, value: str, what: str = "text") -> bool:
        """Report a string holding a lone surrogate (an invalid ``\\udXXX`` escape: not Unicode,
        so it cannot be tokenized or written as UTF-8); True when it does."""
        m = LONE_SURROGATE.search(value)
        if m is None:
            return False
        self.error(field, "bad_unicode", f"the {what} holds a lone surrogate U+{ord(m.group()):04X} at "
                   f"character {m.start()}, which is not valid Unicode")
        return True

    def warning(self, field: str, kind: str, message: str, line: int | None = None) -> None:
        """Report a warning in the current record; the record is kept."""
        self.report.add(Problem(self.file, line or self.line, field, kind, message, WARNING))

    def text(self, obj: dict, field: str = "text") -> str | None:
        """The record's text, or None after reporting why it is unusable."""
        if field not in obj:
            self.error(field, "missing_text", f'the record has no "{field}" field')
            return None
        text = obj[field]
        if not isinstance(text, str):
            self.error(field, "bad_text", f"expected a string, got {type(text).__name__}")
            return None
        if not text.strip():
            self.error(field, "empty_text", "the text is empty")
            return None
        if self.bad_unicode(field, text):
            return None
        return text

    def finish(
        self,
        text: str | None,
        raws: list[RawEntity],
        id: Any = None,
        meta: dict | None = None,
        *,
        located: list[Entity] | None = None,
        **fields: Any,
    ) -> Document | None:
        """Check the entities and build the document, or count the record as skipped.

        Args:
            text: the record's text (None if it was unusable; then the record is skipped).
            raws: the record's entities as stated in the file.
            id: the record's id, if any (kept as a string; a non-string id goes to meta["id"]
                so writers restore its type).
            meta: other fields of the record, kept for writers.
            located: entities the reader has already placed and checked itself (relation
                arguments found by search); added after `raws`' entities, a (start, end,
                type) already present is not added twice. No overlap check: these mentions
                come from triples, where overlap is normal.
            fields: further `Document` fields (relations, text_pair, label, label_scores).

        Returns:
            The document, or None when the record had an error.
        """
        meta = dict(meta or {})
        ents: list[tuple[Entity, str]] = []
        if text is not None:
            ents = self._entities(text, raws)
            ents = self._overlaps(ents)
        if text is None or self._errors:
            self.report.records_skipped += 1
            if self.report.on_reject is not None:
                self.report.on_reject(self.line, self._problems, self.raw)
            return None
        if id is not None and not isinstance(id, str):
            meta["id"] = id
            id = str(id)
        entities = [e for e, _ in ents]
        if located:
            seen = {e.key for e in entities}
            for e in located:
                if e.key not in seen:
                    seen.add(e.key)
                    entities.append(e)
        self.report.records_kept += 1
        self.report.entities += len(entities)
        self.report.entities_dropped += self.dropped
        return Document(
            text=text,
            entities=entities,
            id=id,
            meta=meta,
            source=f"{self.file}:{self.line}",
            **fields,
        )

    def _entities(self, text: str, raws: list[RawEntity]) -> list[tuple[Entity, str]]:
        n = len(text)
        out: list[tuple[Entity, str]] = []
        seen: dict[tuple[int, int, str], str] = {}
        for r in raws:
            # `type(v) is int` rejects bool (an int subclass): true/false as offsets is an error.
            if type(r.start) is not int or type(r.end) is not int or type(r.type) is not str or not r.type:
                for part, v in ((0, r.start), (1, r.end)):
                    if type(v) is not int:
                        self.error(r.where(part), "bad_offset", f"{v!r} is not an integer", r.line)
                if not isinstance(r.type, str) or not r.type:
                    self.error(r.where(2), "bad_type", f"{r.type!r} is not an entity type", r.line)
                continue
            if r.type not in self._types_seen:
                if self.bad_unicode(r.where(2), r.type, "entity type"):
                    continue
                self._types_seen.add(r.type)
            s = r.start
            end = r.end + 1 if r.inclusive else r.end  # exclusive end, our convention
            if s < 0:
                self.error(r.where(0), "offset_out_of_range", f"{s} is negative", r.line)
                continue
            if end > n:
                self.error(r.where(1), "offset_out_of_range", f"{r.end} is beyond the text length {n}", r.line)
                continue
            if s > end:
                self.error(r.where(1), "start_after_end", f"end {r.end} is before start {s}", r.line)
                continue
            if self.labels is not None and r.type not in self.labels:
                self.error(r.where(2), "unknown_label", f"{r.type!r} is not one of the allowed labels", r.line)
                continue
            span = text[s:end]
            if r.text is not None and r.text != span:
                msg = f"{r.text!r} does not match text[{s}:{end}] = {span!r}"
                self.error(r.where(3), "text_mismatch", msg, r.line)
                continue
            if s == end:
                # CMeEE train has two of these (end_idx = start_idx - 1, entity ""): they mark
                # nothing, so they go, counted.
                self.warning(r.where(1), "empty_entity", f"empty span at {s}; entity dropped", r.line)
                self.dropped += 1
                continue
            score = None
            if r.score is not None:
                if isinstance(r.score, bool) or not isinstance(r.score, (int, float)) or not math.isfinite(r.score):
                    self.error(r.where(4), "bad_field", f"{r.score!r} is not a finite number", r.line)
                    continue
                score = float(r.score)
            key = (s, end, r.type)
            if key in seen:
                self.warning(r.field, "duplicate_entity", f"same span and type as {seen[key]}; copy dropped", r.line)
                self.dropped += 1
                continue
            seen[key] = r.field
            out.append((Entity(s, end, r.type, span, score), r.field))
        return out

    def _overlaps(self, ents: list[tuple[Entity, str]]) -> list[tuple[Entity, str]]:
        # One sweep over entities sorted by start, keeping the entity that reaches furthest so
        # far: an entity that starts before it ends overlaps it. One problem per overlapping
        # entity (naming the one it overlaps), so 3,000 mentions of one span cost 3,000 lines,
        # not 4.5 million.
        order = sorted(ents, key=lambda x: (x[0].start, -x[0].end))
        report = self.warning if self.allow_overlap else self.error
        reach: tuple[Entity, str] | None = None
        for b, bf in order:
            if reach is not None and b.start < reach[0].end:
                a, af = reach
                rel = "is nested in" if b.end <= a.end else "crosses"
                report(bf, "overlap", f"{b.start}-{b.end} {b.type} {rel} {af} ({a.start}-{a.end} {a.type})")
            if reach is None or b.end > reach[0].end:
                reach = (b, bf)
        return ents
