"""The `lingshu` command.

    lingshu quickstart                         # demo data -> tiny model -> evaluate -> predict
    lingshu train task=ner-crf model=tiny-bert data=cluener trainer.epochs=1 output_dir=runs/x
    lingshu train task=re model=tiny-modernbert data=cmeie output_dir=runs/cmeie      # SPO triples
    lingshu train task=pair model=tiny-bert data=kuake-qqr output_dir=runs/qqr        # sentence pairs
    lingshu evaluate runs/x ../shared/data/cluener/dev.json -o report.json
    lingshu predict runs/x input.txt -o predictions.jsonl
    lingshu data validate FILE | lingshu data stats FILE

`train` takes Hydra overrides (key=value, -m sweeps, --cfg job to print the config); the other
commands take ordinary options.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

log = logging.getLogger("lingshu")

TRAIN_HELP = """usage: lingshu train [OVERRIDE ...] [-m] [--cfg job]

Fine-tune an encoder. Configuration is Hydra's: pick a config per group and override any key.

groups (lingshu/conf/):
  model=   tiny-bert | tiny-modernbert | bert-base-chinese | chinese-bert-wwm-ext |
           chinese-roberta-wwm-ext | pretrained   (model.name_or_path=HUB_NAME_OR_DIR)
  task=    ner-softmax | ner-crf | ner-globalpointer | re | re-gplinker (SPO triples) | pair (sentence pairs)
  data=    none | cluener | cmeee | cmeie | kuake-qqr | demo
           (data.train= data.dev= data.format= data.schema=SPO_SCHEMA data.max_seq_length=)
  trainer= default   (trainer.epochs= max_steps= batch_size= learning_rate= seed= bf16= …)

examples:
  lingshu train task=ner-crf model=tiny-bert data.train=train.json data.dev=dev.json \\
      trainer.epochs=1 output_dir=runs/cluener-crf
  lingshu train -m trainer.learning_rate=1e-4,5e-4 data=cluener output_dir=runs/sweep
  lingshu train --cfg job task=ner-globalpointer      # print the resolved config and exit
  torchrun --nproc_per_node 2 -m lingshu.cli train ...   # data parallel (gloo on CPU)
"""


def _setup_logging(level=logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "urllib3", "filelock", "jieba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


ADAPT_HELP = """usage: lingshu adapt [OVERRIDE ...] [-m] [--cfg job]

Continued MLM pretraining (or from scratch) on domain text, with entity-aware whole-word masking.

  model=    tiny-bert | tiny-modernbert (from scratch; model.tokenizer=DIR) | pretrained
            (model.name_or_path=CHECKPOINT)
  data.train=CORPUS (one sentence a line: `lingshu corpus prepare`)  data.heldout=1000
  data.max_seq_length=128  data.pack=true
  masking.strategy=entity-wwm|wwm|char  masking.lexicon=TERMS.txt  masking.entity_weight=3
  masking.replace_prob=0.05 delete_prob=0 entity_mask_prob=0.1  masking.mlm_probability=0.15
            (entity-wwm needs masking.lexicon; for a model from scratch masking.strategy=char
            did best in benchmarks/RESULTS.md)
  optimizer=adamw|lamb   trainer.max_steps= batch_size= learning_rate= …

example:
  lingshu adapt model=tiny-bert model.tokenizer=tok data.train=corpus.txt \
      masking.lexicon=../shared/data/lexicon/cmekg_terms.txt trainer.max_steps=300 output_dir=runs/mlm
"""


def cmd_train(overrides: list[str], config_name: str = "config") -> int:
    if any(a in ("-h", "--help") for a in overrides):
        print(TRAIN_HELP if config_name == "config" else ADAPT_HELP)
        return 0
    hint = _override_hint(overrides, config_name)
    if hint:
        print(hint, file=sys.stderr)
        return 2
    flags = ("--cfg", "-c", "--info", "--help", "hydra.")
    single = int(os.environ.get("WORLD_SIZE", "1")) == 1  # under torchrun rank 0's start_run checks
    if single and not any(o in ("-m", "--multirun") or o.startswith(flags) for o in overrides):
        # the output folder and data paths are checked before Hydra writes .hydra/ into the folder
        from lingshu.config import compose
        from lingshu.training.harness import check_data_paths, check_output_dir

        cfg = compose([o for o in overrides if "=" in o and not o.startswith("-")], config_name)
        try:
            check_output_dir(cfg.output_dir, bool(cfg.get("overwrite")), cfg.trainer.resume not in (None, False, ""),
                             warn=False)
            check_data_paths(cfg, choice=next((o.split("=", 1)[1] for o in overrides if o.startswith("data=")), None))
            if cfg.trainer.resume not in (None, False, ""):  # nothing to resume from: say so before Hydra writes
                from pathlib import Path

                from lingshu.training.harness import resume_target

                resume_target(cfg.trainer, Path(str(cfg.output_dir)))
        except SystemExit as e:
            print(e if str(e).startswith("error:") else f"error: {e}", file=sys.stderr)
            return 2
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    from lingshu.data import DataError
    from lingshu.modeling.backbone import ModelPathError, OfflineModelError

    if config_name == "adapt":
        from lingshu.pretrain.mlm import run_adapt as run
    else:
        from lingshu.training.train import run

    @hydra.main(config_path="conf", config_name=config_name, version_base="1.3")
    def _main(cfg: DictConfig):
        try:
            return run(cfg, HydraConfig.get().runtime.output_dir)
        except (DataError, ModelPathError, OfflineModelError) as e:  # a message, not a traceback
            raise SystemExit(f"error: {e}") from None

    saved = sys.argv
    sys.argv = [f"lingshu-{'train' if config_name == 'config' else config_name}"] + overrides
    try:
        _main()
    finally:
        sys.argv = saved
    return 0


def _override_hint(overrides: list[str], config_name: str = "config") -> str | None:
    """Check key=value overrides against the config before Hydra runs; suggest close keys.

    Hydra's own error ("Key 'epohcs' is not in struct") names the key but not what was meant.
    """
    import difflib

    from omegaconf import OmegaConf

    from lingshu.config import CONF_DIR, compose

    plain = [o for o in overrides if "=" in o and not o.startswith(("-", "hydra.", "+", "~"))]
    groups = {d.name: sorted(p.stem for p in d.glob("*.yaml")) for d in CONF_DIR.iterdir() if d.is_dir()}
    from hydra.core.config_store import ConfigStore

    for g in groups:  # configs registered from code (lingshu.tasks.register(..., configs=))
        try:
            groups[g] = sorted(set(groups[g]) | {n.removesuffix(".yaml") for n in ConfigStore.instance().list(g)})
        except OSError:  # ConfigStore has nothing in this group
            pass
    for o in plain:
        key, value = o.split("=", 1)
        if key in groups and "," not in value and value not in groups[key]:
            near = difflib.get_close_matches(value, groups[key], n=3)
            return (f"error: unknown {key} '{value}'. Choose one of: {', '.join(groups[key])}"
                    + (f" (did you mean {' or '.join(near)}?)" if near else ""))
    try:
        cfg = compose([o if "," not in o.split("=", 1)[1] else o.split(",")[0] for o in plain], config_name)
    except Exception as e:  # hydra.errors.ConfigCompositionException and friends
        msg = str(e).splitlines()[0]
        keys = [k for k, _ in _flat(OmegaConf.to_container(
            compose([o for o in plain if o.split("=")[0] in groups], config_name)))]
        bad = next((o.split("=", 1)[0] for o in plain if o.split("=", 1)[0] not in keys
                    and o.split("=", 1)[0] not in groups and not o.split("=", 1)[0].startswith("model.config.")), None)
        near = difflib.get_close_matches(bad, keys, n=3) if bad else []
        return (f"error: {msg}" + (f"\n  unknown key '{bad}'" if bad else "")
                + (f"; did you mean {' or '.join(near)}?" if near else "")
                + "\n  see `lingshu train --help`, or `lingshu train --cfg job` for every key"
                + " (+key=value adds a key that is not there, e.g. +model.config.rope_theta=1e4)")
    del cfg
    return None


def _flat(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield from _flat(v, key + ".")
        else:
            yield key, v


def _model_task(model: str):
    """The task of a lingshu model folder, read from its config.json without loading weights
    (ModelPathError/OfflineModelError/ValueError for a path that is not one)."""
    from lingshu.modeling.backbone import ModelPathError, resolve_model
    from lingshu.tasks import task_of

    local = resolve_model(model)
    try:
        spec = json.loads(open(os.path.join(local, "config.json"), encoding="utf-8").read()).get("lingshu")
    except (ValueError, AttributeError) as e:
        raise ModelPathError(f"{model}/config.json is not a JSON object ({e})") from None
    if not isinstance(spec, dict):
        raise ModelPathError(f"{model} is not a lingshu model: its config.json has no 'lingshu' field (an encoder "
                             "checkpoint is fine-tuned first: `lingshu train model=pretrained "
                             f"model.name_or_path={model} ...`)")
    try:
        return task_of(spec)
    except (KeyError, ValueError) as e:
        raise ModelPathError(f"{model}: {e.args[0] if e.args else e}") from None


def _decode_options(pairs: list[str]) -> dict | None:
    """--decode KEY=VALUE options -> the `thresholds` a pipeline call takes (numbers as numbers);
    ValueError for one without '='."""
    out: dict = {}
    for p in pairs or []:
        key, eq, value = p.partition("=")
        if not eq or not key:
            raise ValueError(f"--decode {p!r}: give KEY=VALUE, e.g. span_threshold=0.5")
        try:
            out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            out[key] = value
    return out or None


def _load_model(a, src):
    """`lingshu.load` with the command's options and its --decode options checked against the
    model: (pipeline, decode options), or None once the error is printed. `src` (the opened
    input) is closed on any failure."""
    import lingshu

    try:
        nlp = lingshu.load(a.model, device=a.device, batch_size=a.batch_size, backend=a.backend, threads=a.threads)
        decode = _decode_options(a.decode)
        nlp.decoding_spec(decode)
        return nlp, decode
    except ValueError as e:
        src.close()
        print(f"error: {e}", file=sys.stderr)
        return None
    except BaseException:
        src.close()
        raise


def _open_input(path: str, fmt: str | None):
    """(Source, layout): the input opened once (a pipe keeps its head for the reader)."""
    from lingshu.data import detect_format
    from lingshu.data.source import Source

    src = Source(path)
    try:
        return src, detect_format(src, fmt)
    except BaseException:
        src.close()
        raise


def cmd_evaluate(a) -> int:
    from lingshu.data import read_documents

    task = _model_task(a.model)  # before loading weights: a wrong file is refused in a second
    src, fmt = _open_input(a.data, a.format)
    if task.eval_layouts and fmt not in task.eval_layouts:
        src.close()
        print(f"error: {a.data} is a {fmt} file; a {task.name} model is scored on "
              f"{', '.join(task.eval_layouts)} files (gold {task.noun} annotations it predicts)", file=sys.stderr)
        return 2
    loaded = _load_model(a, src)
    if loaded is None:
        return 2
    nlp, decode = loaded
    allowed = task.eval_allowed_labels(nlp.labels, a.strict_labels, getattr(nlp, "patterns", None))
    res = read_documents(src, format=fmt, labels=allowed)
    print(res.report.summary().splitlines()[0], file=sys.stderr)
    if res.report.records_skipped:
        print(res.report.summary(), file=sys.stderr)
    gold = res.documents
    if not gold:
        print(f"error: nothing to score: none of the {res.report.records_read:,} records of {a.data} could be "
              "read (see above)", file=sys.stderr)
        return 1
    if not task.has_gold(gold):  # a test file: every score would be 0 (or undefined)
        print(f"error: nothing to score: the {len(gold):,} records of {a.data} hold no gold "
              f"{task.summarize(0).split(' ', 1)[1]} (an unlabelled test file?); `lingshu predict` predicts it",
              file=sys.stderr)
        return 1
    pred = nlp.predict(gold, progress=True, **({"thresholds": decode} if decode else {}))
    report = task.metrics(gold, pred)
    report.update({"model": a.model, "data": a.data, "task": task.name, "decoder": nlp.spec.decoder,
                   "records_skipped": res.report.records_skipped})
    if decode:
        report["decode"] = decode
    print(f"\n{a.data}: {report['scheme']}\n")
    print(task.format_report(report))
    warning = task.prediction_warning(report)
    if warning:
        report["warning"] = warning
        print(f"\nWARNING: {warning}", file=sys.stderr)
    for key, (scheme, text) in task.extra_reports(gold, pred, nlp.spec, nlp.tokenizer).items():
        report[key] = {"scheme": scheme, "report": text}
        print(f"\n{key} report ({scheme}):\n" + text)
    if a.output:
        from lingshu.io import atomic_write_text

        atomic_write_text(a.output, json.dumps(report, indent=2, ensure_ascii=False))
        print(f"wrote {a.output}")
    return 0


def cmd_predict(a) -> int:
    """Stream: file -> reader -> `nlp.pipe` -> writer, so memory stays bounded whatever the
    input's size; records are written in input order."""
    from lingshu.data import ValidationReport, iter_documents, write_documents
    from lingshu.data.validate import AnyLabel

    task = _model_task(a.model)  # the output layout is checked before the weights load
    try:
        task.output_layout(a.output_format, None)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    src, fmt = _open_input(a.input, a.format)
    if task.input_layouts and fmt not in task.input_layouts:
        src.close()
        print(f"error: {a.input} is a {fmt} file; a {task.name} model predicts from "
              f"{', '.join(task.input_layouts)} files", file=sys.stderr)
        return 2
    out_fmt = task.output_layout(a.output_format, fmt)
    loaded = _load_model(a, src)
    if loaded is None:
        return 2
    nlp, decode = loaded
    import itertools

    from lingshu.inference import journal

    jpath = journal.journal_path(a.output)
    head = journal.header(a.input, a.model, out_fmt, nlp.batch_size)
    if decode:
        head["decode"] = decode  # other options predict otherwise: a resume must use the same
    done = 0
    if jpath.exists() and getattr(a, "resume", False):
        try:
            done = journal.open_for_resume(jpath, head)
        except ValueError as e:
            src.close()
            print(f"error: {e}", file=sys.stderr)
            return 2
        # resume at a boundary of the pipe's buffers, so every batch is cut as in an uninterrupted
        # run: an int8 export's answers depend on the batch (activation scales are per batch)
        done = journal.keep(jpath, done - done % nlp.buffer_size())
        print(f"resuming: {done:,} records already predicted in {jpath}", file=sys.stderr)
    else:
        if jpath.exists():
            print(f"note: {jpath} holds an interrupted run; starting afresh (--resume continues it instead)",
                  file=sys.stderr)
        journal.start(jpath, head)
    rejects = journal.Rejects(a.rejects or journal.rejects_path(a.output))
    report = ValidationReport(on_reject=rejects.add)
    # prediction ignores gold labels: a pair record labelled "NA" is predicted, not skipped
    docs = iter_documents(src, format=fmt, labels=AnyLabel() if fmt == "pair" else None, report=report)
    unwritable = [0]
    docs = journal.writable(docs, out_fmt, rejects.add, unwritable)  # before islice: a resume skips the same records
    written = done
    try:
        for _ in journal.append(jpath, nlp.pipe(itertools.islice(docs, done, None), progress=True, thresholds=decode)):
            written += 1
    except BaseException as e:
        rejects.close(ok=False)
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            print(f"\ninterrupted: {written:,} records predicted are kept in {jpath}; the same command with "
                  "--resume continues after them", file=sys.stderr)
        raise
    rejects.close()
    total = 0

    def counted(stream):
        nonlocal total
        for d in stream:
            total += task.count(d)
            yield d

    summary = write_documents(counted(journal.read(jpath)), a.output, out_fmt)
    jpath.unlink()
    print(report.summary().splitlines()[0], file=sys.stderr)
    if unwritable[0]:
        print(f"{unwritable[0]:,} record(s) the {out_fmt} layout cannot hold were not predicted "
              f"(listed in {rejects.path})", file=sys.stderr)
    if rejects.count - unwritable[0]:
        print(f"{rejects.count - unwritable[0]:,} unreadable record(s) written to {rejects.path} (file, line, errors, "
              "record)", file=sys.stderr)
    print(f"wrote {summary.documents} documents, {task.summarize(total)} to {a.output} ({out_fmt} layout)")
    return 0


def cmd_data(a) -> int:
    from lingshu.data import DataError, corpus_stats, format_stats, read_documents

    try:
        labels = set(a.labels.split(",")) if getattr(a, "labels", None) else None
        src, fmt = _open_input(a.file, a.format)
        res = read_documents(src, format=fmt, strict=getattr(a, "strict", False), labels=labels)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if a.data_cmd == "validate":
        lines, status = _validate_report(a, res)
        try:
            for line in lines:
                print(line)
        except BrokenPipeError:  # `... | head`: the exit status still says whether the data is clean
            _quiet_stdout()
        return status
    if res.report.errors:  # stats of what could be read; say what could not
        print(res.report.summary(), file=sys.stderr)
    print(format_stats(corpus_stats(res.documents)))
    return 0


def _validate_report(a, res) -> tuple[list[str], int]:
    """`lingshu data validate`: the lines to print (the report, then OK or FAILED as the last
    line) and the exit status, 1 on any error: a skipped record, a problem outside every record
    (data after a JSON list's closing bracket, a list never closed), or with --strict and
    --schema, triples outside the schema."""
    lines = [res.report.summary()]
    failed = bool(res.report.errors)
    if getattr(a, "schema", None):
        from lingshu.data import load_spo_schema, schema_coverage

        cov = schema_coverage(res.documents, load_spo_schema(a.schema))
        lines.append(f"schema {a.schema}: {cov['in_schema']:,} of {cov['triples']:,} triples fit its patterns; "
                     f"{cov['outside_schema']:,} do not")
        lines += [f"  outside: ({st}, {pred}, {ot}) x{n}" for st, pred, ot, n in cov["outside"][:20]]
        if cov["outside_schema"] and getattr(a, "strict", False):
            failed = True
    n = res.report.records_skipped
    if not failed:
        lines.append("OK: every record kept")
    elif n:
        lines.append(f"FAILED: {n:,} record{'s' if n != 1 else ''} skipped (exit status 1)")
    elif res.report.errors:
        lines.append("FAILED: the file has errors outside its records, listed above (exit status 1)")
    else:
        lines.append("FAILED: triples outside the schema (exit status 1)")
    return lines, 1 if failed else 0


def cmd_fill_mask(a) -> int:
    from lingshu.pretrain.mlm import fill_mask

    for i, preds in enumerate(fill_mask(a.model, a.text, a.top_k)):
        print(f"[MASK] #{i + 1}: " + "  ".join(f"{t} {p:.3f}" for t, p in preds))
    return 0


def cmd_quickstart(a) -> int:
    from lingshu.quickstart import quickstart

    return quickstart(a.dir, steps=a.steps, model=a.model)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lingshu",
        description="lingshu (灵枢): adapt Chinese encoders to a domain; extract entities from Chinese medical text.",
        epilog="Run `lingshu COMMAND --help` for a command's options. Start with `lingshu quickstart`.",
    )
    p.add_argument("--version", action="version", version=f"lingshu {__import__('lingshu').__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    q = sub.add_parser(
        "quickstart", help="train, evaluate and run a tiny model on built-in demo data (offline, minutes)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="What it does, in four steps:\n"
               "  1. writes demo NER data into DIR (--dir): demo_train.json, demo_dev.json, demo_predict.txt\n"
               "  2. trains a from-scratch model + GlobalPointer on it (the `lingshu train` command is printed)\n"
               "  3. saves the model to DIR/model (config.json, weights, tokenizer, metrics.jsonl, curves)\n"
               "  4. loads it with lingshu.load and prints predictions on new sentences\n"
               "Then try: lingshu evaluate DIR/model DIR/demo_dev.json\n          lingshu predict DIR/model DIR/demo_predict.txt -o predictions.jsonl")
    q.add_argument("--dir", default="lingshu-quickstart", help="where the demo data and model go (default: %(default)s)")
    q.add_argument("--steps", type=int, default=300, help="training steps (default: %(default)s)")
    q.add_argument("--model", default="tiny-bert", help="model config to build from scratch (default: %(default)s)")

    sub.add_parser("train", help="fine-tune an encoder (Hydra overrides; `lingshu train --help`)", add_help=False)
    sub.add_parser("adapt", help="continued MLM pretraining on domain text (Hydra overrides; `lingshu adapt --help`)",
                   add_help=False)
    from lingshu.pretrain.corpus import add_cli as corpus_cli
    from lingshu.pretrain.tokenizer import add_cli as tokenizer_cli

    corpus_cli(sub)
    tokenizer_cli(sub)
    fm = sub.add_parser("fill-mask", help="top predictions of an MLM for each [MASK] in a text")
    fm.add_argument("model", help="a directory written by `lingshu adapt` (or any masked-LM checkpoint)")
    fm.add_argument("text", help='e.g. "患者出现[MASK][MASK]等症状"')
    fm.add_argument("--top-k", type=int, default=5, help="predictions shown per [MASK] (default: %(default)s)")

    def model_opts(sp):
        sp.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda when available)")
        sp.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (default: %(default)s)")
        sp.add_argument("--backend", default=None, choices=["torch", "onnx"],
                        help="what runs the model (default: onnx for a folder `lingshu export onnx` wrote, else torch)")
        sp.add_argument("--format", default=None,
                        help="input layout: cluener, cmeee, spans, conll, text, cmeie, pair (default: detected)")
        sp.add_argument("--threads", type=int, default=None,
                        help="CPU threads per forward pass (default: all cores)")
        sp.add_argument("--decode", action="append", default=[], metavar="KEY=VALUE",
                        help="a decoding option of the model for this run, repeatable: span_threshold=0.5 "
                             "(GlobalPointer), tag_decoding=constrained (softmax), mention_threshold, "
                             "type_threshold, pattern_threshold, max_mentions (relations)")

    e = sub.add_parser("evaluate", help="a model's strict scores on annotated data: NER span P/R/F1 per type, "
                                        "RE triple P/R/F1 per predicate, pair accuracy and macro-F1 per label")
    e.add_argument("model", help="model directory written by `lingshu train`")
    e.add_argument("data", help="annotated file (CLUENER, CMeEE, spans, CoNLL; CMeIE; KUAKE-QQR or text1/text2)")
    e.add_argument("-o", "--output", help="write the JSON report here")
    e.add_argument("--strict-labels", action="store_true",
                   help="skip records with types (RE: predicates) the model does not know")
    model_opts(e)

    pr = sub.add_parser("predict", help="predict entities, SPO triples or pair labels for a file")
    pr.add_argument("model", help="model directory written by `lingshu train`")
    pr.add_argument("input", help="text file (one text a line) or an annotated file in any layout lingshu reads")
    pr.add_argument("-o", "--output", required=True, help="output file (written when the input is done; "
                                                          "until then predictions go to .OUTPUT.partial.jsonl)")
    pr.add_argument("--resume", action="store_true",
                    help="continue a run that was killed or interrupted, after its last complete record")
    pr.add_argument("--engine", default="local", choices=["local", "ray"],
                    help="local: this process (default); ray: Ray Data, one model replica per worker, over a file, "
                         "a folder or a glob, into OUTPUT as a folder of shards + manifest.json (pip install "
                         "'lingshu[ray]'; `lingshu merge OUTPUT FILE` joins them)")
    pr.add_argument("--workers", type=int, default=2, help="--engine ray: model replicas (default: %(default)s)")
    pr.add_argument("--chunk-size", type=int, default=1024,
                    help="--engine ray: records per block and at most per shard (default: %(default)s)")
    pr.add_argument("--address", default=None,
                    help="--engine ray: a running Ray cluster (default: start a local instance)")
    pr.add_argument("--rejects", default=None, metavar="PATH",
                    help="where unreadable input records go, one JSON line each with file, line, errors and "
                         "the record (default: OUTPUT.rejects.jsonl; written only when there are some)")
    pr.add_argument("--output-format", default=None,
                    help="layout of the output (default: the input's layout when it can hold the predictions, "
                         "else NER: spans, RE: cmeie (the CBLUE submission layout), pair: pair)")
    model_opts(pr)

    mg = sub.add_parser("merge", help="join the shards of `lingshu predict --engine ray` into one file")
    mg.add_argument("folder", help="the output folder of a ray run (it holds manifest.json)")
    mg.add_argument("output", help="the file to write, in the run's layout")

    sv = sub.add_parser("serve", help="an HTTP server for a model: POST /v1/extract, a web page at /",
                        epilog="Example: lingshu serve runs/cmeee-gp --port 8000, then open http://127.0.0.1:8000/ "
                               "or POST {\"text\": \"...\"} to /v1/extract (API docs at /docs)")
    sv.add_argument("model", help="model directory written by `lingshu train` or `lingshu export onnx`")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    sv.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    sv.add_argument("--api-key", default=None,
                    help="require this key (X-API-Key or Authorization: Bearer) on every endpoint but /health "
                         "(default: $LINGSHU_API_KEY; none)")
    sv.add_argument("--max-batch", type=int, default=32, help="texts per forward pass (default: %(default)s)")
    sv.add_argument("--max-wait-ms", type=float, default=5.0,
                    help="how long a request waits for others to share its batch (default: %(default)s)")
    sv.add_argument("--max-queue", type=int, default=256,
                    help="texts waiting before new requests get 503 (default: %(default)s)")
    sv.add_argument("--max-texts", type=int, default=64, help="texts per request (default: %(default)s)")
    sv.add_argument("--max-text-chars", type=int, default=10_000, help="characters per text (default: %(default)s)")
    sv.add_argument("--device", default=None, help="cpu, cuda, … (default: cuda when available)")
    sv.add_argument("--backend", default=None, choices=["torch", "onnx"], help="(default: what the folder holds)")
    sv.add_argument("--threads", type=int, default=None, help="CPU threads per forward pass (default: all cores)")
    sv.set_defaults(func=cmd_serve)

    x = sub.add_parser("export", help="export a trained model for serving (ONNX)")
    xsub = x.add_subparsers(dest="export_cmd", metavar="FORMAT", required=True)
    xo = xsub.add_parser("onnx", help="the model's tensor stages as ONNX graphs (dynamic batch and length), "
                                      "into a model folder that `lingshu.load` runs on onnxruntime",
                         epilog="Example: lingshu export onnx runs/cmeee-gp runs/cmeee-gp-onnx --int8 && "
                                "lingshu predict runs/cmeee-gp-onnx notes.txt -o notes.jsonl")
    xo.add_argument("model", help="model directory written by `lingshu train`")
    xo.add_argument("out", help="the folder to write (a new one, or an earlier export, which is replaced)")
    xo.add_argument("--int8", action="store_true", help="dynamic int8 quantization of the weights (onnxruntime)")
    xo.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    xo.add_argument("--no-optimize", dest="optimize", action="store_false",
                    help="leave the graph as exported (default: fuse BERT-style operators with onnxruntime's "
                         "transformer optimizer)")
    xo.set_defaults(func=cmd_export_onnx)

    d = sub.add_parser("data", help="check and describe data files")
    dsub = d.add_subparsers(dest="data_cmd", metavar="SUBCOMMAND", required=True)
    v = dsub.add_parser("validate", help="report bad records with file, line and field")
    v.add_argument("file", help="the file to check (any layout lingshu reads; a pipe such as /dev/stdin too)")
    formats = "cluener, cmeee, spans, conll, text, cmeie, pair (default: detected)"
    v.add_argument("--format", default=None, help=formats)
    v.add_argument("--strict", action="store_true", help="fail on the first problem")
    v.add_argument("--schema", default=None, help="SPO schema file (CMeIE): count triples outside its patterns")
    v.add_argument("--labels", default=None, help="comma-separated allowed labels (entity types; cmeie: predicates; "
                                                  "pair: class labels); any other is an error")
    s = dsub.add_parser("stats", help="records, lengths, entities per type, nested/overlapping counts; "
                                      "relations per predicate; label distribution")
    s.add_argument("file", help="the file to describe")
    s.add_argument("--format", default=None, help=formats)
    return p


def cmd_serve(a) -> int:
    try:
        _model_task(a.model)
        from lingshu.inference.server import serve
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"error: lingshu serve needs {e.name}: pip install 'lingshu[serve]'", file=sys.stderr)
        return 2
    serve(a.model, a.host, a.port, api_key=a.api_key, device=a.device, backend=a.backend, threads=a.threads,
          max_batch=a.max_batch,
          max_wait_ms=a.max_wait_ms, max_queue=a.max_queue, max_texts=a.max_texts, max_text_chars=a.max_text_chars)
    return 0


def cmd_export_onnx(a) -> int:
    from lingshu.inference.onnx import export_onnx

    try:
        _model_task(a.model)  # a folder that is not a lingshu model: a one-line error before anything loads
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    m = export_onnx(a.model, a.out, int8=a.int8, opset=a.opset, optimize=a.optimize)
    stages = ", ".join(f"{k} ({', '.join(v['inputs'])} -> {', '.join(v['outputs'])})" for k, v in m["stages"].items())
    print(f"exported {a.model} to {a.out}{' (int8 weights)' if a.int8 else ''}: {stages}")
    print(f"largest difference from torch on an example batch: {m['check_max_abs_diff']:.3g}")
    print(f"load it with lingshu.load({a.out!r}), or `lingshu predict {a.out} INPUT -o OUTPUT`")
    return 0


def _check_paths(a) -> str | None:
    """What is wrong with the paths a command was given, before it loads anything: an input that
    is missing or a folder, an output that is a folder or is the input itself."""
    from lingshu.io import same_file

    inputs = [getattr(a, n) for n in ("data", "input", "file") if isinstance(getattr(a, n, None), str)]
    for many in ("inputs", "corpus"):  # corpus prepare IN..., tokenizer train CORPUS...
        inputs += [i for i in getattr(a, many, None) or [] if isinstance(i, str)]
    for path in inputs:
        if os.path.isdir(path):
            return f"{path} is a directory; give a file"
        if not os.path.exists(path):
            return f"no such file: {path}"
    out = getattr(a, "output", None)
    if isinstance(out, str):
        if os.path.isdir(out) and a.cmd != "tokenizer":  # tokenizer train -o names a folder
            return f"-o {out} is a directory; give the file to write"
        for path in inputs:
            if same_file(out, path):
                return f"-o {out} is the input file {path}: it would be overwritten; give another output file"
    rejects = getattr(a, "rejects", None)
    what = f"--rejects {rejects}"
    if rejects is None and a.cmd == "predict" and isinstance(out, str):
        from lingshu.inference.journal import rejects_path

        rejects = str(rejects_path(out))
        what = f"the rejects file {rejects} (OUTPUT.rejects.jsonl)"
    if isinstance(rejects, str):
        for path in inputs + ([out] if isinstance(out, str) else []):
            if same_file(rejects, path):
                return f"{what} is {path}: it would be overwritten; give --rejects another file"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _setup_logging()
    import signal

    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # `kill PID`: unwind like Ctrl-C, so temp files go
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if argv and argv[0] == "train":
        return cmd_train(argv[1:])
    if argv and argv[0] == "adapt":
        return cmd_train(argv[1:], "adapt")
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.cmd is None:
        parser.print_help()
        return 0
    handlers = {"evaluate": cmd_evaluate, "predict": cmd_predict, "data": cmd_data, "quickstart": cmd_quickstart,
                "fill-mask": cmd_fill_mask}
    if a.cmd == "predict" and a.engine == "ray":  # inputs may be folders and globs, the output a folder
        from lingshu.inference import ray_engine

        return ray_engine.cli_main(a)
    if a.cmd == "merge":
        from lingshu.inference import ray_engine

        return ray_engine.merge_main(a)
    problem = _check_paths(a)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from lingshu.data import DataError
    from lingshu.modeling.backbone import ModelPathError, OfflineModelError

    try:
        return handlers[a.cmd](a) if a.cmd in handlers else a.func(a)
    except (FileNotFoundError, ModelPathError, OfflineModelError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `lingshu data stats FILE | head`: the reader has gone, nothing is wrong
        _quiet_stdout()
        return 0


def _quiet_stdout() -> None:
    """After a closed pipe on stdout: send what is still buffered for it to /dev/null, so
    Python's exit does not fail (and print a BrokenPipe traceback) flushing it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
