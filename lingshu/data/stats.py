"""Corpus statistics: sizes, lengths, entity types, nesting.

Pairs of entities in one document are classified by their spans (end exclusive):

- ``same_span``: identical span, different type (e.g. one mention typed twice);
- ``nested``: one span lies fully inside the other, spans differ;
- ``overlapping``: the spans overlap but neither contains the other (crossing).

Flat taggers (BIO/CRF) can express none of these; span-based decoders (GlobalPointer) can.

Relation corpora (documents with ``relations``) add triple counts per predicate and the number
of triples with an argument not found in the text; sentence-pair corpora (documents with
``label`` or ``text_pair``) add the label distribution and the second text's lengths.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Iterable

from lingshu.schema import Document


def _dist(values: list[int]) -> dict[str, float]:
    """min/mean/median/p95/max; p95 by nearest rank (a value that occurs in the data)."""
    if not values:
        return {"min": 0, "mean": 0.0, "median": 0.0, "p95": 0, "max": 0}
    v = sorted(values)
    return {
        "min": v[0],
        "mean": round(statistics.fmean(v), 2),
        "median": statistics.median(v),
        "p95": v[max(0, math.ceil(0.95 * len(v)) - 1)],
        "max": v[-1],
    }


def _pairs(doc: Document) -> Counter:
    c: Counter = Counter()
    ents = sorted(set(e.key for e in doc.entities), key=lambda k: (k[0], -k[1]))
    for i, (s1, e1, _) in enumerate(ents):
        for s2, e2, _ in ents[i + 1 :]:
            if s2 >= e1:  # sorted by start: nothing later can overlap
                break
            if (s1, e1) == (s2, e2):
                c["same_span"] += 1
            elif e2 <= e1:  # s1 <= s2 by sort order
                c["nested"] += 1
            else:
                c["overlapping"] += 1
    return c


def corpus_stats(docs: Iterable[Document]) -> dict:
    """Statistics of a set of documents.

    Args:
        docs: the documents (consumed once).

    Returns:
        A dict with ``records``, ``chars``, ``text_length`` (min/mean/median/p95/max),
        ``entities``, ``entities_per_type`` (type -> count, most frequent first),
        ``entity_length`` and ``entities_per_text`` (distributions), ``texts_without_entities``,
        ``nested``, ``overlapping``, ``same_span`` (entity pair counts, see module docstring) and
        ``texts_with_overlap``. When any document has relations, also ``relations``,
        ``relations_per_predicate`` (most frequent first), ``relations_per_text``,
        ``texts_without_relations`` and ``relations_unlocated`` (triples with an argument at
        start -1). When any has a label or text_pair, also ``labels`` (label -> count, most
        frequent first), ``unlabelled`` and ``text_pair_length``.
    """
    lengths, per_text, ent_lengths = [], [], []
    types: Counter = Counter()
    pairs: Counter = Counter()
    with_overlap = 0
    rel_per_text: list[int] = []
    predicates: Counter = Counter()
    unlocated = 0
    labels: Counter = Counter()
    unlabelled = 0
    pair_lengths: list[int] = []
    has_rel = has_pair = False
    for doc in docs:
        lengths.append(len(doc.text))
        per_text.append(len(doc.entities))
        rel_per_text.append(len(doc.relations))
        if doc.relations:
            has_rel = True
            for r in doc.relations:
                predicates[r.predicate] += 1
                unlocated += not r.located
        if doc.label is not None or doc.text_pair is not None:
            has_pair = True
            if doc.label is None:
                unlabelled += 1
            else:
                labels[doc.label] += 1
            if doc.text_pair is not None:
                pair_lengths.append(len(doc.text_pair))
        for e in doc.entities:
            types[e.type] += 1
            ent_lengths.append(e.end - e.start)
        p = _pairs(doc)
        pairs.update(p)
        with_overlap += bool(p)
    out = {
        "records": len(lengths),
        "chars": sum(lengths),
        "text_length": _dist(lengths),
        "entities": sum(per_text),
        "entities_per_type": dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))),
        "entity_length": _dist(ent_lengths),
        "entities_per_text": _dist(per_text),
        "texts_without_entities": sum(1 for n in per_text if n == 0),
        "nested": pairs["nested"],
        "overlapping": pairs["overlapping"],
        "same_span": pairs["same_span"],
        "texts_with_overlap": with_overlap,
    }
    if has_rel:
        out.update(
            relations=sum(predicates.values()),
            relations_per_predicate=_by_count(predicates),
            relations_per_text=_dist(rel_per_text),
            texts_without_relations=sum(1 for n in rel_per_text if n == 0),
            relations_unlocated=unlocated,
        )
    if has_pair:
        out.update(
            labels=_by_count(labels),
            unlabelled=unlabelled,
            text_pair_length=_dist(pair_lengths),
        )
    return out


def _by_count(c: Counter) -> dict:
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def format_stats(stats: dict) -> str:
    """A readable table of `corpus_stats` output.

    Args:
        stats: the dict from `corpus_stats`.

    Returns:
        Multi-line text, without a trailing newline.
    """

    def row(name: str, d: dict) -> str:
        return f"{name:<18}" + "".join(f"{d[k]:>10,}" if isinstance(d[k], int) else f"{d[k]:>10,.1f}" for k in _COLS)

    n_ent = stats["entities"] or 1
    # A pair corpus has no entities: its entity rows would only say 0.
    show_ents = stats["entities"] > 0 or "labels" not in stats
    if show_ents:
        lines = [
            f"records {stats['records']:,}   chars {stats['chars']:,}   entities {stats['entities']:,}   "
            f"texts without entities {stats['texts_without_entities']:,}",
        ]
    else:
        lines = [f"records {stats['records']:,}   chars {stats['chars']:,} (first texts)"]
    lines += ["", f"{'':<18}" + "".join(f"{k:>10}" for k in _COLS), row("text length", stats["text_length"])]
    if "text_pair_length" in stats:
        lines.append(row("text_pair length", stats["text_pair_length"]))
    if show_ents:
        lines += [row("entities/text", stats["entities_per_text"]), row("entity length", stats["entity_length"])]
    if "relations" in stats:
        lines.append(row("relations/text", stats["relations_per_text"]))
    if show_ents:
        lines += ["", f"{'type':<18}{'count':>10}{'share':>10}"]
        for t, c in stats["entities_per_type"].items():
            lines.append(f"{_pad(t, 18)}{c:>10,}{c / n_ent:>10.1%}")
        lines += [
            "",
            f"entity pairs: nested {stats['nested']:,}, overlapping (crossing) {stats['overlapping']:,}, "
            f"same span {stats['same_span']:,}; texts with any overlap {stats['texts_with_overlap']:,}",
        ]
    if "relations" in stats:
        n_rel = stats["relations"] or 1
        lines += [
            "",
            f"relations {stats['relations']:,}   texts without relations {stats['texts_without_relations']:,}   "
            f"triples with an argument not in the text {stats['relations_unlocated']:,}",
            "",
            f"{'predicate':<18}{'count':>10}{'share':>10}",
        ]
        for p, c in stats["relations_per_predicate"].items():
            lines.append(f"{_pad(p, 18)}{c:>10,}{c / n_rel:>10.1%}")
    if "labels" in stats:
        n_lab = sum(stats["labels"].values()) or 1
        lines += ["", f"{'label':<18}{'count':>10}{'share':>10}"]
        for t, c in stats["labels"].items():
            lines.append(f"{_pad(t, 18)}{c:>10,}{c / n_lab:>10.1%}")
        lines.append(f"{'(unlabelled)':<18}{stats['unlabelled']:>10,}")
    return "\n".join(lines)


def _pad(s: str, width: int) -> str:
    """Left-justify to a display width, counting CJK characters as two columns."""
    w = sum(2 if ord(ch) > 0x2E7F else 1 for ch in s)
    return s + " " * max(1, width - w)


_COLS = ("min", "mean", "median", "p95", "max")
