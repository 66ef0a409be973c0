"""Corpus preparation for domain-adaptive pretraining: raw documents -> one clean sentence a line.

    lingshu corpus prepare ../shared/data/corpus/*.txt -o corpus.txt
    lingshu corpus prepare papers.jsonl --fields title,abstract -o corpus.txt
    lingshu corpus prepare pairs.tsv --columns 1,2 -o corpus.txt

    from lingshu.pretrain import prepare_corpus
    summary = prepare_corpus(["a.txt", "b.jsonl"], "corpus.txt", fields=["title", "abstract"])
    print(summary.format())

Each document goes through: split into sentences -> clean -> keep min_chars..max_chars -> drop
exact duplicates (across all inputs) -> write. The main process reads the inputs as a stream of
chunks of lines; worker processes parse, split, clean and hash each chunk; the main process keeps
the first occurrence of every sentence in input order, so the output is byte-identical for any
number of workers.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import multiprocessing
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lingshu.io import atomic_open, refuse_overwriting_input

FORMATS = ("text", "jsonl", "tsv")
DROP_REASONS = ("no_chinese", "too_short", "too_long", "duplicate")
CHUNK_LINES = 1000  # lines per work item: big enough to amortise pickling, small enough to stream
CHUNK_BYTES = 1 << 20  # ... and a byte cap, because one "line" may be a whole book
MAX_MESSAGES = 10  # bad-record messages kept in the summary; the count covers all of them

# Sentence ends: full-width 。！？；… and their half-width cousins. The half-width full stop "."
# is deliberately absent: in this text it is far more often a decimal point (0.5g) or an
# abbreviation than a sentence end.
TERMINATORS = "。！？；…!?;"
# Closing quotes/brackets that follow a terminator belong to the sentence they close:
# 他说：“按时服药。”然后 -> [他说：“按时服药。”, 然后]. Straight quotes are included because after
# a terminator they are (almost) always closing.
CLOSERS = "”’」』）】》\"')]"

_T = re.escape(TERMINATORS)
_C = re.escape(CLOSERS)
_HSPACE = r"[^\S\r\n]"  # whitespace other than line breaks
# A run of non-terminators ending in a run of terminators (……, ？！) and any closers, possibly
# separated from them by spaces; or a bare terminator run (text starting with "。").
_SENTENCE = re.compile(rf"[^{_T}\r\n]+(?:[{_T}]+(?:{_HSPACE}*[{_C}])*)?|[{_T}]+(?:{_HSPACE}*[{_C}])*")
# Zero-width spaces and the BOM are not \s, but are just as invisible and just as useless.
_WHITESPACE = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_ELLIPSIS_RUN = re.compile("…{3,}")
_REPEAT_RUN = re.compile(r"([^\w\s]|_)\1{2,}")  # the same symbol/punctuation 3+ times


def split_sentences(text: str) -> list[str]:
    """Split a document into sentences.

    Sentences end at 。！？；… (and half-width ``!?;``) or at a line break; a run of terminators
    (``……``, ``？！``) stays together, and closing quotes/brackets (``”’」』）】》``) after the
    terminator stay with the sentence they close. Pieces are stripped; blank pieces are dropped.

    Args:
        text: one document (may contain line breaks, e.g. a title joined to an abstract).

    Returns:
        The sentences in order, unchanged apart from leading/trailing whitespace.
    """
    out = []
    for m in _SENTENCE.finditer(text):
        s = m.group().strip()
        if s:
            out.append(s)
    return out


def clean_sentence(s: str) -> str | None:
    """Normalise one sentence for pretraining, or reject it.

    Removes all whitespace (Chinese text does not use it between words, and BERT-style Chinese
    tokenizers ignore it), collapses a run of three or more identical symbols or punctuation marks
    to one (``！！！！`` -> ``！``, ``。。。。`` -> ``。``) while a run of ``…`` becomes the normal
    ellipsis ``……``.

    Args:
        s: a sentence, typically from `split_sentences`.

    Returns:
        The cleaned sentence, or None when it contains no Chinese character.
    """
    s = _WHITESPACE.sub("", s)
    if not _CJK.search(s):
        return None
    s = _ELLIPSIS_RUN.sub("……", s)  # before the generic rule, which would shrink it to one "…"
    return _REPEAT_RUN.sub(r"\1", s)


# ----------------------------------------------------------------------------------------------
# Summary


# Lower bounds of the length-histogram buckets; the last is open-ended. 96-128 is the top bucket
# at the default max_chars, so the default histogram has no half-empty bucket at its end.
LENGTH_BUCKETS = (0, 10, 16, 24, 32, 48, 64, 96, 129, 256, 512)


def _bucket_labels() -> list[str]:
    e = LENGTH_BUCKETS
    return [f"{e[i]}-{e[i + 1] - 1}" for i in range(len(e) - 1)] + [f"{e[-1]}+"]


@dataclass
class PrepareSummary:
    """What `prepare_corpus` read, kept and dropped.

    Invariant: ``sentences_found == sentences_out + sum(dropped.values())``.

    Attributes:
        inputs: the input files, in order.
        output: the file written.
        lines_in: input lines read (records; a TSV header row is not counted).
        empty_lines: lines that were empty or whitespace-only.
        bad_records: lines that could not be used (invalid JSON, a missing field, too few TSV
            columns, invalid UTF-8); `messages` holds the first few as ``file:line: why``.
        sentences_found: sentences produced by splitting the documents.
        sentences_out: sentences written.
        chars_out: characters written (without line breaks).
        dropped: sentences dropped per reason: no_chinese, too_short, too_long, duplicate.
        length_hist: sentences written per length bucket (label -> count), in length order.
        messages: the first `MAX_MESSAGES` bad-record messages.
        seconds: wall time of the run.
    """

    inputs: list[str]
    output: str
    lines_in: int = 0
    empty_lines: int = 0
    bad_records: int = 0
    sentences_found: int = 0
    sentences_out: int = 0
    chars_out: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    length_hist: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_bucket_labels(), 0))
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def format(self) -> str:
        """Return the summary as a readable table (counts, drop reasons, length histogram)."""
        n = self.sentences_found or 1
        mean = self.chars_out / self.sentences_out if self.sentences_out else 0.0
        rows = [
            f"corpus prepare: {len(self.inputs)} input(s) -> {self.output} ({self.seconds:.1f} s)",
            f"  {'lines in':<22}{self.lines_in:>12,}   (empty {self.empty_lines:,}, bad records {self.bad_records:,})",
            f"  {'sentences found':<22}{self.sentences_found:>12,}",
        ]
        for reason in DROP_REASONS:
            k = self.dropped.get(reason, 0)
            rows.append(f"  {'dropped ' + reason:<22}{k:>12,}   {100 * k / n:5.1f}%")
        rows.append(f"  {'sentences out':<22}{self.sentences_out:>12,}   {100 * self.sentences_out / n:5.1f}%"
                    f"   ({self.chars_out:,} chars, mean {mean:.1f})")
        used = [i for i, v in enumerate(self.length_hist.values()) if v]
        if used:
            items = list(self.length_hist.items())[used[0]: used[-1] + 1]
            top = max(v for _, v in items)
            rows.append(f"  {'length (chars)':<22}{'sentences':>12}")
            for label, v in items:
                rows.append(f"  {label:<22}{v:>12,}   {'#' * round(40 * v / top)}")
        if self.messages:
            more = self.bad_records - len(self.messages)
            rows.append(f"bad records (first {len(self.messages)}{f', {more:,} more' if more > 0 else ''}):")
            rows += [f"  {m}" for m in self.messages]
        return "\n".join(rows)


# ----------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _Job:
    """How to turn one input's lines into sentences; travels to the workers with every chunk."""

    path: str
    fmt: str
    fields: tuple[str, ...] | None
    columns: tuple[int, ...] | None
    min_chars: int
    max_chars: int


@dataclass
class _Chunk:
    first_line: int  # 1-based line number of lines[0], for messages
    lines: list[bytes]
    nbytes: int  # input bytes this chunk accounts for (progress bar)


def iter_chunks(path: str | Path, chunk_lines: int = CHUNK_LINES, *, start_line: int = 1,
                chunk_bytes: int = CHUNK_BYTES) -> Iterator[_Chunk]:
    """Yield an input file as chunks of at most `chunk_lines` raw lines (a generator).

    Only one chunk is in memory at a time, whatever the file size. The file is read as bytes and
    split on ``\\n`` only, so a stray ``\\r`` or U+2028 inside a document does not shift line
    numbers; decoding happens in the workers.

    Args:
        path: the file.
        chunk_lines: most lines per chunk.
        start_line: first line to yield (2 skips a header row); skipped bytes still count.
        chunk_bytes: a chunk also ends once it holds this many bytes.
    """
    lines: list[bytes] = []
    nbytes = 0
    first = start_line
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            nbytes += len(raw)
            if lineno < start_line:
                continue
            lines.append(raw)
            if len(lines) >= chunk_lines or nbytes >= chunk_bytes:
                yield _Chunk(first, lines, nbytes)
                first, lines, nbytes = lineno + 1, [], 0
    if lines or nbytes:
        yield _Chunk(first, lines, nbytes)


class _BadRecord(Exception):
    pass


def _document(line: str, job: _Job) -> str:
    """The text of one record; raises _BadRecord with the reason when the line is unusable."""
    if job.fmt == "text":
        return line
    if job.fmt == "jsonl":
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise _BadRecord(f"invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise _BadRecord(f"expected a JSON object, got {type(obj).__name__}")
        parts = []
        for name in job.fields or ("text",):
            if name not in obj:
                raise _BadRecord(f"missing field {name!r}")
            value = obj[name]
            if not isinstance(value, str):
                raise _BadRecord(f"field {name!r} is {type(value).__name__}, not a string")
            parts.append(value)
        # A line break between fields makes a title without end punctuation its own sentence.
        return "\n".join(parts)
    cells = line.split("\t")
    if job.columns is None:
        return "\n".join(cells)
    need = max(job.columns)
    if need >= len(cells):
        raise _BadRecord(f"has {len(cells)} column(s), column {need} needed")
    return "\n".join(cells[i] for i in job.columns)


@dataclass
class _Result:
    nbytes: int
    sentences: list[str]
    hashes: list[bytes]
    counts: Counter
    messages: list[str]


def _process(item: tuple[_Job, _Chunk]) -> _Result:
    """Parse, split, clean, length-filter and hash one chunk (runs in a worker process)."""
    job, chunk = item
    counts: Counter = Counter(lines_in=len(chunk.lines))
    sentences: list[str] = []
    hashes: list[bytes] = []
    messages: list[str] = []
    for lineno, raw in enumerate(chunk.lines, chunk.first_line):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
            if lineno == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                counts["empty_lines"] += 1
                continue
            doc = _document(line, job)
        except (_BadRecord, UnicodeDecodeError) as e:
            counts["bad_records"] += 1
            if len(messages) < MAX_MESSAGES:
                why = "not valid UTF-8" if isinstance(e, UnicodeDecodeError) else str(e)
                messages.append(f"{job.path}:{lineno}: {why}")
            continue
        for s in split_sentences(doc):
            counts["sentences_found"] += 1
            c = clean_sentence(s)
            if c is None:
                counts["no_chinese"] += 1
            elif len(c) < job.min_chars:
                counts["too_short"] += 1
            elif len(c) > job.max_chars:
                counts["too_long"] += 1
            else:
                sentences.append(c)
                # 8-byte digests instead of the sentences keep the dedupe set small; the chance
                # that any two of n distinct sentences collide is about n^2 / 2^65 (3e-8 at 10^6).
                hashes.append(hashlib.blake2b(c.encode("utf-8"), digest_size=8).digest())
    return _Result(chunk.nbytes, sentences, hashes, counts, messages)


def _ordered_map(func: Callable, items: Iterable, workers: int, ahead: int) -> Iterator:
    """`map(func, items)` over a process pool, in order, with at most `ahead` items in flight.

    Pool.imap's feeder thread drains its input as fast as it can, so on its own it would read the
    whole corpus into the task queue while the workers lag behind; a semaphore released as each
    result is consumed keeps memory at `ahead` chunks.
    """
    if workers <= 1:
        yield from map(func, items)
        return
    slots = threading.Semaphore(ahead)
    stop = threading.Event()

    def feed():
        for item in items:
            slots.acquire()
            if stop.is_set():  # the consumer went away: let the pool's feeder thread finish
                return
            yield item

    # forkserver, not fork: a process that already runs threads (a server, onnxruntime, a test
    # runner) can fork a child holding a lock no thread will release, and the pool then hangs
    with multiprocessing.get_context("forkserver").Pool(workers) as pool:
        try:
            for result in pool.imap(func, feed()):
                slots.release()
                yield result
        finally:
            stop.set()
            slots.release()  # wake the feeder if it waits, so Pool.terminate can join it


def _detect(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown corpus format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".tsv":
        return "tsv"
    return "text"


def _first_line(path: Path) -> str:
    with open(path, "rb") as f:
        return f.readline().decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")


def _starts_with(path: Path, prefix: bytes) -> bool:
    # A peek, not readline: a JSON array is often one single line as long as the file.
    with open(path, "rb") as f:
        return f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(prefix)


def _plan(path: Path, fmt: str | None, fields, columns, min_chars: int, max_chars: int) -> tuple[_Job, int]:
    """Resolve one input's format and columns; returns the job and the first data line."""
    kind = _detect(path, fmt)
    start = 1
    cols = None
    if kind == "jsonl" and path.suffix.lower() == ".json" and _starts_with(path, b"["):
        raise ValueError(f"{path}: a JSON array, not JSON lines (one object a line); convert it first")
    if kind == "tsv" and columns is not None:
        names = [c for c in columns if not isinstance(c, int)]
        if names:
            # Named columns imply a header row: look the names up there and skip it.
            header = _first_line(path).split("\t")
            missing = [n for n in names if n not in header]
            if missing:
                raise ValueError(f"{path}:1: no column {missing[0]!r} in the header (columns: {', '.join(header)})")
            start = 2
        cols = tuple(c if isinstance(c, int) else header.index(c) for c in columns)
    return _Job(str(path), kind, tuple(fields) if fields else None, cols, min_chars, max_chars), start


def _as_columns(columns) -> list[int | str] | None:
    if columns is None:
        return None
    out: list[int | str] = []
    for c in columns:
        if isinstance(c, str) and c.strip().isdigit():
            c = int(c)
        if isinstance(c, int) and c < 0:
            raise ValueError(f"column index {c} is negative; columns are 0-based indices or header names")
        out.append(c.strip() if isinstance(c, str) else c)
    if not out:
        raise ValueError("columns is empty")
    return out


def prepare_corpus(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    fields: Sequence[str] | None = None,
    columns: Sequence[int | str] | None = None,
    fmt: str | None = None,
    min_chars: int = 10,
    max_chars: int = 128,
    workers: int | None = None,
    progress: bool = True,
    chunk_lines: int = CHUNK_LINES,
) -> PrepareSummary:
    """Turn raw documents into a pretraining corpus: one clean, unique sentence a line.

    Streams in bounded memory: inputs are read chunk by chunk (`iter_chunks`) and at most a few
    chunks per worker are in flight. The one thing that grows is the dedupe set, which holds an
    8-byte blake2b digest per distinct sentence kept (plus Python's set overhead, about 100 bytes
    an entry in all): memory grows with the number of distinct sentences, not with the input.

    Args:
        inputs: files, one document a line. Format per file from `fmt` or the extension:
            ``.jsonl``/``.ndjson``/``.json`` JSON lines, ``.tsv`` tab-separated, anything else text.
        output: the file to write (atomically: readers never see a partial file).
        fields: JSON lines only: the string fields joined (with a line break) into the document;
            default ``["text"]``.
        columns: TSV only: 0-based column indices, or header names (then the first row is a
            header and is skipped); default all columns.
        fmt: ``text``, ``jsonl`` or ``tsv`` for every input, overriding the extension.
        min_chars: shortest sentence kept, in characters after cleaning.
        max_chars: longest sentence kept.
        workers: processes for parsing and cleaning; default ``os.cpu_count()``; 1 runs in-process.
            The output does not depend on it.
        progress: show a progress bar over input bytes (stderr).
        chunk_lines: lines per work item.

    Returns:
        A `PrepareSummary`; ``print(summary.format())`` shows it as a table.

    Raises:
        FileNotFoundError: an input does not exist (named in the message); nothing is written.
        ValueError: bad options, a JSON array given as JSON lines, unknown TSV column names, or an
            output that is one of the inputs.

    Bad records (a line that is not valid JSON, lacks a field, has too few columns, or is not
    UTF-8) never stop the run: they are counted and the first few reported as ``file:line: why``.
    """
    t0 = time.perf_counter()
    paths = [Path(p) for p in inputs]
    if not paths:
        raise ValueError("no input files given")
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"corpus input not found: {p}")
        if not p.is_file():
            raise FileNotFoundError(f"corpus input is not a file: {p}")
    refuse_overwriting_input(output, paths)
    if min_chars < 0 or max_chars < min_chars:
        raise ValueError(f"need 0 <= min_chars <= max_chars, got min_chars={min_chars}, max_chars={max_chars}")
    if chunk_lines < 1:
        raise ValueError(f"chunk_lines must be positive, got {chunk_lines}")
    cols = _as_columns(columns)
    plans = [_plan(p, fmt, fields, cols, min_chars, max_chars) for p in paths]
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))

    def items():
        for job, start in plans:
            for chunk in iter_chunks(job.path, chunk_lines, start_line=start):
                yield job, chunk

    summary = PrepareSummary(inputs=[str(p) for p in paths], output=str(output))
    labels = list(summary.length_hist)
    seen: set[bytes] = set()
    total = sum(p.stat().st_size for p in paths)
    from tqdm.auto import tqdm

    with atomic_open(output) as out, tqdm(total=total, unit="B", unit_scale=True, desc="corpus prepare",
                                          disable=not progress) as bar:
        for res in _ordered_map(_process, items(), workers, ahead=4 * workers):
            c = res.counts
            summary.lines_in += c["lines_in"]
            summary.empty_lines += c["empty_lines"]
            summary.bad_records += c["bad_records"]
            summary.sentences_found += c["sentences_found"]
            for reason in ("no_chinese", "too_short", "too_long"):
                summary.dropped[reason] += c[reason]
            room = MAX_MESSAGES - len(summary.messages)
            summary.messages += res.messages[:room]
            kept = []
            for s, h in zip(res.sentences, res.hashes):
                if h in seen:
                    summary.dropped["duplicate"] += 1
                    continue
                seen.add(h)
                kept.append(s)
                summary.chars_out += len(s)
                summary.length_hist[labels[bisect.bisect_right(LENGTH_BUCKETS, len(s)) - 1]] += 1
            if kept:
                out.write("\n".join(kept))
                out.write("\n")
                summary.sentences_out += len(kept)
            bar.update(res.nbytes)
    summary.seconds = time.perf_counter() - t0
    return summary


# ----------------------------------------------------------------------------------------------
# CLI


def _comma_list(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def cmd_corpus_prepare(args: argparse.Namespace) -> int:
    """Run `lingshu corpus prepare`; prints the summary. Returns the exit status."""
    try:
        summary = prepare_corpus(
            args.inputs, args.output, fields=args.fields, columns=args.columns, fmt=args.format,
            min_chars=args.min_chars, max_chars=args.max_chars, workers=args.workers,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Add ``corpus prepare`` to a CLI's subparsers (from ``parser.add_subparsers()``).

    Args:
        subparsers: the action returned by `argparse.ArgumentParser.add_subparsers`.

    Returns:
        The ``corpus`` parser. ``args.func(args)`` runs the chosen subcommand.
    """
    c = subparsers.add_parser("corpus", help="prepare raw text for domain-adaptive pretraining",
                              description="Prepare raw text for domain-adaptive (MLM) pretraining.")
    csub = c.add_subparsers(dest="corpus_cmd", metavar="SUBCOMMAND", required=True)
    p = csub.add_parser(
        "prepare", help="split, clean, length-filter and dedupe documents into one sentence a line",
        description="Split documents into sentences, clean them, keep MIN..MAX characters, drop "
                    "exact duplicates across all inputs, and write one sentence a line.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="input files, one document a line")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (written atomically)")
    p.add_argument("--fields", type=_comma_list, default=None,
                   help="JSON lines: fields joined into the document, e.g. title,abstract (default: text)")
    p.add_argument("--columns", type=_comma_list, default=None,
                   help="TSV: 0-based column indices or header names, e.g. 1,2 (default: all)")
    p.add_argument("--format", choices=FORMATS, default=None, help="input format (default: from the extension)")
    p.add_argument("--min-chars", type=int, default=10, help="shortest sentence kept (default: %(default)s)")
    p.add_argument("--max-chars", type=int, default=128, help="longest sentence kept (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all CPUs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_corpus_prepare)
    return c
