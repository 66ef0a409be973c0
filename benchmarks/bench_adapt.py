"""Does domain-adaptive pretraining help, and does entity-aware masking help most?

Arms, all the same model, one budget: by default a from-scratch tiny BERT (conf/model/tiny-bert.yaml)
with one WordPiece vocabulary trained on the corpus; with --model-dir, a pretrained checkpoint
(its own tokenizer; an encoder without an MLM head gets one, see `lingshu adapt`):

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
    python benchmarks/bench_adapt.py --model-dir ME5 --seeds 42,43 --mlm-seed 42 --batch-size 16 \
        --pretrain-steps 150 --mlm-lr 1e-4 --mlm-evals 1 --finetune-steps 300 \
        --finetune-batch-size 16 --lr 2e-4 --dev-limit 1000           # from a pretrained start (RESULTS.md)

With several seeds every phase (MLM and fine-tuning) runs once per seed, and the table gives the
mean and the spread (min..max) of each arm's dev F1. `--mlm-seed N` pretrains each arm once (seed
N) and fine-tunes it with every seed: cheaper, but the spread then measures fine-tuning only.

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
from bench_ner import run_arm, subset  # noqa: E402  (one subprocess runner for every benchmark)

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
    ap.add_argument("--seeds", default="42", help="comma-separated; every phase runs once per seed")
    ap.add_argument("--model-dir", default=None,
                    help="start every arm from this pretrained checkpoint (model=pretrained) instead of a tiny "
                         "from-scratch BERT; (d) then fine-tunes the checkpoint as it is")
    ap.add_argument("--task", default="ner-crf", help="the fine-tuning task config")
    ap.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: the model's)")
    ap.add_argument("--mlm-lr", type=float, default=None, help="MLM learning rate (default: the model's)")
    ap.add_argument("--finetune-batch-size", type=int, default=32)
    ap.add_argument("--mlm-evals", type=int, default=5, help="held-out evaluations during MLM (each ~1 min on CPU)")
    ap.add_argument("--reuse-mlm", action="store_true",
                    help="keep an MLM run of an earlier invocation (same --work, seed and arm) that reached "
                         "--pretrain-steps, instead of training it again (the fine-tuning can then change)")
    ap.add_argument("--mlm-seed", type=int, default=None,
                    help="pretrain each arm once, with this seed, and fine-tune it with every --seeds seed (the "
                         "spread then measures fine-tuning only; for budgets too small to pretrain per seed)")
    ap.add_argument("--dev-limit", type=int, default=0, help="score on the first N CMeEE dev texts (0: all)")
    ap.add_argument("--extra", nargs="*", default=[], help="overrides added to every adapt and train command")
    ap.add_argument("--jobs", type=int, default=1,
                    help="arms run at once (a GPU machine with many cores; timings then share the machine)")
    a = ap.parse_args()

    data = Path(a.data_root)
    work = (ROOT / a.work).resolve() if not Path(a.work).is_absolute() else Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    lexicon = data / "lexicon" / "cmekg_terms.txt"
    arms = a.arms.split(",")
    seeds = [int(x) for x in a.seeds.split(",")]
    result: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "host": platform.node(), "python": platform.python_version(),
                    "start": a.model_dir or "tiny-bert from scratch", "finetune_task": a.task,
                    "pretrain_steps": a.pretrain_steps, "finetune_steps": a.finetune_steps,
                    "mlm_batch_size": a.batch_size, "finetune_batch_size": a.finetune_batch_size,
                    "finetune_lr": a.lr, "mlm_lr": a.mlm_lr, "mlm_seed": a.mlm_seed, "dev_limit": a.dev_limit, "seeds": seeds,
                    "runs": {}, "commands": []}
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
    if a.model_dir is None and not tok.exists():
        cmd = lingshu("tokenizer", "train", str(corpus), "-o", str(tok))
        result["tokenizer_train_s"] = sh(cmd, work / "logs" / "tokenizer.log")
        result["commands"].append(" ".join(cmd))
    result["corpus_sentences"] = sum(1 for _ in open(corpus, encoding="utf-8"))
    dev = data / "cmeee" / "CMeEE_dev.json"
    if a.dev_limit:
        dev = ROOT / subset(str(dev), a.dev_limit, work)  # ROOT / an absolute path is that path

    model = ["model=pretrained", f"model.name_or_path={a.model_dir}"] if a.model_dir else \
        ["model=tiny-bert", f"model.tokenizer={tok}"]
    if a.jobs > 1:  # arms share the machine: split the cores between them
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // a.jobs))
    result["jobs"] = a.jobs
    mlm_lr = [f"trainer.learning_rate={a.mlm_lr}"] if a.mlm_lr else []
    ft_lr = [f"trainer.learning_rate={a.lr}"] if a.lr else []

    pretrained_here: set[Path] = set()  # MLM runs this invocation trained (--mlm-seed reuses them)

    def pretrain(seed: int, arm: str) -> None:
        name, overrides, uses_lexicon = ARMS[arm]
        mlm_seed = seed if a.mlm_seed is None else a.mlm_seed
        out = work / f"s{mlm_seed}" / f"mlm-{name}"
        lex = [f"masking.lexicon={lexicon}"] if uses_lexicon else []  # (b), (c): plain jieba, no lexicon
        cmd = lingshu("adapt", *model, f"trainer.seed={mlm_seed}", f"data.train={corpus}", *lex, *overrides,
                      f"trainer.max_steps={a.pretrain_steps}", f"trainer.batch_size={a.batch_size}", *mlm_lr,
                      f"trainer.eval_every={max(a.pretrain_steps // max(a.mlm_evals, 1), 1)}", "trainer.progress=false",
                      *([f"data.max_lines={a.max_lines}"] if a.max_lines else []), *a.extra,
                      f"output_dir={out}", "overwrite=true")
        run = result["runs"][str(seed)][arm]
        run["pretrain_seed"] = mlm_seed
        done = out / "train_summary.json"
        if (a.reuse_mlm or out in pretrained_here) and done.is_file() \
                and json.loads(done.read_text()).get("global_step") == a.pretrain_steps:
            print(f"  seed {seed} ({arm}) {name}: reusing {out}", flush=True)
            run.update({"pretrain": json.loads(done.read_text()), "pretrain_command": " ".join(cmd),
                        "pretrain_reused": True})
            return
        wall = sh(cmd, work / "logs" / f"s{mlm_seed}-adapt-{name}.log")
        pretrained_here.add(out)
        summary = json.loads((out / "train_summary.json").read_text())
        run.update({"pretrain_wall_s": round(wall, 1), "pretrain": summary, "pretrain_command": " ".join(cmd)})
        print(f"  seed {seed} ({arm}) {name}: held-out {summary['heldout']}", flush=True)

    def finetune(seed: int, arm: str) -> None:
        name = ARMS[arm][0] if arm in ARMS else "none"
        out = work / f"s{seed}" / f"cmeee-{name}"
        if arm in ARMS:
            mlm_seed = seed if a.mlm_seed is None else a.mlm_seed
            init = [f"model.name_or_path={work / f's{mlm_seed}' / f'mlm-{name}'}"]
        else:
            init = []
        cmd = lingshu("train", f"task={a.task}", *model, *init, f"trainer.seed={seed}",
                      f"data.train={data / 'cmeee' / 'CMeEE_train.json'}", f"data.dev={dev}",
                      f"trainer.max_steps={a.finetune_steps}", f"trainer.eval_every={a.finetune_steps}",
                      f"trainer.batch_size={a.finetune_batch_size}", *ft_lr,
                      "trainer.early_stopping_patience=0", "trainer.progress=false", *a.extra,
                      f"output_dir={out}", "overwrite=true")
        wall = sh(cmd, work / "logs" / f"s{seed}-train-{name}.log")
        summary = json.loads((out / "train_summary.json").read_text())
        result["runs"][str(seed)][arm].update(
            {"finetune_wall_s": round(wall, 1), "dev_f1": summary["dev"]["micro"]["f1"],
             "dev_precision": summary["dev"]["micro"]["precision"],
             "dev_recall": summary["dev"]["micro"]["recall"],
             "dev_per_type_f1": {t: round(m["f1"], 4) for t, m in summary["dev"]["per_type"].items()},
             "finetune_train_runtime_s": summary["train_runtime_s"], "finetune_command": " ".join(cmd)})
        print(f"  seed {seed} ({arm}) {name}: CMeEE dev F1 {result['runs'][str(seed)][arm]['dev_f1']:.4f}", flush=True)

    from concurrent.futures import ThreadPoolExecutor

    out_path = ROOT / a.out if not Path(a.out).is_absolute() else Path(a.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for seed in seeds:  # one seed after the other: a stopped run keeps the seeds it finished
        result["runs"][str(seed)] = {arm: {"name": ARMS[arm][0] if arm in ARMS else "none"} for arm in arms}
        with ThreadPoolExecutor(a.jobs) as pool:
            list(pool.map(lambda arm: pretrain(seed, arm), [x for x in arms if x in ARMS]))
        with ThreadPoolExecutor(a.jobs) as pool:
            list(pool.map(lambda arm: finetune(seed, arm), arms))
        result["summary"] = summarize(result)
        out_path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(table(result))
    print(f"wrote {out_path}")
    return 0


def summarize(r: dict) -> dict:
    """Per arm over the seeds run: mean, min and max dev F1, and the mean difference to (d)."""
    out: dict = {}
    per_arm: dict[str, list] = {}
    for runs in r["runs"].values():
        for arm, e in runs.items():
            if e.get("dev_f1") is not None:
                per_arm.setdefault(arm, []).append(e)
    for arm, es in per_arm.items():
        f1 = [e["dev_f1"] for e in es]
        acc = [e["pretrain"]["heldout"].get("eval_masked_accuracy") for e in es if "pretrain" in e]
        acc = [x for x in acc if x is not None]
        out[arm] = {"name": es[0]["name"], "seeds": len(f1), "f1_mean": sum(f1) / len(f1),
                    "f1_min": min(f1), "f1_max": max(f1),
                    "heldout_masked_acc_mean": sum(acc) / len(acc) if acc else None}
    if "d" in out:
        base = {seed: runs["d"].get("dev_f1") for seed, runs in r["runs"].items() if "d" in runs}
        for arm, s in out.items():
            diffs = [runs[arm]["dev_f1"] - base[seed] for seed, runs in r["runs"].items()
                     if arm in runs and runs[arm].get("dev_f1") is not None and base.get(seed) is not None]
            s["delta_vs_none_mean"] = sum(diffs) / len(diffs) if diffs else None
            s["delta_vs_none_per_seed"] = diffs
    return out


def table(r: dict) -> str:
    """Markdown: one row per arm, mean and spread over the seeds of CMeEE dev F1."""
    rows = ["| arm | masking | seeds | held-out masked acc (mean) | CMeEE dev F1 mean | min..max | Δ vs (d), mean (per seed) |",
            "|---|---|---|---|---|---|---|"]
    for arm, s in r.get("summary", {}).items():
        acc = s["heldout_masked_acc_mean"]
        delta = "" if arm == "d" or s.get("delta_vs_none_mean") is None else \
            f"{s['delta_vs_none_mean'] * 100:+.1f} ({', '.join(f'{d * 100:+.1f}' for d in s['delta_vs_none_per_seed'])})"
        rows.append(f"| ({arm}) | {s['name']} | {s['seeds']} | {'-' if acc is None else f'{acc:.4f}'} | "
                    f"{s['f1_mean']:.4f} | {s['f1_min']:.4f}..{s['f1_max']:.4f} | {delta} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
