"""BIOS tagging over units: encode spans to tags, decode tags to spans, convert for seqeval.

BIOS: `B-x` begins a multi-character entity, `I-x` continues it, `S-x` is a one-character
entity, `O` is outside. Tags cannot express nested entities: when spans overlap, the longer one
is kept (ties: the earlier) and the others are counted as lost.
"""

from __future__ import annotations


def spans_to_bios(n: int, spans: list[tuple[int, int, str]]) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Inclusive unit spans -> BIOS tags of length n, plus the spans that had to be dropped."""
    tags = ["O"] * n
    dropped = []
    for s, e, t in sorted(set(spans), key=lambda x: (-(x[1] - x[0]), x[0], x[2])):
        if any(tags[i] != "O" for i in range(s, e + 1)):
            dropped.append((s, e, t))
            continue
        if s == e:
            tags[s] = f"S-{t}"
        else:
            tags[s] = f"B-{t}"
            for i in range(s + 1, e + 1):
                tags[i] = f"I-{t}"
    return tags, dropped


def bios_to_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """BIOS tags -> inclusive spans. A stray `I-x` (no open `x` entity) starts a new entity,
    so a model's near-miss still yields a span rather than nothing."""
    spans = []
    start, typ = None, None
    for i, tag in enumerate(tags):
        p, _, t = tag.partition("-")
        if p in ("B", "S", "O") or (p == "I" and t != typ):
            if start is not None:
                spans.append((start, i - 1, typ))
                start, typ = None, None
        if p == "S":
            spans.append((i, i, t))
        elif p == "B" or (p == "I" and start is None):
            start, typ = i, t
    if start is not None:
        spans.append((start, len(tags) - 1, typ))
    return spans


def bios_to_iobes(tags: list[str]) -> list[str]:
    """BIOS -> IOBES (an `I-x` that ends an entity becomes `E-x`), for seqeval's strict mode."""
    out = []
    for i, tag in enumerate(tags):
        nxt = tags[i + 1] if i + 1 < len(tags) else "O"
        if tag.startswith("I-") and nxt != tag:
            out.append("E-" + tag[2:])
        else:
            out.append(tag)
    return out
