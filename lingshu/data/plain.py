"""Plain text: one document per line, for prediction; the text is kept exactly.

Every line is a document, a blank one included (an empty document, predicted as nothing), so
the n-th output record of a prediction is the n-th input line. A line break is ``\\n``,
``\\r\\n`` or a lone ``\\r``; Unicode line separators (U+2028, U+2029, U+0085) are characters of
the text. A line that is not valid UTF-8 is reported with its line number and skipped.
"""

from __future__ import annotations

from typing import IO, Iterable, Iterator

from lingshu.data.base import Checker, Document, Format, Source, WriteSummary, check_one_line, one_line_refusal


def read_text(src: Source, ck: Checker) -> Iterator[Document]:
    """One document per line, text kept exactly (only the line ending removed)."""
    for lineno, line, why in src.text_lines():
        ck.begin(lineno, line)
        if line is None:
            ck.error("", "bad_encoding", why)
            ck.finish(None, [])
        elif line.strip():
            yield ck.finish(line, [])
        else:
            ck.report.records_kept += 1
            yield Document(text=line, source=f"{ck.file}:{lineno}")


def write_text(docs: Iterable[Document], f: IO[str], s: WriteSummary) -> None:
    """One text per line (an empty document as an empty line)."""
    for doc in docs:
        check_one_line(doc, "text", f, s.documents == 0, allow_empty=True)
        f.write(doc.text + "\n")
        s.documents += 1


FORMAT = Format("text", "plain text, one document per line", read_text, write_text, frozenset({".txt"}),
                refuse=lambda doc: one_line_refusal(doc, "text", allow_empty=True))
