"""CMeIE (CBLUE medical SPO extraction): read triples, place their arguments, write them back.

Layouts (JSON lines, one record a line; both read, each record written back in its own):

- ``nested`` (CBLUE's, also its submission layout)::

    {"text", "spo_list": [{"Combined", "predicate", "subject", "subject_type",
                           "object": {"@value"}, "object_type": {"@value"}}]}

- ``flat``: ``object`` and ``object_type`` are plain strings, and ``subject_start_idx`` /
  ``object_start_idx`` (character start of the argument) may be given.

Each record becomes a `Document` whose ``relations`` are the triples and whose ``entities``
are the arguments found in the text (one entity per distinct (start, end, type)). CMeIE gives
argument strings, not positions, so each argument is placed by this policy:

1. ``*_start_idx`` when present and ``text[idx:idx+len(string)] == string``. A start index that
   is not an integer or does not match is reported (warning ``start_idx_mismatch`` on that
   field) and the argument is placed as if it had none.
2. A string that occurs once in the text: that occurrence.
3. A string that occurs several times (overlapping occurrences included): of all pairs
   (subject occurrence, object occurrence), the pair with the smallest gap between the two
   spans (characters between them; 0 when they touch or overlap); a pair using one identical
   span for both arguments only when there is no other pair; ties -> the earliest pair (by
   its first start, then the subject's start). An argument fixed by rule 1 or 2 stays fixed
   and the other is placed closest to it. These arguments are counted in
   `ValidationReport.mentions_ambiguous`.
4. A string that does not occur in the text: the triple is kept (gold triples must count in
   evaluation, which compares strings) with that argument at ``start = end = -1`` and not in
   ``Document.entities``; a warning ``argument_not_in_text`` names the field, and such triples
   are counted in `ValidationReport.relations_unlocated`. The other argument, if found, is
   placed at its earliest occurrence.

Checks: a record without a usable "text", a "spo_list" that is not a list, a triple that is not
an object, a missing or empty (or non-string) predicate / subject / subject_type / object /
object_type, a "Combined" that is not true/false, or a predicate outside ``labels`` (when
given: for this format ``labels`` are the allowed predicates) is an error that skips the record
(raises with ``strict=True``). An exact duplicate triple is dropped with a warning
``duplicate_relation`` (counted in `ValidationReport.relations_dropped`). A record without
"spo_list" (a test file) has no triples.

Kept: "id"; the record's other fields in ``meta``; the layout in ``meta["lingshu.layout"]``.
Not kept: unknown fields inside a triple, and start indices in the nested layout (the writer
writes the CBLUE layout, which has none).
"""

from __future__ import annotations

import bisect
from typing import IO, Any, Iterable, Iterator

from lingshu.data.base import (
    LAYOUT,
    Checker,
    Format,
    Source,
    WriteSummary,
    dumps,
    foreign_record,
    json_lines,
    record_head,
    record_tail,
)
from lingshu.schema import UNLOCATED, Document, Entity, Relation

NESTED = "nested"
FLAT = "flat"


def occurrences(text: str, s: str) -> list[int]:
    """Start offsets of every occurrence of `s` in `text`, overlapping ones included."""
    out = []
    i = text.find(s)
    while i >= 0:
        out.append(i)
        i = text.find(s, i + 1)
    return out


def _gap(a: int, la: int, b: int, lb: int) -> int:
    return max(0, max(a, b) - min(a + la, b + lb))


def place(
    text: str,
    subject: str,
    object: str,
    subject_start: int | None = None,
    object_start: int | None = None,
) -> tuple[int, int, bool, bool]:
    """Where a triple's arguments are in `text`, by the policy in the module docstring.

    Args:
        text: the record's text.
        subject, object: the argument strings (non-empty).
        subject_start, object_start: a start index already checked to match, or None.

    Returns:
        (subject start, object start, subject was ambiguous, object was ambiguous); a start is
        -1 when the string does not occur. "Ambiguous" means the string occurs several times
        and the policy chose the occurrence.
    """
    S = [subject_start] if subject_start is not None else occurrences(text, subject)
    O = [object_start] if object_start is not None else occurrences(text, object)
    s_amb, o_amb = len(S) > 1, len(O) > 1
    if not S or not O:
        return (S[0] if S else UNLOCATED, O[0] if O else UNLOCATED, s_amb, o_amb)
    if len(S) == 1 and len(O) == 1:
        return S[0], O[0], False, False
    ls, lo = len(subject), len(object)
    # The brute-force minimum over all pairs is quadratic in repeated strings (a 30 KB record of
    # one repeated character: 60 s). For one subject start s, an object that touches or overlaps
    # it (o in [s - lo, s + ls]) has gap 0; any other is dominated by the nearest one on its side
    # (same key but a larger gap). So those candidates give the same minimum.
    best = None
    for s in S:
        lo_i = bisect.bisect_left(O, s - lo)
        hi_i = bisect.bisect_right(O, s + ls)
        cand = O[max(lo_i - 1, 0) : hi_i + 1]
        for o in cand:
            key = ((s == o and ls == lo), _gap(s, ls, o, lo), min(s, o), s, o)
            if best is None or key < best:
                best = key
    return best[3], best[4], s_amb, o_amb


def _str_field(spo: dict, key: str, f: str, ck: Checker, nested: bool | None) -> str | None:
    """A non-empty string field of a triple (``{"@value": ...}`` unwrapped for nested objects)."""
    if key not in spo:
        ck.error(f"{f}.{key}", "missing_field", f'the triple has no "{key}"')
        return None
    v = spo[key]
    path = f"{f}.{key}"
    if isinstance(v, dict) and nested is not False:
        if "@value" not in v:
            ck.error(path, "missing_field", 'expected {"@value": ...}')
            return None
        v = v["@value"]
        path += ".@value"
    if not isinstance(v, str):
        ck.error(path, "bad_field", f"expected a string, got {type(v).__name__}")
        return None
    if not v.strip():
        ck.error(path, "empty_field", "the string is empty")
        return None
    if ck.bad_unicode(path, v, "string"):
        return None
    return v


def _start_idx(spo: dict, key: str, f: str, text: str, s: str, ck: Checker) -> int | None:
    """A ``*_start_idx`` that matches the string, or None (a mismatch is warned about)."""
    if key not in spo or spo[key] is None:
        return None
    v = spo[key]
    if type(v) is not int:
        ck.warning(f"{f}.{key}", "start_idx_mismatch", f"{v!r} is not an integer; placed by search instead")
        return None
    if v < 0 or text[v : v + len(s)] != s:
        found = text[max(v, 0) : max(v, 0) + len(s)]
        ck.warning(f"{f}.{key}", "start_idx_mismatch",
                   f"{s!r} is not at {v} (text there: {found!r}); placed by search instead")
        return None
    return v


def _record(obj: Any, ck: Checker) -> Document | None:
    if not isinstance(obj, dict):
        ck.error("", "bad_record", f"expected a JSON object, got {type(obj).__name__}")
        return ck.finish(None, [])
    text = ck.text(obj)
    foreign_record(obj, ("spo_list",), "cmeie", ck)
    spos = obj.get("spo_list")
    if spos is None:
        spos = []
    elif not isinstance(spos, list):
        ck.error("spo_list", "bad_field", f"expected a list of triples, got {type(spos).__name__}")
        spos = []
    layout: str | None = None
    relations: list[Relation] = []
    located: list[Entity] = []
    seen: dict[Relation, str] = {}
    unlocated = ambiguous = dropped = 0
    for i, spo in enumerate(spos):
        f = f"spo_list[{i}]"
        if not isinstance(spo, dict):
            ck.error(f, "bad_field", f"expected an object, got {type(spo).__name__}")
            continue
        nested = isinstance(spo.get("object"), dict) or isinstance(spo.get("object_type"), dict)
        layout = layout or (NESTED if nested else FLAT)
        pred = _str_field(spo, "predicate", f, ck, False)
        subj = _str_field(spo, "subject", f, ck, False)
        styp = _str_field(spo, "subject_type", f, ck, False)
        obj_ = _str_field(spo, "object", f, ck, nested)
        otyp = _str_field(spo, "object_type", f, ck, nested)
        combined = spo.get("Combined")
        if combined is not None and not isinstance(combined, bool):
            ck.error(f"{f}.Combined", "bad_field", f"{combined!r} is not true/false")
            continue
        if None in (pred, subj, styp, obj_, otyp) or text is None:
            continue
        if ck.labels is not None and pred not in ck.labels:
            ck.error(f"{f}.predicate", "unknown_label", f"{pred!r} is not one of the allowed predicates")
            continue
        s0 = _start_idx(spo, "subject_start_idx", f, text, subj, ck)
        o0 = _start_idx(spo, "object_start_idx", f, text, obj_, ck)
        s, o, s_amb, o_amb = place(text, subj, obj_, s0, o0)
        ambiguous += s_amb + o_amb
        se = Entity(s, s + len(subj) if s >= 0 else UNLOCATED, styp, subj)
        oe = Entity(o, o + len(obj_) if o >= 0 else UNLOCATED, otyp, obj_)
        for e, key in ((se, "subject"), (oe, "object")):
            if e.start == UNLOCATED:
                ck.warning(f"{f}.{key}", "argument_not_in_text",
                           f"{e.text!r} does not occur in the text; triple kept with start=end=-1")
            else:
                located.append(e)
        rel = Relation(se, pred, oe, combined)
        if rel in seen:
            ck.warning(f, "duplicate_relation", f"same triple as {seen[rel]}; copy dropped")
            dropped += 1
            continue
        seen[rel] = f
        relations.append(rel)
        unlocated += not rel.located
    meta = {k: v for k, v in obj.items() if k not in ("text", "spo_list", "id")}
    if layout is not None:
        meta[LAYOUT] = layout
    doc = ck.finish(text, [], obj.get("id"), meta, located=located, relations=relations)
    if doc is not None:
        r = ck.report
        r.relations += len(relations)
        r.relations_dropped += dropped
        r.relations_unlocated += unlocated
        r.mentions_ambiguous += ambiguous
    return doc


def read_cmeie(src: Source, ck: Checker) -> Iterator[Document]:
    """CMeIE JSON lines, nested or flat (see module docstring)."""
    for obj in json_lines(src, ck):
        doc = _record(obj, ck)
        if doc is not None:
            yield doc


def triple_record(rel: Relation, layout: str = NESTED) -> dict[str, Any]:
    """One ``spo_list`` entry in the given layout (nested: CBLUE's; flat: plain strings plus
    start indices of located arguments)."""
    s, o = rel.subject, rel.object
    if layout == FLAT:
        d: dict[str, Any] = {}
        if rel.combined is not None:
            d["Combined"] = rel.combined
        d.update(predicate=rel.predicate, subject=s.text, subject_type=s.type, object=o.text, object_type=o.type)
        if s.start >= 0:
            d["subject_start_idx"] = s.start
        if o.start >= 0:
            d["object_start_idx"] = o.start
        return d
    return {
        "Combined": bool(rel.combined) if rel.combined is not None else False,
        "predicate": rel.predicate,
        "subject": s.text,
        "subject_type": s.type,
        "object": {"@value": o.text},
        "object_type": {"@value": o.type},
    }


def write_cmeie(docs: Iterable[Document], f: IO[str], summary: WriteSummary) -> None:
    """CMeIE JSON lines, each record in the layout it was read in (nested by default)."""
    for doc in docs:
        layout = doc.meta.get(LAYOUT, NESTED)
        rec = record_head(doc)
        rec["text"] = doc.text
        rec["spo_list"] = [triple_record(r, layout) for r in doc.relations]
        f.write(dumps(record_tail(rec, doc)) + "\n")
        summary.documents += 1
        summary.relations += len(doc.relations)


FORMAT = Format("cmeie", "CMeIE JSON lines, spo_list triples (relation extraction)", read_cmeie, write_cmeie)
