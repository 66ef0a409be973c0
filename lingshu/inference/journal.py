"""The prediction journal: what `lingshu predict` has predicted so far, one record a line, so a
killed run loses nothing and `--resume` continues after the last complete record.

`lingshu predict MODEL IN -o OUT` appends every prediction to `.OUT.partial.jsonl` beside OUT
(the full `Document`, floats exact, meta kept) and flushes it as it goes; only when the input is
done is OUT written from the journal, atomically, in the output layout, and the journal
removed. A kill (SIGKILL included) leaves OUT as it was and the journal with every record
written before it; a record cut off mid-line is dropped on resume, and so are the records after
the last boundary of the pipe's buffers (`Pipeline.pipe` predicts 256 or more inputs at a time),
so the resumed run cuts the same batches as an uninterrupted one: an int8 export's answers depend
on the batch. The journal's first line says which input, model, layout and batch size it
belongs to, so a resume with other arguments is refused instead of mixing two runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

from lingshu.schema import Document, Entity, Relation

VERSION = 2  # 2: the header holds the batch size (and --decode options)


def journal_path(output: str | Path) -> Path:
    out = Path(output)
    return out.with_name(f".{out.name}.partial.jsonl")


def header(input_path: str, model: str, layout: str, batch_size: int) -> dict:
    """What a journal belongs to. The batch size is part of it: a resume must cut the same
    batches (an int8 export's answers depend on the batch)."""
    st = os.stat(input_path) if os.path.isfile(input_path) else None
    return {"lingshu_predict_journal": VERSION, "input": os.path.abspath(input_path),
            "input_size": st.st_size if st else None, "input_mtime_ns": st.st_mtime_ns if st else None,
            "model": os.path.abspath(model), "layout": layout, "batch_size": batch_size}


def dumps(doc: Document) -> str:
    """One journal line: the data layer's one-line JSON (a lone surrogate in an id or an extra
    field, read from its escape, is written back as that escape; json.loads restores it)."""
    from lingshu.data.base import dumps as one_line

    return one_line(dataclasses.asdict(doc))


def _entity(d: dict) -> Entity:
    return Entity(**d)


def loads(line: str) -> Document:
    d = json.loads(line)
    d["entities"] = [_entity(e) for e in d["entities"]]
    d["relations"] = [Relation(**{**r, "subject": _entity(r["subject"]), "object": _entity(r["object"])})
                      for r in d["relations"]]
    return Document(**d)


def open_for_resume(path: Path, want: dict) -> int:
    """Records already in the journal at `path` (its cut-off tail removed); ValueError when the
    journal belongs to another input, model or layout, or is not a journal."""
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1  # a line without its newline was cut by the kill
    lines = data[:end].splitlines()
    try:
        head = json.loads(lines[0]) if lines else None
    except ValueError:
        head = None
    version = head.get("lingshu_predict_journal") if isinstance(head, dict) else None
    if isinstance(version, int) and version != VERSION:
        raise ValueError(f"{path} was written by another version of lingshu predict (journal version {version}, "
                         f"this one reads {VERSION}); run without --resume to start afresh")
    if version != VERSION:
        raise ValueError(f"{path} is not a lingshu prediction journal")
    differs = [k for k in ("input", "input_size", "input_mtime_ns", "model", "layout", "batch_size", "decode")
               if head.get(k) != want.get(k)]
    if differs:
        raise ValueError(f"{path} was written for another run ({', '.join(differs)} differ: "
                         f"{', '.join(f'{k}={head.get(k)!r}' for k in differs)}); run without --resume to start afresh")
    if end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    return len(lines) - 1


def keep(path: Path, n: int) -> int:
    """Cut the journal at `path` to its header and first `n` records; returns `n`."""
    with open(path, "r+b") as f:
        end = 0
        for _ in range(n + 1):
            line = f.readline()
            if not line.endswith(b"\n"):
                raise ValueError(f"{path}: fewer than {n} complete records")
            end += len(line)
        f.truncate(end)
    return n


def start(path: Path, head: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(head, ensure_ascii=False) + "\n")


def append(path: Path, docs: Iterable[Document]) -> Iterator[Document]:
    """Append each document to the journal (flushed every record) and pass it on."""
    with open(path, "a", encoding="utf-8") as f:
        for doc in docs:
            f.write(dumps(doc) + "\n")
            f.flush()
            yield doc
        os.fsync(f.fileno())


def read(path: Path) -> Iterator[Document]:
    """The journal's documents, in order (the header line skipped)."""
    with open(path, encoding="utf-8") as f:
        next(f, None)
        for line in f:
            yield loads(line)


def reject_line(line: int, problems: list, raw: str | None, file: str = "") -> str:
    """One rejects-file line: {file, line, errors: [{field, kind, message}], record}. A lone
    surrogate (an undecodable byte) cannot be UTF-8: it is written as its \\udcXX escape."""
    errors = [{"field": p.field, "kind": p.kind, "message": p.message} for p in problems]
    rec = {"file": problems[0].file if problems else file, "line": line, "errors": errors, "record": raw}
    return json.dumps(rec, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")


def writable(docs: Iterable[Document], layout: str, on_reject, count: list) -> Iterator[Document]:
    """The documents the output `layout` can hold; each other one is passed to
    `on_reject(line, problems, raw)` (kind `unwritable`, e.g. an empty text or a line break for
    conll; raw: its text) and counted in `count[0]`, so a run never fails at its end over one
    record."""
    from lingshu.data.registry import FORMATS
    from lingshu.data.report import Problem

    refuse = FORMATS[layout].refuse
    for doc in docs:
        why = refuse(doc) if refuse else None
        if why is None:
            yield doc
            continue
        file, _, line = (doc.source or "").rpartition(":")
        line = int(line) if line.isdigit() else 0
        on_reject(line, [Problem(file, line, "text", "unwritable", why)], doc.text)
        count[0] += 1


def rejects_path(output: str | Path) -> Path:
    out = Path(output)
    return out.with_name(f"{out.name}.rejects.jsonl")


class Rejects:
    """The records `lingshu predict` could not read or write, one JSON line each: file, line, the
    errors (field, kind, message) and the record's raw text when the reader has it (a record the
    output layout cannot hold: its text), else null.

    Written atomically when the run ends (a killed run leaves no half file) and only when there
    is something in it; a rejects file an earlier run left for the same output is removed when
    this run rejects nothing. Every record of the input is read on a resume too, so the file is
    complete either way. Use as `report.on_reject = rejects.add`."""

    def __init__(self, path: str | Path):
        from contextlib import ExitStack

        self.path = Path(path)
        self.count = 0
        self._stack = ExitStack()
        self._f = None

    def add(self, line: int, problems: list, raw: str | None) -> None:
        if self._f is None:
            from lingshu.io import atomic_open

            self._f = self._stack.enter_context(atomic_open(self.path))
        self._f.write(reject_line(line, problems, raw) + "\n")
        self.count += 1

    def close(self, ok: bool = True) -> None:
        """Commit the file (`ok`), or drop what was written (an interrupted run)."""
        if ok:
            self._stack.close()
            if self._f is None and self.path.is_file() and _is_rejects(self.path):
                self.path.unlink()
        else:
            self._stack.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)


def _is_rejects(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            first = json.loads(f.readline())
    except (OSError, ValueError):
        return False
    return isinstance(first, dict) and {"file", "line", "errors", "record"} <= set(first)
