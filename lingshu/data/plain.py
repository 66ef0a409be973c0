"""Plain text: one document per non-blank line, for prediction; the text is kept exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Iterable, Iterator

from lingshu.data.base import Checker, Document, Format, WriteSummary, check_one_line


def read_text(path: Path, ck: Checker) -> Iterator[Document]:
    """One document per non-blank line, text kept exactly (only the line ending removed)."""
    with open(path, encoding="utf-8-sig") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            ck.begin(lineno)
            yield ck.finish(line, [])


def write_text(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """One text per line."""
    for doc in docs:
        check_one_line(doc, "text", f, s.documents == 0)
        f.write(doc.text + "\n")
        s.documents += 1


FORMAT = Format("text", "plain text, one document per line", read_text, write_text, frozenset({".txt"}))
