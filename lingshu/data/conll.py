"""CoNLL-style tag sequences: parse a tag, decode tags to spans (with repair), encode BIOS.

Schemes read: BIO (IOB2), BIOS, BIOES/IOBES, BMES, BILOU, spelled ``B-x`` or ``B_x``.
Prefixes map onto four roles: begin (B), inside (I, M), end (E, L), single (S, U).

Repair policy for ill-formed sequences (each repair is reported as a warning, the sentence is
kept): an inside or end tag that does not continue an open entity of the same type - a stray
``I-x`` after ``O``, or ``I-y`` right after ``B-x`` - starts a new entity of its own type there
(a stray ``E-x`` is a one-character entity). This reads IOB1 files correctly and keeps a
near-miss as a span instead of losing it; it matches `lingshu.text.tags.bios_to_spans`.
A ``B-x`` without a closing ``E-x`` in a BIOES file is not flagged: it is valid BIO.

Writing uses BIOS. Tags cannot express nested or overlapping entities, so the longest entity
wins (ties: the earlier one) and the others are returned as dropped.
"""

from __future__ import annotations

import re

# Role of each prefix letter.
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


def decode(tags: list[str]) -> tuple[list[tuple[int, int, str]], list[tuple[int, str]]]:
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
