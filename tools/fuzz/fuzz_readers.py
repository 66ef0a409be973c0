#!/usr/bin/env python
"""Coverage-guided fuzzing of lingshu's readers with atheris (libFuzzer).

One target per layout (cluener, cmeee, spans, conll, text, cmeie, pair) plus ``detect`` (the
format detected from the input, then read as that). Each input is one whole file, fed to the
reader through a `Source` over the bytes (no temporary file), and checked:

- non-strict reading raises nothing at all (bad content is reported, never raised);
- strict reading raises only `DataError`, and does so exactly when the non-strict report has an
  error (the report's first error), after yielding the same documents up to it;
- records_read == records_kept + records_skipped, one document per kept record, and the entity
  and relation counts match the documents;
- every kept entity points at its text (``0 <= start < end <= len(text)``,
  ``text[start:end] == entity.text``); relation arguments too, or are unlocated (-1, -1); no lone
  surrogate in a kept text, type or label; the report's summary prints as UTF-8.

A broken invariant raises `Invariant`, which libFuzzer reports as a crash and saves the input
(``crash-<sha1>``, under ``-artifact_prefix=``). Replay one with
``python tools/fuzz/fuzz_readers.py --reader cmeee -- crash-...``.

Usage::

    python tools/fuzz/fuzz_readers.py --reader cmeee [--seeds DIR] [--shared-seeds] [--corpus DIR] \\
        [-- -max_total_time=60 -runs=N -artifact_prefix=/tmp/fuzz_crashes/ ...]

See tools/fuzz/README.md.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import atheris
from seeds import shared_heads  # beside this file

with atheris.instrument_imports(include=["lingshu"]):
    from lingshu.data import FORMATS, DataError, detect_format, iter_documents, read_documents, write_documents
    from lingshu.data.source import HEAD_BYTES, LONE_SURROGATE, Source
    from lingshu.schema import UNLOCATED

READERS = ["cluener", "cmeee", "spans", "conll", "text", "cmeie", "pair", "detect"]
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


class Invariant(AssertionError):
    """A reader broke one of the checked promises."""


class BytesSource(Source):
    """A `Source` over bytes in memory: what `Source(path)` gives for a file holding them."""

    def __init__(self, data: bytes, name: str = "fuzz-input"):
        self.path = Path(name)
        self.name = name
        self._f = io.BufferedReader(io.BytesIO(data))
        self.head = self._f.read(HEAD_BYTES)
        self._taken = False


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise Invariant(what)


def _ent_ok(e, text: str) -> bool:
    if e.start == UNLOCATED:
        return e.end == UNLOCATED
    return 0 <= e.start < e.end <= len(text) and text[e.start:e.end] == e.text


def _key(d) -> str:
    return repr((d.text, [(e.start, e.end, e.type, e.text, e.score) for e in d.entities], d.id,
                 json.dumps(d.meta, sort_keys=True, default=repr), d.source,
                 [(r.subject.key, r.subject.text, r.predicate, r.object.key, r.object.text) for r in d.relations],
                 d.text_pair, d.label, d.label_scores))


def check_result(docs: list, rep, fmt: str | None) -> None:
    _check(rep.format in FORMATS and (fmt is None or rep.format == fmt), f"format {rep.format!r}")
    _check(rep.records_read == rep.records_kept + rep.records_skipped,
           f"read {rep.records_read} != kept {rep.records_kept} + skipped {rep.records_skipped}")
    _check(len(docs) == rep.records_kept, f"{len(docs)} documents for {rep.records_kept} kept records")
    _check(rep.records_skipped == 0 or bool(rep.errors), "records skipped without an error")
    _check(rep.entities == sum(len(d.entities) for d in docs), "entity count")
    _check(rep.relations == sum(len(d.relations) for d in docs), "relation count")
    for d in docs:
        _check(isinstance(d.text, str) and not LONE_SURROGATE.search(d.text), f"bad text {d.text!r}")
        _check(rep.format == "text" or bool(d.text.strip()), f"blank text kept {d.text!r}")
        for e in d.entities:
            _check(0 <= e.start < e.end <= len(d.text) and d.text[e.start:e.end] == e.text,
                   f"entity {e!r} does not point at its text in {d.text!r}")
            _check(isinstance(e.type, str) and bool(e.type) and not LONE_SURROGATE.search(e.type), f"type {e.type!r}")
        for r in d.relations:
            _check(_ent_ok(r.subject, d.text) and _ent_ok(r.object, d.text), f"relation {r!r} misplaced")
        for s in (d.text_pair, d.label):
            _check(s is None or not LONE_SURROGATE.search(s), f"lone surrogate in {s!r}")
    rep.summary(limit=10 ** 6).encode("utf-8")


def target(reader: str):
    fmt = None if reader == "detect" else reader

    def one_input(data: bytes) -> None:
        if reader == "detect":
            _check(detect_format(BytesSource(data)) in FORMATS, "detected an unknown format")
        res = read_documents(BytesSource(data), format=fmt)  # non-strict: must not raise at all
        check_result(res.documents, res.report, fmt)
        got = []
        try:
            for d in iter_documents(BytesSource(data), format=fmt, strict=True):
                got.append(d)
        except DataError as e:
            errors = [p for p in res.report.problems if p.severity == "error"]
            _check(bool(errors), f"strict raised {e} but the non-strict report has no error")
            _check(e.problem == errors[0], f"strict raised {e}, the report's first error is {errors[0]}")
            _check([_key(d) for d in got] == [_key(d) for d in res.documents[: len(got)]], "strict documents differ")
        else:
            _check(res.report.ok, "the report has errors but strict reading raised nothing")
            _check([_key(d) for d in got] == [_key(d) for d in res.documents], "strict documents differ")

    return one_input


# --- seeds -------------------------------------------------------------------------------------------


def shared_seeds(reader: str, out: Path) -> int:
    """Write seed files made of the shared data sets' first records into `out`; how many."""
    if not SHARED.exists():
        print(f"no shared data at {SHARED}; no shared seeds", file=sys.stderr)
        return 0
    seeds = shared_heads(SHARED)
    docs = read_documents(BytesSource(seeds["cluener"]), format="cluener").documents
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("spans", "conll"):
            write_documents(docs, Path(tmp) / fmt, fmt)
            seeds[fmt] = (Path(tmp) / fmt).read_bytes()
        pairs = [d for d in read_documents(BytesSource(seeds["pair"]), format="pair").documents]
        for d in pairs:
            d.meta.pop("lingshu.layout", None)  # written as text1/text2 JSON lines
        write_documents(pairs, Path(tmp) / "pairs.jsonl", "pair")
        seeds["pair-jsonl"] = (Path(tmp) / "pairs.jsonl").read_bytes()
    chosen = seeds if reader == "detect" else {k: v for k, v in seeds.items() if k.split("-")[0] == reader}
    for name, data in chosen.items():
        (out / f"seed-{name}").write_bytes(data)
    return len(chosen)


def main(argv: list[str]) -> None:
    ours, theirs = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="arguments after -- go to libFuzzer (e.g. -max_total_time=60 -runs=1000 "
                                        "-artifact_prefix=/tmp/fuzz_crashes/, or crash files to replay)")
    ap.add_argument("--reader", required=True, choices=READERS)
    ap.add_argument("--seeds", type=Path, action="append", default=[],
                    help="a folder of seed files (copied, never written to); may be repeated")
    ap.add_argument("--shared-seeds", action="store_true",
                    help="seed with the shared data sets' first records (written to the working corpus)")
    ap.add_argument("--corpus", type=Path,
                    help="the working corpus folder libFuzzer adds new inputs to, kept between runs "
                         "(default: <tempdir>/lingshu_fuzz_corpus/<reader>)")
    args = ap.parse_args(ours)
    replay = [a for a in theirs if not a.startswith("-")]
    flags = [a for a in theirs if a.startswith("-")]
    if replay:  # libFuzzer runs the given files (or folders) once each
        corpus_args = replay
    else:
        # libFuzzer leaves through exit(), so nothing would clean a temp folder: the corpus persists.
        corpus = args.corpus or Path(tempfile.gettempdir()) / "lingshu_fuzz_corpus" / args.reader
        corpus.mkdir(parents=True, exist_ok=True)
        n = shared_seeds(args.reader, corpus) if args.shared_seeds else 0
        for d in args.seeds:
            for f in sorted(p for p in d.rglob("*") if p.is_file()):
                shutil.copyfile(f, corpus / f"user-{n}-{f.name}")
                n += 1
        print(f"fuzz_readers: reader {args.reader}, corpus {corpus} ({n} seeds)", file=sys.stderr, flush=True)
        corpus_args = [str(corpus)]
    atheris.Setup([sys.argv[0], *flags, *corpus_args], target(args.reader))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1:])
