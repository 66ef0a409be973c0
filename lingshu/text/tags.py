"""The one tag codec lingshu has: spans <-> tags, for the models (BIOS over units) and for CoNLL
files (any of the schemes below), and IOBES for seqeval.

Encoding writes BIOS: `B-x` begins a multi-character entity, `I-x` continues it, `S-x` is a
one-character entity, `O` is outside. Tags cannot express nested entities: when spans overlap,
the longer one is kept (ties: the earlier) and the others are returned as dropped.

Decoding reads BIO (IOB2), BIOS, BIOES/IOBES, BMES, BILOU, spelled ``B-x`` or ``B_x``; prefixes
map onto four roles: begin (B), inside (I, M), end (E, L), single (S, U). Repair policy for
ill-formed sequences (each repair reported, the sequence kept): an inside or end tag that does
not continue an open entity of the same type - a stray ``I-x`` after ``O``, or ``I-y`` right
after ``B-x`` - starts a new entity of its own type there (a stray ``E-x`` is a one-character
entity). This reads IOB1 files correctly and keeps a model's near-miss as a span instead of
losing it. A ``B-x`` without a closing ``E-x`` is not flagged: it is valid BIO.
Our own rather than seqeval's `get_entities`: that one does not report the repairs it makes
(CoNLL readers must) and does not read BMES/BILOU.
"""

from __future__ import annotations

import re

_ROLE = {"B": "B", "I": "I", "M": "I", "E": "E", "L": "E", "S": "S", "U": "S"}
_TAG = re.compile(r"([BIMELSU])[-_](.+)")


def parse_tag(tag: str) -> tuple[str, str | None] | None:
    """Split a tag into (role, type).

    Args:
        tag: e.g. ``"B-dis"``, ``"I_sym"``, ``"O"``.

    Returns:
        ``("O", None)`` for outside, ``(role, type)`` with role in B/I/E/S, or None when the tag
        is not in any supported scheme.
    """
    if tag == "O":
        return ("O", None)
    m = _TAG.fullmatch(tag)
    if not m:
        return None
    return (_ROLE[m.group(1)], m.group(2))


def decode_tags(tags: list[str]) -> tuple[list[tuple[int, int, str]], list[tuple[int, str]]]:
    """Decode tags to spans, repairing ill-formed sequences.

    Args:
        tags: one tag per token; every tag must be parseable by `parse_tag`.

    Returns:
        (spans, repairs): spans as (start, end, type) in token indices, end exclusive; repairs
        as (token index, message), one per repaired tag.
    """
    spans: list[tuple[int, int, str]] = []
    repairs: list[tuple[int, str]] = []
    start: int | None = None  # the open entity, if any
    typ: str | None = None

    def close(end: int) -> None:
        nonlocal start, typ
        if start is not None:
            spans.append((start, end, typ))
        start, typ = None, None

    for i, tag in enumerate(tags):
        role, t = parse_tag(tag)
        continues = start is not None and t == typ
        if role in ("I", "E") and not continues:
            if start is None:
                repairs.append((i, f"{tag} does not continue an entity; it starts a new {t} entity"))
            else:
                repairs.append((i, f"{tag} follows a {typ} entity (type change); it starts a new {t} entity"))
            close(i)
            start, typ = i, t
            if role == "E":
                close(i + 1)
            continue
        if role == "I":
            continue
        if role == "E":
            close(i + 1)
            continue
        close(i)  # B, S and O all end whatever is open
        if role == "B":
            start, typ = i, t
        elif role == "S":
            spans.append((i, i + 1, t))
    close(len(tags))
    return spans, repairs



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
    """BIOS tags (a model's output) -> inclusive spans, by `decode_tags`'s policy: a stray `I-x`
    (no open `x` entity) starts a new entity, so a near-miss still yields a span."""
    return [(s, e - 1, t) for s, e, t in decode_tags(tags)[0]]


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
