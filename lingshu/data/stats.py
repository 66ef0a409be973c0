"""Corpus statistics: sizes, lengths, entity types, nesting.

Pairs of entities in one document are classified by their spans (end exclusive):

- ``same_span``: identical span, different type (e.g. one mention typed twice);
- ``nested``: one span lies fully inside the other, spans differ;
- ``overlapping``: the spans overlap but neither contains the other (crossing).

Flat taggers (BIO/CRF) can express none of these; span-based decoders (GlobalPointer) can.
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
        ``texts_with_overlap``.
    """
    lengths, per_text, ent_lengths = [], [], []
    types: Counter = Counter()
    pairs: Counter = Counter()
    with_overlap = 0
    for doc in docs:
        lengths.append(len(doc.text))
        per_text.append(len(doc.entities))
        for e in doc.entities:
            types[e.type] += 1
            ent_lengths.append(e.end - e.start)
        p = _pairs(doc)
        pairs.update(p)
        with_overlap += bool(p)
    return {
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
    lines = [
        f"records {stats['records']:,}   chars {stats['chars']:,}   entities {stats['entities']:,}   "
        f"texts without entities {stats['texts_without_entities']:,}",
        "",
        f"{'':<18}" + "".join(f"{k:>10}" for k in _COLS),
        row("text length", stats["text_length"]),
        row("entities/text", stats["entities_per_text"]),
        row("entity length", stats["entity_length"]),
        "",
        f"{'type':<18}{'count':>10}{'share':>10}",
    ]
    for t, c in stats["entities_per_type"].items():
        lines.append(f"{t:<18}{c:>10,}{c / n_ent:>10.1%}")
    lines += [
        "",
        f"entity pairs: nested {stats['nested']:,}, overlapping (crossing) {stats['overlapping']:,}, "
        f"same span {stats['same_span']:,}; texts with any overlap {stats['texts_with_overlap']:,}",
    ]
    return "\n".join(lines)


_COLS = ("min", "mean", "median", "p95", "max")
