"""Relation extraction on CMeIE and sentence-pair classification on KUAKE-QQR: honest baselines.

Arms (each a `lingshu train` command in its own process, then `lingshu evaluate` on dev):

    re-modernbert   task=re   model=tiny-modernbert   CMeIE train (2,585 texts) -> dev (500)
    re-bert         task=re   model=tiny-bert         same
    re-gplinker-*   task=re-gplinker (token-pair heads), either model, same (not in the default arms)
    pair-bert       task=pair model=tiny-bert         KUAKE-QQR train (15,000) -> dev (1,599; "NA" skipped)
    *-pretrained    the same tasks on --model-dir (model=pretrained)
    pair-reference  benchmarks/reference_pair.py (run_glue.py style) on --model-dir, the pair budget
    re-reference    benchmarks/reference_re.py (GPLinker recipe) on --model-dir, the RE budget

All from scratch (random weights, a character vocabulary built from the training texts), so the
scores are low by design: the point is a reproducible baseline that pretraining can improve on.
Reports dev F1 (RE: exact triples, also with types; mentions as a diagnostic) or accuracy and
macro-F1 (pair), training tokens/s, peak RSS of the process and, on CUDA, peak GPU memory.

    HF_HUB_OFFLINE=1 python benchmarks/bench_re.py                       # CPU: a few hours
    HF_HUB_OFFLINE=1 python benchmarks/bench_re.py --re-epochs 1 --pair-epochs 1 --arms re-bert,pair-bert
    HF_HUB_OFFLINE=1 python benchmarks/bench_re.py --arms re-pretrained,re-gplinker-pretrained,re-reference \
        --model-dir ME5 --batch-size 32 --re-limit 24 --re-max-steps 2      # smoke run of the side by side

Training CPU seconds are those of the process inside `Trainer.train` (benchmarks/_timed.py); for
lingshu that includes its dev pass at the end of training (`eval_in_training_s`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ner import run_arm, subset  # noqa: E402  (one subprocess runner for every benchmark)

ROOT = Path(__file__).resolve().parents[1]

ARMS = {
    "re-modernbert": ("re", "tiny-modernbert", "cmeie"),
    "re-bert": ("re", "tiny-bert", "cmeie"),
    "pair-bert": ("pair", "tiny-bert", "kuake-qqr"),
    # the GPLinker-style alternative (task=re-gplinker), same budget
    "re-gplinker-modernbert": ("re-gplinker", "tiny-modernbert", "cmeie"),
    "re-gplinker-bert": ("re-gplinker", "tiny-bert", "cmeie"),
    # with --model-dir: the same tasks on a pretrained encoder (model=pretrained)
    "re-pretrained": ("re", "pretrained", "cmeie"),
    "re-gplinker-pretrained": ("re-gplinker", "pretrained", "cmeie"),
    "pair-pretrained": ("pair", "pretrained", "kuake-qqr"),
    # benchmarks/reference_pair.py (run_glue.py style) on --model-dir, the pair arms' budget
    "pair-reference": ("reference", "pretrained", "kuake-qqr"),
    # benchmarks/reference_re.py (GPLinker recipe) on --model-dir, the RE arms' budget
    "re-reference": ("reference", "pretrained", "cmeie"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--arms", default="re-modernbert,re-bert,pair-bert",
                    help=f"comma-separated, from: {', '.join(ARMS)}")
    ap.add_argument("--re-epochs", type=float, default=8)
    ap.add_argument("--pair-epochs", type=float, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", default="benchmarks/work/re")
    ap.add_argument("--out", default="benchmarks/results/re_pair_benchmark.json")
    ap.add_argument("--extra", nargs="*", default=[], help="overrides added to every train command")
    ap.add_argument("--model-dir", default="", help="pretrained encoder directory for the *-pretrained arms")
    ap.add_argument("--lr", type=float, default=0, help="> 0: trainer.learning_rate of every arm (and the reference)")
    ap.add_argument("--re-limit", type=int, default=0, help="> 0: the first N CMeIE train and dev texts (smoke runs)")
    ap.add_argument("--re-max-steps", type=int, default=0, help="> 0: RE arms stop after this many steps (smoke runs)")
    a = ap.parse_args()
    data = Path(a.data_root).resolve()
    work = (ROOT / a.work).resolve()
    cmeie_train, cmeie_dev = data / "cmeie" / "CMeIE_train.jsonl", data / "cmeie" / "CMeIE_dev.jsonl"
    if a.re_limit:
        (work / "data").mkdir(parents=True, exist_ok=True)
        cmeie_train, cmeie_dev = (ROOT / subset(str(f), a.re_limit, work / "data") for f in (cmeie_train, cmeie_dev))
    a.cmeie = (cmeie_train, cmeie_dev, data / "cmeie" / "53_schemas.json")
    paths = {"cmeie": [f"data.train={cmeie_train}", f"data.dev={cmeie_dev}",
                       f"data.schema={data / 'cmeie' / '53_schemas.json'}"],
             "kuake-qqr": [f"data.train={data / 'kuake-qqr' / 'KUAKE-QQR_train.json'}",
                           f"data.dev={data / 'kuake-qqr' / 'KUAKE-QQR_dev.json'}"]}
    result = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
              "arms": {}}
    try:
        import torch

        result["torch"] = torch.__version__
        result["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    except Exception:  # noqa: BLE001 - report only
        pass
    for arm in a.arms.split(","):
        task, model, dataset = ARMS[arm]
        out = work / arm
        if model == "pretrained" and not a.model_dir:
            raise SystemExit(f"arm {arm} needs --model-dir")
        if task == "reference":
            ref = reference_re if dataset == "cmeie" else reference_pair
            result["arms"][arm] = ref(arm, data, out, a, work)
            print(f"{arm}: " + json.dumps({k: v for k, v in result["arms"][arm].items()
                                           if not isinstance(v, dict) and k != "command"}), flush=True)
            continue
        epochs = a.pair_epochs if task == "pair" else a.re_epochs
        timing = work / "timing" / f"{arm}.json"
        timing.parent.mkdir(parents=True, exist_ok=True)
        # = `python -m lingshu.cli train ...`, with Trainer.train's CPU time recorded by _timed.py
        cmd = [sys.executable, "benchmarks/_timed.py", str(timing), "lingshu.cli", "train", f"task={task}", f"model={model}", f"data={dataset}",
               *([f"model.name_or_path={a.model_dir}"] if model == "pretrained" else []),
               *paths[dataset], f"trainer.epochs={epochs}", f"trainer.batch_size={32 if task == 'pair' else a.batch_size}",
               *([f"trainer.learning_rate={a.lr}"] if a.lr else []),
               f"trainer.seed={a.seed}", "trainer.early_stopping_patience=0", "trainer.progress=false",
               *([f"trainer.max_steps={a.re_max_steps}"] if a.re_max_steps and task != "pair" else []),
               *a.extra, f"output_dir={out}"]
        proc = run_arm(cmd, work / "logs" / f"{arm}.log")
        s = json.loads((out / "train_summary.json").read_text(encoding="utf-8"))
        rep_path = work / f"{arm}_report.json"
        ev = [sys.executable, "-m", "lingshu.cli", "evaluate", str(out), paths[dataset][1].split("=", 1)[1],
              "-o", str(rep_path)]
        ev_proc = run_arm(ev, work / "logs" / f"{arm}-evaluate.log")
        rep = json.loads(rep_path.read_text(encoding="utf-8"))
        entry = {"task": task, "model": model, "command": " ".join(cmd), "train_wall_s": round(proc["wall_s"], 1),
                 "peak_rss_mib": round(proc["peak_rss_mib"]), "peak_gpu_memory_mib": s.get("peak_gpu_memory_mib"),
                 "train_tokens_per_s": round(s["train_tokens_per_s"]), "global_step": s["global_step"],
                 "train_runtime_s": round(s["train_runtime_s"], 1), "evaluate_wall_s": round(ev_proc["wall_s"], 1), "bf16": s["bf16"],
                 "train_cpu_s": round(json.loads(timing.read_text(encoding="utf-8"))["train_cpu_s"], 1),
                 "eval_in_training_s": round(s.get("eval_in_training_s") or 0.0, 1),
                 "train_tokens_processed": s["train_tokens_processed"],
                 "train_tokens_one_pass": s.get("train_tokens_one_pass"),
                 "loadavg_1m_before": round(proc["loadavg_1m_before"], 2), "loadavg_1m_after": round(proc["loadavg_1m_after"], 2)}
        if task != "pair":
            entry.update({"f1": rep["micro"]["f1"], "precision": rep["micro"]["precision"],
                          "recall": rep["micro"]["recall"], "f1_typed": rep["micro_typed"]["f1"],
                          "mention_f1": rep["mentions"]["f1"],
                          "per_predicate_f1": {k: round(v["f1"], 4) for k, v in rep["per_predicate"].items()}})
        else:
            entry.update({"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
                          "records_skipped": rep.get("records_skipped"),
                          "per_label_f1": {k: round(v["f1"], 4) for k, v in rep["per_label"].items()}})
        result["arms"][arm] = entry
        print(f"{arm}: " + json.dumps({k: v for k, v in entry.items() if not isinstance(v, dict) and k != "command"},
                                      ensure_ascii=False), flush=True)
    out_path = ROOT / a.out
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {out_path}")
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def reference_pair(arm, data, out, a, work) -> dict:
    """benchmarks/reference_pair.py at the pair arms' budget (epochs, batch 32, seed, learning rate)."""
    cmd = [sys.executable, "benchmarks/reference_pair.py", "--model_name_or_path", a.model_dir,
           "--train_file", str(data / "kuake-qqr" / "KUAKE-QQR_train.json"),
           "--validation_file", str(data / "kuake-qqr" / "KUAKE-QQR_dev.json"), "--output_dir", str(out),
           "--num_train_epochs", str(a.pair_epochs), "--per_device_train_batch_size", "32",
           "--per_device_eval_batch_size", "64", "--learning_rate", str(a.lr or 5e-5), "--warmup_steps", "0.1",
           "--lr_scheduler_type", "linear", "--weight_decay", "0.01", "--seed", str(a.seed),
           "--save_strategy", "no", "--eval_strategy", "no", "--logging_steps", "20", "--report_to", "none",
           "--disable_tqdm", "true",
           *([] if _cuda() else ["--use_cpu", "true"]), "--bf16", "true" if "trainer.bf16=false" not in a.extra else "false"]
    proc = run_arm(cmd, work / "logs" / f"{arm}.log")
    s = json.loads((out / "reference_summary.json").read_text(encoding="utf-8"))
    return {"task": "pair", "model": a.model_dir, "system": "reference (run_glue.py style)", "command": " ".join(cmd),
            "train_wall_s": round(proc["wall_s"], 1), "peak_rss_mib": round(proc["peak_rss_mib"]),
            "peak_gpu_memory_mib": s["peak_gpu_memory_mib"],
            "train_tokens_per_s": round(s["train_tokens_processed"] / s["train_runtime_s"]),
            "train_runtime_s": round(s["train_runtime_s"], 1), "global_step": s["global_step"],
            "accuracy": s["dev"]["accuracy"], "macro_f1": s["dev"]["macro_f1"],
            "records_skipped": s["dev_records_skipped"],
            "per_label_f1": {k: round(v["f1"], 4) for k, v in s["dev"]["per_label"].items()}}


def reference_re(arm, data, out, a, work) -> dict:
    """benchmarks/reference_re.py (GPLinker recipe) at the RE arms' budget: epochs, batch, seed,
    learning rate (one rate for every parameter), warmup 10% then linear, weight decay 0.01;
    bf16 autocast exactly where lingshu's `trainer.bf16=auto` turns it on (CUDA with bf16, or a CPU
    with AMX-BF16/AVX512-BF16), unless `trainer.bf16=...` is in --extra."""
    sys.path.insert(0, str(ROOT))
    from lingshu.training.harness import use_bf16

    forced = [x.split("=", 1)[1].lower() for x in a.extra if x.startswith("trainer.bf16=")]
    bf16 = forced[-1] == "true" if forced else use_bf16(None, "cuda" if _cuda() else "cpu")
    train, dev, schema = a.cmeie
    timing = work / "timing" / f"{arm}.json"
    timing.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "benchmarks/_timed.py", str(timing),  # = python benchmarks/reference_re.py ...
           "benchmarks/reference_re.py", "--model_name_or_path", a.model_dir,
           "--train_file", str(train), "--validation_file", str(dev), "--schema_file", str(schema),
           "--output_dir", str(out), "--max_seq_length", "256",
           "--num_train_epochs", str(a.re_epochs), "--per_device_train_batch_size", str(a.batch_size),
           "--learning_rate", str(a.lr or 3e-5), "--warmup_steps", "0.1",
           "--lr_scheduler_type", "linear", "--weight_decay", "0.01", "--seed", str(a.seed),
           *(["--max_steps", str(a.re_max_steps)] if a.re_max_steps else []),
           "--save_strategy", "no", "--eval_strategy", "no", "--logging_steps", "10", "--report_to", "none",
           "--disable_tqdm", "true", *([] if _cuda() else ["--use_cpu", "true"]), "--bf16", str(bf16).lower()]
    proc = run_arm(cmd, work / "logs" / f"{arm}.log")
    s = json.loads((out / "reference_summary.json").read_text(encoding="utf-8"))
    cpu = json.loads(timing.read_text(encoding="utf-8"))["train_cpu_s"]
    return {"task": "re", "model": a.model_dir, "system": s["system"], "heads": s["heads"], "command": " ".join(cmd),
            "train_wall_s": round(proc["wall_s"], 1), "peak_rss_mib": round(proc["peak_rss_mib"]),
            "peak_gpu_memory_mib": s["peak_gpu_memory_mib"], "bf16": bf16,
            "train_tokens_per_s": round(s["train_tokens_processed"] / s["train_runtime_s"]),
            "train_tokens_processed": s["train_tokens_processed"], "train_tokens_one_pass": s["train_tokens"],
            "train_padded_tokens_processed": s["train_padded_tokens_processed"],
            "train_runtime_s": round(s["train_runtime_s"], 1), "train_cpu_s": round(cpu, 1),
            "global_step": s["global_step"], "eval_seconds": round(s["eval_seconds"], 1),
            "f1": s["dev"]["f1"], "precision": s["dev"]["precision"], "recall": s["dev"]["recall"],
            "predicted": s["dev"]["predicted"], "gold": s["dev"]["gold"],
            "checked_with_lingshu_re_metrics": s["dev"]["checked_with_lingshu_re_metrics"],
            "dev_texts_mention_cap_hit": s["dev_texts_mention_cap_hit"],
            "train_data": s["train_data"], "dev_data": s["dev_data"],
            "loadavg_1m_before": round(proc["loadavg_1m_before"], 2), "loadavg_1m_after": round(proc["loadavg_1m_after"], 2),
            "per_predicate_f1": {k: round(v["f1"], 4) for k, v in s["per_predicate"].items()}}


if __name__ == "__main__":
    sys.exit(main())
