"""`lingshu predict --engine ray`: the job of `lingshu predict MODEL INPUT -o OUTPUT` on Ray Data,
over one or many input files, with one model replica per worker (`pip install 'lingshu[ray]'`).

    from lingshu.inference import ray_engine

    manifest = ray_engine.run("runs/cmeee-gp", "notes/*.txt", "preds/", num_workers=8)
    ray_engine.merge("preds/", "preds.jsonl")      # one file, as `lingshu predict` writes it

How it runs. Each input file is read by a Ray task with lingshu's own readers
(`lingshu.data.iter_documents`: the same detection, validation and skipping as `lingshu predict`)
and streamed on in blocks of `chunk_size` records, each record carrying its input file and its
index in that file. A pool of `num_workers` actors, each holding one replica of the model
(`lingshu.load` once per actor), predicts the blocks with `nlp.pipe` and writes every run of
consecutive records it was given as one shard, in the output layout. The driver only collects
what each shard holds (a few numbers), checks that the shards of every input cover its records
0..n-1 with no gap or overlap, and then writes ``manifest.json``.

The output folder::

    OUT/
      manifest.json                     # written last: a folder with it is complete
      shard-00000-0000000000.jsonl      # input 0, records 0..k-1, in the output layout
      shard-00000-0000001024.jsonl      # input 0, records from 1024 (name: input, first record)
      shard-00001-0000000000.jsonl      # input 1 ...
      rejects.jsonl                     # unreadable input records, when there are any

Each shard is a complete file of its layout (``.conll`` for CoNLL, ``.json`` for the CMeEE
list, else ``.jsonl``); its records are in input order. `merge` joins them in manifest order
(inputs in the order given, records in input order) into the bytes `write_documents` writes for
all the records at once, so `lingshu predict` on the inputs concatenated and `run` + `merge` give
the same file. Every file is written atomically (a temporary file renamed into place); shard
names depend only on the input and the first record, so a retried task rewrites the same file.

What is bounded in memory: the driver holds the manifest (one small entry per shard) and the
per-input reading counts, never records. A read task holds one block of `chunk_size` records
(and what the reader needs: lingshu's JSON-list layouts, CMeEE and the KUAKE-QQR list, are parsed
whole, so such a file is in its read task's memory at once; JSON lines, text and CoNLL stream),
and the unreadable records met since its last block (a file of nothing else: all of them).
An actor holds one batch of records and its model. Blocks between reading and prediction sit in
Ray's object store, which Ray Data keeps bounded by backpressure (and spills to disk). `merge`
holds one shard at a time.

On a cluster (`address=` or ``RAY_ADDRESS``): lingshu must be installed on every node, and the
input files, the model folder and the output folder must be at the same paths on every node (a
shared file system). The replicas take `num_workers` CPUs (or GPUs, one each, for a CUDA
`device`); reading needs one CPU more. Without a cluster a local Ray instance is started with
`num_workers` + 1 CPUs, no dashboard, and shut down at the end.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger("lingshu")

MANIFEST = "manifest.json"
REJECTS = "rejects.jsonl"
MANIFEST_VERSION = 1
INSTALL_HINT = "the ray engine needs Ray Data: pip install 'lingshu[ray]'"

# rows between the read step and the replicas: (file, index, doc); index < 0 marks what reading
# found rather than a record: the file's reading counts, or one unreadable record
_REPORT = -1
_REJECT = -2


class RayEngineError(ValueError):
    """A problem with the arguments of a ray run (inputs, output folder, layout, Ray missing):
    one line for the user, no traceback."""


def _import_ray():
    try:
        import ray
        import ray.data  # Ray Data: ray's `data` extra
    except ImportError:
        raise RayEngineError(INSTALL_HINT) from None
    return ray


# --- inputs and the output folder -----------------------------------------------------------

def resolve_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """The input files: a file; a folder (its regular files, not hidden ones, sorted by name;
    subfolders are not entered); or a glob (``**`` recursive; regular files only, sorted). A
    list of any of these: in its order, each file once. RayEngineError when nothing matches."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    files: list[str] = []
    for item in items:
        item = os.fspath(item)
        if os.path.isfile(item):
            found = [item]
        elif os.path.isdir(item):
            found = sorted(os.path.join(item, n) for n in os.listdir(item)
                           if not n.startswith(".") and os.path.isfile(os.path.join(item, n)))
            if not found:
                raise RayEngineError(f"the folder {item} holds no input files")
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not found:
                raise RayEngineError(f"no input files match {item}")
        else:
            raise RayEngineError(f"no such file or folder: {item}")
        files += found
    seen: set[str] = set()
    unique = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _ours(name: str) -> bool:
    """A name a ray run writes into its output folder (or a temporary file of one)."""
    return (name in (MANIFEST, REJECTS) or (name.startswith("shard-") and not name.startswith("shard-."))
            or (name.startswith(".") and name.endswith(".tmp")))


def read_manifest(out_dir: str | os.PathLike) -> dict:
    """The manifest of a finished ray run; RayEngineError when `out_dir` holds none."""
    path = Path(out_dir) / MANIFEST
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RayEngineError(f"{out_dir} holds no {MANIFEST}: not the output of a finished ray run") from None
    except ValueError:
        m = None
    if not isinstance(m, dict) or m.get("lingshu_ray_predict") != MANIFEST_VERSION:
        raise RayEngineError(f"{path} is not the manifest of a lingshu ray run")
    return m


def _prepare_out_dir(out_dir: Path, inputs: list[str]) -> None:
    """Refuse a folder holding anything but an earlier ray run's files; clear those."""
    for f in inputs:
        if Path(os.path.realpath(f)).is_relative_to(os.path.realpath(out_dir)):
            raise RayEngineError(f"the input {f} is inside the output folder {out_dir}; give another folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise RayEngineError(f"{out_dir} is a file; the ray engine writes a folder (shards and {MANIFEST})")
    if not out_dir.exists():
        out_dir.mkdir(parents=True)
        return
    names = os.listdir(out_dir)
    foreign = sorted(n for n in names if not _ours(n))
    if foreign:
        raise RayEngineError(f"{out_dir} is not empty and not the output of a ray run (it holds "
                             f"{', '.join(foreign[:3])}{' …' if len(foreign) > 3 else ''}); give a new or empty folder")
    if MANIFEST in names:
        read_manifest(out_dir)  # a manifest.json of something else is refused, not deleted
        (out_dir / MANIFEST).unlink()  # first: a folder without it is never taken for a finished run
    for n in names:
        if n != MANIFEST and not n.startswith("."):
            (out_dir / n).unlink()


def _shard_suffix(layout: str) -> str:
    return {"conll": ".conll", "cmeee": ".json", "text": ".txt"}.get(layout, ".jsonl")


def _shard_name(file: int, first: int, layout: str) -> str:
    return f"shard-{file:05d}-{first:010d}{_shard_suffix(layout)}"


# --- the Ray side: reading and the replicas -------------------------------------------------

def _read_inputs(batch: dict, chunk_size: int, layout: str):
    """The read step (a Ray task): each input file of `batch` as blocks of rows (file, index,
    the `Document` as a journal line), then its reading counts and the records it could not read
    or the output `layout` cannot hold."""
    import numpy as np

    from lingshu.data import ValidationReport, iter_documents
    from lingshu.data.validate import AnyLabel
    from lingshu.inference import journal

    def rows(file: int, index: list[int], docs: list[str]) -> dict:
        return {"file": np.full(len(index), file, dtype=np.int64), "index": np.asarray(index, dtype=np.int64),
                "doc": np.asarray(docs, dtype=object)}

    for file, path, fmt in zip(batch["file"], batch["path"], batch["format"]):
        file, path, fmt = int(file), str(path), str(fmt)
        rejects: list[str] = []

        def on_reject(line, problems, raw, path=path, rejects=rejects):  # as `lingshu predict`'s rejects file
            rejects.append(journal.reject_line(line, problems, raw, path))

        report = ValidationReport(on_reject=on_reject)
        # prediction ignores gold labels: a pair record labelled "NA" is predicted, not skipped
        docs = iter_documents(path, format=fmt, labels=AnyLabel() if fmt == "pair" else None, report=report)
        docs = journal.writable(docs, layout, on_reject, [0])
        index: list[int] = []
        lines: list[str] = []
        n = 0
        for doc in docs:
            index.append(n)
            lines.append(journal.dumps(doc))
            n += 1
            if len(lines) >= chunk_size:
                yield rows(file, index, lines)
                index, lines = [], []
            if len(rejects) >= chunk_size:
                yield rows(file, [_REJECT] * len(rejects), rejects)
                rejects.clear()
        if lines:
            yield rows(file, index, lines)
        if rejects:
            yield rows(file, [_REJECT] * len(rejects), rejects)
        counts = {"records_read": report.records_read, "records_skipped": report.records_skipped,
                  "documents": n, "format": report.format}
        yield rows(file, [_REPORT], [json.dumps(counts)])


class _Replica:
    """One model replica (a Ray actor): predicts the records it is given and writes each run of
    consecutive records of one input as a shard; returns one row per shard (and passes on what
    reading found)."""

    def __init__(self, model: str, out_dir: str, layout: str, device: str | None, batch_size: int,
                 backend: str | None, threads: float = 1):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import inspect

        import lingshu

        if device and device.startswith("cuda"):
            device = "cuda"  # Ray gives each replica its own GPU as device 0
        kw = {}
        if device == "cpu" and "threads" in inspect.signature(lingshu.load).parameters:
            kw["threads"] = max(1, int(threads))  # the replica's CPUs, not the node's (onnxruntime's default)
        self.nlp = lingshu.load(model, device=device, batch_size=batch_size, backend=backend, **kw)
        self.task = self.nlp.task
        self.out_dir = Path(out_dir)
        self.layout = layout

    def __call__(self, batch: dict) -> dict:
        from lingshu.data import write_documents
        from lingshu.inference import journal

        out: dict[str, list] = {"file": [], "kind": [], "info": []}
        runs: list[tuple[int, int, list[str]]] = []  # (file, first index, journal lines)
        for file, index, doc in zip(batch["file"], batch["index"], batch["doc"]):
            file, index = int(file), int(index)
            if index < 0:
                out["file"].append(file)
                out["kind"].append("report" if index == _REPORT else "reject")
                out["info"].append(str(doc))
                continue
            if runs and runs[-1][0] == file and runs[-1][1] + len(runs[-1][2]) == index:
                runs[-1][2].append(str(doc))
            else:
                runs.append((file, index, [str(doc)]))
        for file, first, lines in runs:
            # through the journal's form, as `lingshu predict` writes its output from its journal
            preds = [journal.loads(journal.dumps(d)) for d in self.nlp.pipe(journal.loads(s) for s in lines)]
            name = _shard_name(file, first, self.layout)
            summary = write_documents(preds, self.out_dir / name, self.layout)
            info = {"path": name, "records": len(preds), "first": first, "last": first + len(preds) - 1,
                    "count": sum(self.task.count(d) for d in preds), "entities_dropped": summary.entities_dropped}
            out["file"].append(file)
            out["kind"].append("shard")
            out["info"].append(json.dumps(info))
        return out


def _quiet_ray(ray) -> None:
    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    for attr in ("print_on_execution_start", "enable_operator_progress_bars"):
        if hasattr(ctx, attr):
            setattr(ctx, attr, False)


# --- run and merge --------------------------------------------------------------------------

def run(model: str, inputs, out_dir: str | os.PathLike, *, num_workers: int = 2, batch_size: int = 64,
        backend: str | None = None, input_format: str | None = None, output_format: str | None = None,
        device: str | None = "cpu", chunk_size: int = 1024, address: str | None = None,
        progress: bool = False) -> dict:
    """Predict every record of `inputs` with `num_workers` replicas of `model` on Ray Data and
    write the shards and ``manifest.json`` into `out_dir` (module docstring); returns the manifest.

    Args:
        model: a model folder written by `lingshu train` (or `lingshu export onnx`); it must be at
            the same path on every node.
        inputs: a file, a folder (its files), a glob, or a list of these (`resolve_inputs`).
        out_dir: a new or empty folder, or the folder of an earlier ray run (its files are
            replaced); anything else is refused.
        num_workers: model replicas (Ray actors, one CPU each; one GPU each for a CUDA device).
        batch_size: windows per forward pass, as in `lingshu.load`.
        backend, device: as in `lingshu.load` ("cuda": a GPU per replica; None: CUDA when the
            Ray cluster has GPUs, else CPU).
        input_format: the layout of every input (default: detected per file).
        output_format: the output layout (default as `lingshu predict`: the input's layout when
            it holds the predictions, else the task's default); all inputs must come to one.
        chunk_size: records per block, and at most per shard.
        address: a Ray cluster to connect to (default: the one `ray.init` finds, e.g. from
            ``RAY_ADDRESS``, else a local instance started and shut down here).
        progress: a bar of records predicted, on stderr.

    Raises:
        RayEngineError: Ray missing, no input, an output folder that is not ours, a layout that
            cannot hold the predictions, an input the model's task cannot predict from (a pair
            model on plain text), or shards that do not cover the input (a bug).
        DataError: an unknown format. A record the output layout cannot hold goes to the
            rejects file, as one that cannot be read.
    """
    from lingshu.data import detect_format

    if num_workers < 1:
        raise RayEngineError(f"num_workers must be at least 1, got {num_workers}")
    if chunk_size < 1:
        raise RayEngineError(f"chunk_size must be at least 1, got {chunk_size}")
    ray = _import_ray()
    from lingshu.cli import _model_task

    files = resolve_inputs(inputs)
    task = _model_task(model)  # before anything starts: a folder that is not a model is refused at once
    try:
        task.output_layout(output_format, None)
    except ValueError as e:
        raise RayEngineError(str(e)) from None
    formats = [detect_format(f, input_format) for f in files]
    for f, fmt in zip(files, formats):
        if task.input_layouts and fmt not in task.input_layouts:
            raise RayEngineError(f"{f} is a {fmt} file; a {task.name} model predicts from "
                                 f"{', '.join(task.input_layouts)} files")
    layouts = {task.output_layout(output_format, fmt) for fmt in formats}
    if len(layouts) > 1:
        kinds = ", ".join(f"{f}: {fmt}" for f, fmt in list(zip(files, formats))[:4])
        raise RayEngineError(f"the inputs would be written in different layouts ({', '.join(sorted(layouts))}; "
                             f"inputs {kinds}); give --output-format, or one run per layout")
    layout = layouts.pop()
    out = Path(out_dir)
    _prepare_out_dir(out, files)

    started = False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline: nothing is reported anywhere
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                              "configure_logging": True}
        if address is None and not os.environ.get("RAY_ADDRESS"):
            kw["num_cpus"] = num_workers + 1  # the replicas, and reading
        ray.init(address=address, **kw)
        started = True
    try:
        _quiet_ray(ray)
        if device is None:
            device = "cuda" if ray.cluster_resources().get("GPU", 0) >= 1 else "cpu"
        gpu = 1 if device.startswith("cuda") else 0
        items = [{"file": i, "path": os.path.abspath(f), "format": fmt} for i, (f, fmt) in enumerate(zip(files, formats))]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(_read_inputs, batch_size=1, batch_format="numpy",
                            fn_kwargs={"chunk_size": chunk_size, "layout": layout},
                            num_cpus=0.5)  # unlike the replicas: the steps are not fused
        ds = ds.map_batches(_Replica, batch_size=chunk_size, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=num_workers),
                            fn_constructor_kwargs={"model": os.path.abspath(model), "out_dir": str(out.resolve()),
                                                   "layout": layout, "device": device, "batch_size": batch_size,
                                                   "backend": backend},
                            num_cpus=0 if gpu else 1, num_gpus=gpu)
        manifest = _collect(ds, out, files, model, task, layout, progress)
    finally:
        if started:
            ray.shutdown()
    return manifest


def _collect(ds, out: Path, files: list[str], model: str, task, layout: str, progress: bool) -> dict:
    """Run the dataset, gathering shard entries, reading counts and rejects; check and write the
    manifest."""
    import lingshu
    from lingshu.io import atomic_open

    shards: list[list[dict]] = [[] for _ in files]
    reports: list[dict | None] = [None] * len(files)
    rejects = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="predict", unit="text", file=sys.stderr)
    with atomic_open(out / REJECTS) as rej:  # written in the order the rejects come back
        try:
            for row in ds.iter_rows():
                file, kind, info = int(row["file"]), row["kind"], row["info"]
                if kind == "shard":
                    entry = json.loads(info)
                    shards[file].append(entry)
                    if bar is not None:
                        bar.update(entry["records"])
                elif kind == "report":
                    reports[file] = json.loads(info)
                else:
                    rej.write(info + "\n")
                    rejects += 1
        finally:
            if bar is not None:
                bar.close()
    if not rejects:
        (out / REJECTS).unlink()

    entries, inputs = [], []
    total = count = dropped = 0
    for i, f in enumerate(files):
        rep = reports[i]
        if rep is None:
            raise RayEngineError(f"no reading report came back for {f}: the run is incomplete")
        runs = sorted(shards[i], key=lambda s: s["first"])
        nxt = 0
        for s in runs:
            if s["first"] != nxt:
                raise RayEngineError(f"the shards of {f} do not cover its records: expected record {nxt}, "
                                     f"got a shard from {s['first']} ({s['path']})")
            nxt = s["last"] + 1
            entries.append({"path": s["path"], "input": i, "records": s["records"], "first": s["first"],
                            "last": s["last"]})
            count += s["count"]
            dropped += s["entities_dropped"]
        if nxt != rep["documents"]:
            raise RayEngineError(f"the shards of {f} hold {nxt} records; reading kept {rep['documents']}")
        total += nxt
        inputs.append({"path": os.path.abspath(f), "format": rep["format"], "records_read": rep["records_read"],
                       "records_skipped": rep["records_skipped"], "documents": nxt, "shards": len(runs)})
    manifest = {
        "lingshu_ray_predict": MANIFEST_VERSION,
        "lingshu_version": lingshu.__version__,
        "model": os.path.abspath(model),
        "task": task.name,
        "layout": layout,
        "inputs": inputs,
        "shards": entries,
        "documents": total,
        "predictions": count,
        "summary": task.summarize(count),
        "entities_dropped": dropped,
        "records_read": sum(i["records_read"] for i in inputs),
        "records_skipped": sum(i["records_skipped"] for i in inputs),
        "rejects": {"path": REJECTS, "records": rejects} if rejects else None,
    }
    with atomic_open(out / MANIFEST) as f:
        f.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def _json_list(layout: str, shard: Path) -> bool:
    """Whether a shard is a JSON list (CMeEE; pair in KUAKE-QQR's layout)."""
    if layout == "cmeee":
        return True
    if layout != "pair":
        return False
    with open(shard, "rb") as f:
        return f.read(1) == b"["


def concat_shards(shards: list[str | os.PathLike], layout: str, output: str | os.PathLike) -> int:
    """Join shard files of one layout, in the given order, into `output` (atomically): the bytes
    `write_documents` writes for all their records at once. JSON lists are spliced into one
    list; a byte-order mark a line layout (text, CoNLL) writes before a first text that starts
    with U+FEFF is kept only at the start of the file. Returns the bytes written."""
    from lingshu.data import write_documents
    from lingshu.io import atomic_open

    if not shards:
        write_documents([], output, layout)
        return os.path.getsize(output)
    shards = [Path(s) for s in shards]
    listed = _json_list(layout, shards[0])
    written = 0
    with atomic_open(output) as out:
        for k, shard in enumerate(shards):
            if _json_list(layout, shard) != listed:
                raise RayEngineError(f"{shard} is not in the layout of {shards[0]} (a JSON list and JSON lines); "
                                     "they cannot be merged into one file")
            with open(shard, encoding="utf-8", newline="") as f:
                if listed:  # "[\n  rec,\n  rec\n]\n" -> records joined with ",\n"
                    body = f.read()
                    if not (body.startswith("[\n") and body.endswith("\n]\n")):
                        raise RayEngineError(f"{shard} is not a JSON list as lingshu writes it")
                    body = body[2:-3]
                    piece = ("[\n" if k == 0 else ",\n") + body + ("\n]\n" if k == len(shards) - 1 else "")
                    out.write(piece)
                    written += len(piece.encode("utf-8"))
                    continue
                first = True
                for chunk in iter(lambda: f.read(1 << 20), ""):
                    if first and k > 0 and chunk.startswith("\ufeff"):
                        chunk = chunk[1:]
                    first = False
                    out.write(chunk)
                    written += len(chunk.encode("utf-8"))
    return written


def merge(out_dir: str | os.PathLike, output: str | os.PathLike) -> dict:
    """Join the shards of a finished ray run into one file in its layout, in manifest order
    (`concat_shards`); returns the manifest. RayEngineError when `out_dir` is not a finished ray
    run or a shard is missing."""
    from lingshu.io import same_file

    out_dir = Path(out_dir)
    m = read_manifest(out_dir)
    paths = [out_dir / s["path"] for s in m["shards"]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise RayEngineError(f"{len(missing)} shard(s) of {out_dir} are missing, e.g. {missing[0]}")
    if any(same_file(output, p) for p in paths + [out_dir / MANIFEST]):
        raise RayEngineError(f"{output} is a file of the ray run itself; give another output file")
    concat_shards(paths, m["layout"], output)
    return m


# --- the command ----------------------------------------------------------------------------

def cli_main(a) -> int:
    """`lingshu predict MODEL INPUT -o OUT_DIR --engine ray`, from the parsed arguments (model,
    input, output, format, output_format, batch_size, backend, device, workers; optional:
    chunk_size, address). Prints a summary as the local engine does; returns the exit status."""
    from lingshu.data import DataError

    if getattr(a, "decode", None):
        print("error: --decode is not available with --engine ray yet; set the option in the model's "
              "config.json (its \"lingshu\" field) instead", file=sys.stderr)
        return 2
    try:
        m = run(a.model, a.input, a.output, num_workers=getattr(a, "workers", None) or 2, batch_size=a.batch_size,
                backend=a.backend, input_format=a.format, output_format=a.output_format, device=a.device,
                chunk_size=getattr(a, "chunk_size", None) or 1024, address=getattr(a, "address", None),
                progress=True)
    except (RayEngineError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    kept = m["records_read"] - m["records_skipped"]
    print(f"read {m['records_read']:,} records from {len(m['inputs'])} file(s): {kept:,} kept, "
          f"{m['records_skipped']:,} skipped", file=sys.stderr)
    if m["rejects"]:
        print(f"{m['rejects']['records']:,} unreadable record(s) written to "
              f"{os.path.join(a.output, m['rejects']['path'])} (file, line, errors, record)", file=sys.stderr)
    print(f"wrote {m['documents']} documents, {m['summary']} to {a.output} ({len(m['shards'])} shards, "
          f"{m['layout']} layout; {MANIFEST} lists them; "
          f"`lingshu merge {a.output} FILE` joins them)")
    return 0


def merge_main(a) -> int:
    """`lingshu merge FOLDER OUTPUT`."""
    try:
        m = merge(a.folder, a.output)
    except RayEngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {m['documents']} documents from {len(m['shards'])} shards to {a.output} ({m['layout']} layout)")
    return 0
