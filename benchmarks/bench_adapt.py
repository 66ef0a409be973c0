"""Does domain-adaptive pretraining help, and does entity-aware masking help most?

Arms, all the same from-scratch tiny BERT (conf/model/tiny-bert.yaml) with one WordPiece
vocabulary trained on the corpus, one seed, one budget:

    (a) entity-wwm  MLM with whole-word masking, lexicon entities chosen 3x as often, entity
                    operations on (whole-entity masking, replacement by another lexicon term)
    (b) wwm         MLM with whole-word masking on plain jieba words (no lexicon, no entity ops)
    (c) char        MLM with character-level random masking
    (d) none        no pretraining

then each is fine-tuned on CMeEE (CRF head) for the same number of steps and scored on CMeEE dev
with strict span F1. Budgets are counted in optimizer steps (same model, batch size and sequence
length in every arm, so equal steps are equal compute); wall time and tokens are recorded too.

    python benchmarks/bench_adapt.py                                  # the recorded run (RESULTS.md)
    python benchmarks/bench_adapt.py --pretrain-steps 20 --finetune-steps 10 --max-lines 3000 \
        --out benchmarks/work/adapt_smoke.json                        # a smoke run, a few minutes

Every phase is a `lingshu` command run as a subprocess, the same commands a user types (the
command lines are in the JSON). Writes --out (JSON) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ner import run_arm  # noqa: E402  (one subprocess runner for every benchmark)

ARMS = {  # arm: (name, overrides, segment with the lexicon)
    "a": ("entity-wwm", ["masking.strategy=entity-wwm", "masking.entity_weight=3.0",
                         "masking.entity_mask_prob=0.1", "masking.replace_prob=0.05", "masking.delete_prob=0.0"], True),
    "b": ("wwm", ["masking.strategy=wwm"], False),
    "c": ("char", ["masking.strategy=char"], False),
    # ablations of (a): which part of entity-aware masking costs or helps
    "e": ("entity-wwm-weight-only", ["masking.strategy=entity-wwm", "masking.entity_weight=3.0",
                                     "masking.entity_mask_prob=0.0", "masking.replace_prob=0.0"], True),
    "f": ("lexicon-wwm", ["masking.strategy=wwm"], True),  # lexicon terms kept whole, no extra weight
}


def sh(cmd: list[str], log_path: Path) -> float:
    """Run one phase as a child process (bench_ner.run_arm: output to a log, fails loudly);
    return its wall seconds."""
    print("$ " + " ".join(cmd), flush=True)
    return run_arm(cmd, log_path)["wall_s"]


def lingshu(*args: str) -> list[str]:
    return [sys.executable, "-m", "lingshu.cli", *args]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default="../shared/data", help="folder with corpus/, lexicon/, cmeee/")
    ap.add_argument("--work", default="benchmarks/work/adapt", help="scratch folder for corpus, models, logs")
    ap.add_argument("--out", default="benchmarks/results/adapt_experiment.json")
    ap.add_argument("--pretrain-steps", type=int, default=3000)
    ap.add_argument("--finetune-steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=64, help="MLM batch size (sequences of 128 tokens)")
    ap.add_argument("--max-lines", type=int, default=0, help="use only the first N corpus sentences (smoke runs)")
    ap.add_argument("--arms", default="a,b,c,d", help="a,b,c,d (the experiment); e,f: ablations of (a)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--extra", nargs="*", default=[], help="overrides added to every adapt and train command")
    ap.add_argument("--jobs", type=int, default=1,
                    help="arms run at once (a GPU machine with many cores; timings then share the machine)")
    a = ap.parse_args()

    data = Path(a.data_root)
    work = (ROOT / a.work).resolve() if not Path(a.work).is_absolute() else Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    lexicon = data / "lexicon" / "cmekg_terms.txt"
    arms = a.arms.split(",")
    result: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "host": platform.node(), "python": platform.python_version(),
                    "pretrain_steps": a.pretrain_steps, "finetune_steps": a.finetune_steps,
                    "mlm_batch_size": a.batch_size, "seed": a.seed, "arms": {}, "commands": []}
    try:
        import torch

        result["torch"] = torch.__version__
        result["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    except Exception:  # noqa: BLE001 - report only
        pass

    corpus, tok = work / "corpus.txt", work / "tok"
    if not corpus.exists():
        files = sorted(glob.glob(str(data / "corpus" / "*.txt")))
        cmd = lingshu("corpus", "prepare", *files, "-o", str(corpus))
        result["corpus_prepare_s"] = sh(cmd, work / "logs" / "corpus.log")
        result["commands"].append(" ".join(cmd))
    if not tok.exists():
        cmd = lingshu("tokenizer", "train", str(corpus), "-o", str(tok))
        result["tokenizer_train_s"] = sh(cmd, work / "logs" / "tokenizer.log")
        result["commands"].append(" ".join(cmd))
    result["corpus_sentences"] = sum(1 for _ in open(corpus, encoding="utf-8"))

    common = ["model=tiny-bert", f"model.tokenizer={tok}", f"trainer.seed={a.seed}"]
    if a.jobs > 1:  # arms share the machine: split the cores between them
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // a.jobs))
    result["jobs"] = a.jobs

    def pretrain(arm: str) -> None:
        name, overrides, uses_lexicon = ARMS[arm]
        out = work / f"mlm-{name}"
        lex = [f"masking.lexicon={lexicon}"] if uses_lexicon else []  # (b), (c): plain jieba, no lexicon
        cmd = lingshu("adapt", *common, f"data.train={corpus}", *lex, *overrides,
                      f"trainer.max_steps={a.pretrain_steps}", f"trainer.batch_size={a.batch_size}",
                      f"trainer.eval_every={max(a.pretrain_steps // 5, 1)}", "trainer.progress=false",
                      *([f"data.max_lines={a.max_lines}"] if a.max_lines else []), *a.extra, f"output_dir={out}")
        wall = sh(cmd, work / "logs" / f"adapt-{name}.log")
        summary = json.loads((out / "train_summary.json").read_text())
        result["arms"].setdefault(arm, {"name": name}).update(
            {"pretrain_wall_s": round(wall, 1), "pretrain": summary, "pretrain_command": " ".join(cmd)})
        print(f"  ({arm}) {name}: held-out {summary['heldout']}", flush=True)

    def finetune(arm: str) -> None:
        name = ARMS[arm][0] if arm in ARMS else "none"
        out = work / f"cmeee-{name}"
        init = [f"model.name_or_path={work / f'mlm-{name}'}"] if arm in ARMS else []
        cmd = lingshu("train", "task=ner-crf", *common, *init,
                      f"data.train={data / 'cmeee' / 'CMeEE_train.json'}", f"data.dev={data / 'cmeee' / 'CMeEE_dev.json'}",
                      f"trainer.max_steps={a.finetune_steps}", f"trainer.eval_every={a.finetune_steps}",
                      "trainer.early_stopping_patience=0", "trainer.progress=false", *a.extra, f"output_dir={out}")
        wall = sh(cmd, work / "logs" / f"train-{name}.log")
        summary = json.loads((out / "train_summary.json").read_text())
        result["arms"].setdefault(arm, {"name": name}).update(
            {"finetune_wall_s": round(wall, 1), "dev_f1": summary["dev"]["micro"]["f1"],
             "dev_precision": summary["dev"]["micro"]["precision"],
             "dev_recall": summary["dev"]["micro"]["recall"],
             "dev_per_type_f1": {t: round(m["f1"], 4) for t, m in summary["dev"]["per_type"].items()},
             "finetune_train_runtime_s": summary["train_runtime_s"], "finetune_command": " ".join(cmd)})
        print(f"  ({arm}) {name}: CMeEE dev F1 {result['arms'][arm]['dev_f1']:.4f}", flush=True)

    from concurrent.futures import ThreadPoolExecutor

    for arm in arms:  # table rows in arm order whatever finishes first
        result["arms"][arm] = {"name": ARMS[arm][0] if arm in ARMS else "none"}
    with ThreadPoolExecutor(a.jobs) as pool:
        list(pool.map(pretrain, [x for x in arms if x in ARMS]))
    with ThreadPoolExecutor(a.jobs) as pool:
        list(pool.map(finetune, arms))

    out_path = ROOT / a.out if not Path(a.out).is_absolute() else Path(a.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(table(result))
    print(f"wrote {out_path}")
    return 0


def table(r: dict) -> str:
    rows = ["| arm | masking | held-out masked acc | held-out ppl | pretrain wall s | CMeEE dev F1 | P | R |",
            "|---|---|---|---|---|---|---|---|"]
    base = r["arms"].get("d", {}).get("dev_f1")
    for arm, e in r["arms"].items():
        h = e.get("pretrain", {}).get("heldout", {})
        f1 = e.get("dev_f1")
        delta = f" ({(f1 - base) * 100:+.1f})" if base is not None and f1 is not None and arm != "d" else ""
        rows.append(f"| ({arm}) | {e['name']} | {h.get('eval_masked_accuracy', float('nan')):.4f} | "
                    f"{h.get('eval_perplexity', float('nan')):.1f} | {e.get('pretrain_wall_s', 0):.0f} | "
                    f"{f1:.4f}{delta} | {e.get('dev_precision', 0):.4f} | {e.get('dev_recall', 0):.4f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
