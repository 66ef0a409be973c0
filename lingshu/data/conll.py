"""CoNLL: ``char tag`` per line (extra middle columns ignored), a blank line between sentences;
BIO/BIOS/BIOES/BMES/BILOU tags, ``B-x`` or ``B_x``, decoded by lingshu.text.tags (the repair
policy is described there). Written as BIOS.
"""

from __future__ import annotations

import re
from typing import IO, Iterable, Iterator

from lingshu.data.base import (Checker, Document, Format, RawEntity, Source, WriteSummary, check_one_line,
                               one_line_refusal)
from lingshu.text.tags import decode_tags, parse_tag, spans_to_bios

CONLL_EXTENSIONS = {".conll", ".bio", ".bios", ".bioes", ".iob", ".iobes", ".bmes", ".bilou"}


# char, optional middle columns, tag. The char may itself be a whitespace character (a space or
# U+3000 in the text), written as "<char><sep><tag>", hence the `\s` alternative.
_CONLL_LINE = re.compile(r"(\S+|\s)[ \t]+(?:\S+[ \t]+)*?(\S+)[ \t]*")


def read_conll(src: Source, ck: Checker) -> Iterator[Document]:
    """CoNLL char/tag columns; a document per blank-line-separated sentence.

    Tags are decoded with the repair policy in `lingshu.data.conll` (each repair a warning
    ``ill_formed_tags`` on the tag's line); a line without two columns or an unknown tag is an
    error that skips its sentence.
    """
    tokens: list[tuple[str, str, int]] = []  # (char, tag, line)
    bad: list[tuple[int, str, str, str]] = []  # (line, field, kind, message)

    def flush() -> Document | None:
        ck.begin(min([t[2] for t in tokens[:1]] + [b[0] for b in bad[:1]]))
        for ln, fld, kind, msg in bad:
            ck.error(fld, kind, msg, line=ln)
        if bad:
            return ck.finish(None, [])
        text = "".join(c for c, _, _ in tokens)
        offsets = [0]
        for c, _, _ in tokens:
            offsets.append(offsets[-1] + len(c))
        spans, repairs = decode_tags([t for _, t, _ in tokens])
        for i, msg in repairs:
            ck.warning("tag", "ill_formed_tags", msg, line=tokens[i][2])
        raws = [
            RawEntity(f"tokens[{s}:{e}]", offsets[s], offsets[e], t, type_field="tag", line=tokens[s][2])
            for s, e, t in spans
        ]
        return ck.finish(text, raws)

    for lineno, line, why in src.text_lines():
        if line is None:
            bad.append((lineno, "", "bad_encoding", why))
            continue
        if not line.strip():
            if tokens or bad:
                doc = flush()
                if doc is not None:
                    yield doc
                tokens, bad = [], []
            continue
        if line.startswith("-DOCSTART-"):
            continue
        m = _CONLL_LINE.fullmatch(line)
        if not m:
            bad.append((lineno, "columns", "bad_line", f"expected 'char tag', got {line!r}"))
            continue
        char, tag = m.group(1), m.group(2)
        if parse_tag(tag) is None:
            bad.append((lineno, "tag", "bad_tag", f"{tag!r} is not a BIO/BIOS/BIOES tag"))
            continue
        tokens.append((char, tag, lineno))
    if tokens or bad:
        doc = flush()
        if doc is not None:
            yield doc


def write_conll(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """``char tag`` lines in BIOS, a blank line after each document."""
    for doc in docs:
        check_one_line(doc, "conll", f, s.documents == 0)
        tags, dropped = spans_to_bios(len(doc.text), [(e.start, e.end - 1, e.type) for e in doc.entities])
        # A whitespace character is written as is: the reader takes "<ws><sep><tag>" as that char.
        f.write("".join(f"{ch} {tag}\n" for ch, tag in zip(doc.text, tags)) + "\n")
        s.documents += 1
        s.entities += len(set(e.key for e in doc.entities)) - len(dropped)
        s.entities_dropped += len(dropped)


def looks_like(lines: list[str]) -> bool:
    """Whether sample lines are character-level CoNLL: at least two, and every one is one
    character, optional middle columns and a tag of a supported scheme (``-DOCSTART-`` lines
    aside). A plain text whose lines happen to end in a tag-like word ("... 患者 O") has longer
    first columns, so it stays text; word-level CoNLL needs a CoNLL extension or ``format=``."""
    lines = [ln for ln in lines if not ln.startswith("-DOCSTART-")]
    return len(lines) >= 2 and all(
        (m := _CONLL_LINE.fullmatch(ln)) and len(m.group(1)) == 1 and parse_tag(m.group(2)) is not None for ln in lines
    )


FORMAT = Format("conll", "char/tag columns, BIO/BIOS/BIOES (written as BIOS)", read_conll, write_conll,
                frozenset(CONLL_EXTENSIONS), refuse=lambda doc: one_line_refusal(doc, "conll"))
