"""NER side by side on CPU: lingshu (CRF, GlobalPointer, optionally softmax) vs a run_ner.py-style
reference (benchmarks/reference_ner.py), same data, tokenizer, model size, seed, epochs, batch size,
max_seq_length, learning rate and schedule. Writes benchmarks/results/ner_benchmark.json and prints
a markdown table.

    HF_HUB_OFFLINE=1 python benchmarks/bench_ner.py --reference-last      # ~20 min on 2 cores (RESULTS.md)
    HF_HUB_OFFLINE=1 python benchmarks/bench_ner.py --limit 320 --max-steps 5 --out benchmarks/work/smoke.json

Every arm runs as its own subprocess, one after the other (never in parallel), so peak RSS
(`ru_maxrss` from wait4) and CPU time are that arm's alone. Wall-clock throughput on a shared
machine moves with whatever else runs, so each arm also reports tokens per CPU-second spent inside
Trainer.train (benchmarks/_timed.py), and the 1-minute load average before and after it.

What is timed: `train_runtime` of HF Trainer (the training loop only: no tokenization, no model
construction). No arm evaluates during training: lingshu is trained without `data.dev` (given a dev
set, its Trainer evaluates on dev and saves a checkpoint inside the timed loop, at every epoch or,
with `trainer.eval_every=N`, at least once at the last step) and then scored with
`lingshu evaluate`; the reference evaluates once after training. Both save one checkpoint at the
end of the loop (save_strategy steps, save_steps larger than the run).

Throughput: training tokens / train_runtime, where training tokens = the non-pad tokens (with
[CLS]/[SEP]) of every sequence trained on, counted as batches are consumed: lingshu's Trainer
(train_summary.json: train_tokens_processed), the reference's collator. The reference's padded
tokens are reported too. lingshu trains with bf16 autocast by default on CPUs with AMX-BF16 (as
here); an arm written `crf:fp32` switches it off, so the table separates what batching gives from
what bf16 gives.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = "../shared/data/vocab/bert-base-chinese"

DATASETS = {
    # name: (train, dev, max_seq_length)
    "cluener": ("../shared/data/cluener/train.json", "../shared/data/cluener/dev.json", 64),
    "cmeee": ("../shared/data/cmeee/CMeEE_train.json", "../shared/data/cmeee/CMeEE_dev.json", 128),
}
NO_SAVE_STEPS = 10**9  # "save/evaluate every N steps" with N larger than any run: only the final save


def run_arm(cmd: list[str], log_path: Path) -> dict:
    """Run one command as a child process; return its wall time, peak RSS and CPU time."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"arm failed (exit {p.returncode}): {' '.join(cmd)}\n--- {log_path} ---\n{tail}")
    return {"wall_s": wall, "peak_rss_mib": ru.ru_maxrss / 1024, "cpu_s": ru.ru_utime + ru.ru_stime,
            "loadavg_1m_before": load_before, "loadavg_1m_after": os.getloadavg()[0]}


def subset(path: str, n: int, out_dir: Path) -> str:
    """The first n records of a CLUENER (jsonl) or CMeEE (json list) file, for smoke runs."""
    src = ROOT / path
    dst = out_dir / f"{src.stem}_{n}{src.suffix}"
    raw = src.read_text(encoding="utf-8")
    if raw.lstrip().startswith("["):
        dst.write_text(json.dumps(json.loads(raw)[:n], ensure_ascii=False), encoding="utf-8")
    else:
        dst.write_text("\n".join([l for l in raw.splitlines() if l.strip()][:n]) + "\n", encoding="utf-8")
    return str(dst.relative_to(ROOT)) if dst.is_relative_to(ROOT) else str(dst)


def seqeval_micro_f1(report_text: str) -> float | None:
    m = re.search(r"micro avg\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", report_text or "")
    return float(m.group(3)) if m else None


def reference_arm(name, train, dev, msl, a, work) -> dict:
    out = work / f"{name}-reference"
    timing = work / "timing" / f"{name}-reference.json"
    cmd = [sys.executable, "benchmarks/_timed.py", str(timing),  # = python benchmarks/reference_ner.py ...
           "benchmarks/reference_ner.py", "--train_file", train, "--validation_file", dev,
           *(["--model_name_or_path", a.model_dir] if a.model_dir else ["--tokenizer_name", TOKENIZER]),
           "--max_seq_length", str(msl * a.reference_msl_factor), "--output_dir", str(out),
           "--num_train_epochs", str(a.epochs[name]), "--per_device_train_batch_size", str(a.batch_size),
           "--per_device_eval_batch_size", "64", "--learning_rate", str(a.lr), "--warmup_steps", "0.1",
           "--lr_scheduler_type", "linear", "--weight_decay", "0.01", "--max_grad_norm", "1.0",
           "--seed", str(a.seed), "--data_seed", str(a.seed), "--save_strategy", "steps",
           "--save_steps", str(NO_SAVE_STEPS), "--save_total_limit", "1", "--eval_strategy", "no",
           "--logging_steps", "10", "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true"]
    if a.max_steps:
        cmd += ["--max_steps", str(a.max_steps)]
    if a.reference_bf16:
        cmd += ["--bf16", "true"]
    if a.limit:
        cmd += ["--limit", str(a.limit)]
    proc = run_arm(cmd, work / "logs" / f"{name}-reference.log")
    s = json.loads((out / "reference_summary.json").read_text(encoding="utf-8"))
    cpu = json.loads(timing.read_text(encoding="utf-8"))["train_cpu_s"]
    m = s["dev"]["micro"]
    return {
        "dataset": name, "system": "reference (run_ner.py style)", "decoder": "softmax (BIO, first sub-token)",
        "epochs": a.epochs[name], "global_step": s["global_step"], "max_seq_length": msl * a.reference_msl_factor,
        "precision": "bf16 autocast" if a.reference_bf16 else "fp32",
        "dev_precision": m["precision"], "dev_recall": m["recall"], "dev_f1": m["f1"],
        "seqeval_f1": s["seqeval"]["f1"], "seqeval_mode": "default (conlleval-style), as run_ner.py",
        "seqeval_f1_strict_iob2": s["seqeval"]["f1_strict_iob2"],
        "train_runtime_s": s["train_runtime_s"], "train_tokens": s["train_tokens_processed"],
        "train_padded_tokens": s["train_padded_tokens_processed"],
        "train_tokens_per_s": s["train_tokens_processed"] / s["train_runtime_s"],
        "train_padded_tokens_per_s": s["train_padded_tokens_processed"] / s["train_runtime_s"],
        "train_cpu_s": cpu, "train_tokens_per_cpu_s": s["train_tokens_processed"] / cpu,
        "train_sequences": s["train_texts"], "train_truncated_texts": s["train_truncated_texts"],
        "eval_s": s["eval_seconds"], "process": proc, "peak_rss_mib": proc["peak_rss_mib"],
        "dev_report": s["dev"],
    }


def lingshu_arm(name, train, dev, msl, arm, a, work) -> dict:
    # an arm is a decoder, optionally with ":fp32" to switch off lingshu's default bf16 autocast
    # (on by default on CPUs with AMX-BF16/AVX512-BF16), to show what bf16 and batching each give
    decoder, _, variant = arm.partition(":")
    label = arm.replace(":", "-")
    out = work / f"{name}-lingshu-{label}"
    timing = work / "timing" / f"{name}-lingshu-{label}.json"
    # = `lingshu train ...`, with Trainer.train's CPU time recorded by _timed.py
    cmd = [sys.executable, "benchmarks/_timed.py", str(timing), "lingshu.cli",
           "train", f"task=ner-{decoder}",
           *(["model=pretrained", f"model.name_or_path={a.model_dir}"] if a.model_dir
             else ["model=tiny-bert", f"model.tokenizer={TOKENIZER}"]),
           f"data.train={train}", "data.dev=null", f"data.max_seq_length={msl}",
           f"trainer.epochs={a.epochs[name]}", f"trainer.max_steps={a.max_steps}",
           f"trainer.learning_rate={a.lr}", f"trainer.batch_size={a.batch_size}", f"trainer.seed={a.seed}",
           f"trainer.eval_every={NO_SAVE_STEPS}", "trainer.progress=false", "trainer.use_cpu=true",
           *(["trainer.bf16=false"] if variant == "fp32" else []), f"output_dir={out}"]
    proc = run_arm(cmd, work / "logs" / f"{name}-lingshu-{label}.log")
    s = json.loads((out / "train_summary.json").read_text(encoding="utf-8"))
    cpu = json.loads(timing.read_text(encoding="utf-8"))["train_cpu_s"]
    report_path = out / "dev_report.json"
    ev = run_arm(["lingshu", "evaluate", str(out), dev, "-o", str(report_path)],
                 work / "logs" / f"{name}-lingshu-{label}-evaluate.log")
    r = json.loads(report_path.read_text(encoding="utf-8"))
    m = r["micro"]
    # tokens trained on: counted by lingshu's Trainer as batches are consumed (non-pad tokens)
    windows, steps = s["train_windows"], s["global_step"]
    tokens, exact = s["train_tokens_processed"], True
    seq_f1 = seqeval_micro_f1(r.get("seqeval", {}).get("report", ""))
    return {
        "dataset": name, "system": "lingshu", "decoder": decoder + (" (fp32)" if variant == "fp32" else
                                                                     " (bf16)" if s.get("bf16") else ""),
        "epochs": a.epochs[name],
        "global_step": steps, "max_seq_length": msl,
        "dev_precision": m["precision"], "dev_recall": m["recall"], "dev_f1": m["f1"],
        "seqeval_f1": seq_f1, "seqeval_mode": "strict IOBES (lingshu evaluate)" if seq_f1 is not None else None,
        "train_runtime_s": s["train_runtime_s"], "train_tokens": tokens, "train_tokens_approximate": not exact,
        "train_tokens_per_s": tokens / s["train_runtime_s"], "train_sequences": windows,
        "train_cpu_s": cpu, "train_tokens_per_cpu_s": tokens / cpu,
        "eval_s": ev["wall_s"], "process": proc, "evaluate_process": ev, "peak_rss_mib": proc["peak_rss_mib"],
        "dev_report": {k: v for k, v in r.items() if k != "seqeval"},
    }


def machine() -> dict:
    cpu = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import torch
    import transformers

    return {"nproc": os.cpu_count(), "cpu_model": cpu, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "date": dt.datetime.now().isoformat(timespec="seconds")}


def table(rows: list[dict]) -> str:
    ref = {r["dataset"]: r for r in rows if r["system"].startswith("reference")}
    head = ("| dataset | system | decoder | epochs | dev strict F1 | ΔF1 vs ref (pts) | seqeval F1 | "
            "train tok/s | × ref | tok/CPU-s | × ref (CPU) | peak RSS MiB | train s | speed × ref (same data, CPU s) |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    def order(r):  # per data set, the reference first
        return list(DATASETS).index(r["dataset"]), not r["system"].startswith("reference")

    for r in sorted(rows, key=order):
        b = ref.get(r["dataset"])
        is_ref = r["system"].startswith("reference")
        dF = "—" if is_ref or not b else f"{100 * (r['dev_f1'] - b['dev_f1']):+.2f}"
        tx = "1.00" if is_ref or not b else f"{r['train_tokens_per_s'] / b['train_tokens_per_s']:.2f}"
        tc = "1.00" if is_ref or not b else f"{r['train_tokens_per_cpu_s'] / b['train_tokens_per_cpu_s']:.2f}"
        sq = "—" if r["seqeval_f1"] is None else f"{r['seqeval_f1']:.4f}"
        # the same texts and epochs for less CPU time: the fair speed ratio when the two tokenize
        # differently (a SentencePiece tokenizer gives the reference ~1.8 tokens per character,
        # lingshu ~1.0), and one that other jobs on the machine move less than wall time
        sp = "1.00" if is_ref or not b else f"{b['train_cpu_s'] / r['train_cpu_s']:.2f}"
        out.append(f"| {r['dataset']} | {r['system']} | {r['decoder']} | {r['epochs']} | {r['dev_f1']:.4f} | {dF} | "
                   f"{sq} | {r['train_tokens_per_s']:.0f} | {tx} | {r['train_tokens_per_cpu_s']:.0f} | {tc} | {r['peak_rss_mib']:.0f} | {r['train_runtime_s']:.0f} | {sp} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="cluener,cmeee")
    p.add_argument("--decoders", default="crf,crf:fp32,globalpointer,softmax",
                   help="lingshu arms: ner-<decoder> tasks; DECODER:fp32 without bf16 autocast")
    # budget: ~20 min on 2 cores; fractional epochs = that share of the steps of one epoch
    p.add_argument("--epochs-cluener", type=float, default=1)
    p.add_argument("--epochs-cmeee", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-steps", type=int, default=0, help="> 0: stop every arm after this many steps (smoke)")
    p.add_argument("--limit", type=int, default=0, help="> 0: first N train and dev texts only (smoke)")
    p.add_argument("--reference-last", action="store_true", help="run the lingshu arms before the reference")
    p.add_argument("--no-reference", action="store_true", help="the lingshu arms only")
    p.add_argument("--model-dir", default="",
                   help="a pretrained encoder directory for every arm (lingshu: model=pretrained; reference: "
                        "--model_name_or_path); unset: the from-scratch tiny BERT")
    p.add_argument("--reference-msl-factor", type=int, default=1,
                   help="reference max_seq_length = this x the data set's (a SentencePiece tokenizer fed "
                        "whole texts emits ~1.8 tokens per Chinese character; lingshu ~1.0)")
    p.add_argument("--reference-bf16", action="store_true", help="the reference with bf16 autocast, as lingshu")
    p.add_argument("--work", default="benchmarks/work/ner")
    p.add_argument("--out", default="benchmarks/results/ner_benchmark.json")
    a = p.parse_args()
    a.epochs = {"cluener": a.epochs_cluener, "cmeee": a.epochs_cmeee}
    for k, v in a.epochs.items():
        a.epochs[k] = int(v) if float(v).is_integer() else v
    work = ROOT / a.work
    (work / "timing").mkdir(parents=True, exist_ok=True)

    t_start = time.perf_counter()
    rows = []
    for name in a.datasets.split(","):
        train, dev, msl = DATASETS[name]
        if a.limit:
            (work / "data").mkdir(exist_ok=True)
            train, dev = subset(train, a.limit, work / "data"), subset(dev, a.limit, work / "data")
        arms = ([] if a.no_reference else ["reference"]) + a.decoders.split(",")
        for arm in arms[1:] + arms[:1] if a.reference_last else arms:
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {arm}", flush=True)
            rows.append(reference_arm(name, train, dev, msl, a, work) if arm == "reference"
                        else lingshu_arm(name, train, dev, msl, arm, a, work))
        print(table([r for r in rows if r["dataset"] == name]), flush=True)

    result = {
        "benchmark": "NER: lingshu vs run_ner.py-style reference, CPU",
        "machine": machine(),
        "settings": {"model": (f"pretrained: {a.model_dir}" if a.model_dir else
                               "BERT from scratch: 4 layers, hidden 256, 4 heads, intermediate 1024 (tiny-bert.yaml)"),
                     "tokenizer": a.model_dir or TOKENIZER, "reference_bf16": a.reference_bf16, "epochs": a.epochs, "batch_size": a.batch_size, "learning_rate": a.lr,
                     "warmup_ratio": 0.1, "schedule": "linear", "weight_decay": 0.01, "seed": a.seed,
                     "max_steps": a.max_steps, "limit": a.limit,
                     "max_seq_length": {k: v[2] for k, v in DATASETS.items()},
                     "metric": "strict span (start, end, type) micro F1, lingshu.training.metrics.span_metrics",
                     "throughput": "non-pad training tokens (incl. [CLS]/[SEP]) / HF Trainer train_runtime; "
                                   "per CPU-second: / process CPU time (all threads) inside Trainer.train",
                     "order": "lingshu arms first, reference last" if a.reference_last else "reference first"},
        "command": " ".join(["HF_HUB_OFFLINE=1", "python", "benchmarks/bench_ner.py", *sys.argv[1:]]),
        "total_wall_s": time.perf_counter() - t_start,
        "rows": rows,
        "table_markdown": table(rows),
    }
    out = ROOT / a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(out)
    print(f"\n{result['table_markdown']}\n\ntotal {result['total_wall_s'] / 60:.1f} min; wrote {out}")


if __name__ == "__main__":
    main()
