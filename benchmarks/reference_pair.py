"""A run_glue.py-style reference for sentence-pair classification (KUAKE-QQR), to compare lingshu's
`task=pair` against at the same backbone and budget.

What it does is what transformers' text-classification example does for a pair task, written for
this benchmark: `AutoModelForSequenceClassification` (for a BERT checkpoint: pooler + dropout +
linear on [CLS]; a checkpoint without a pooler gets a freshly initialised one, as from_pretrained
reports), `tokenizer(query1, query2, truncation=True, max_length=...)`, dynamic padding, HF Trainer
with AdamW, a linear schedule with warmup, one learning rate for every parameter. Records whose
label is not one of the training labels (KUAKE-QQR's "NA") are skipped in train and dev, as lingshu
evaluate does.

    HF_HUB_OFFLINE=1 python benchmarks/reference_pair.py --model_name_or_path ME5_DIR \
        --train_file ../shared/data/kuake-qqr/KUAKE-QQR_train.json \
        --validation_file ../shared/data/kuake-qqr/KUAKE-QQR_dev.json --output_dir benchmarks/work/ref-pair \
        --num_train_epochs 1 --per_device_train_batch_size 32 --learning_rate 2e-4 --use_cpu true

Writes OUTPUT_DIR/reference_summary.json: dev accuracy, macro F1 and per-label F1 (scikit-learn),
train runtime, non-pad training tokens, peak GPU memory on CUDA.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                          HfArgumentParser, Trainer, TrainingArguments, set_seed)


@dataclass
class Args:
    model_name_or_path: str = field(metadata={"help": "a pretrained encoder directory"})
    train_file: str = field(metadata={"help": "KUAKE-QQR-style json list: query1, query2, label"})
    validation_file: str = field(metadata={"help": "same format"})
    max_seq_length: int = field(default=128)
    limit: int = field(default=0, metadata={"help": "> 0: first N train and dev records only"})


def read_pairs(path: str, limit: int = 0) -> list[dict]:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return rows[:limit] if limit else rows


class TokenCounter:
    """Non-pad and padded tokens of every batch the collator builds."""

    tokens = 0
    padded = 0


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser((Args, TrainingArguments))
    args, targs = parser.parse_args_into_dataclasses(args=argv)
    set_seed(targs.seed)
    train_rows = read_pairs(args.train_file, args.limit)
    dev_rows = read_pairs(args.validation_file, args.limit)
    labels = sorted({r["label"] for r in train_rows if r.get("label") not in (None, "", "NA")})
    lid = {l: i for i, l in enumerate(labels)}
    train_rows = [r for r in train_rows if r.get("label") in lid]
    skipped = sum(r.get("label") not in lid for r in dev_rows)
    dev_rows = [r for r in dev_rows if r.get("label") in lid]

    tok = AutoTokenizer.from_pretrained(args.model_name_or_path)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model_name_or_path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=lid)

    def encode(rows):
        enc = tok([r["query1"] for r in rows], [r["query2"] for r in rows], truncation=True,
                  max_length=args.max_seq_length)
        return [{**{k: enc[k][i] for k in enc}, "labels": lid[r["label"]]} for i, r in enumerate(rows)]

    train_ds, dev_ds = encode(train_rows), encode(dev_rows)
    counter = TokenCounter()
    pad = DataCollatorWithPadding(tok)

    def collate(features):
        batch = pad(features)
        counter.tokens += int(batch["attention_mask"].sum())
        counter.padded += int(batch["attention_mask"].numel())
        return batch

    trainer = Trainer(model=model, args=targs, train_dataset=train_ds, data_collator=collate)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    out = trainer.train()
    train_tokens, train_padded = counter.tokens, counter.padded
    t0 = time.perf_counter()
    pred = trainer.predict(dev_ds)
    eval_s = time.perf_counter() - t0
    y_pred = np.asarray(pred.predictions).argmax(-1)
    y_true = np.asarray([lid[r["label"]] for r in dev_rows])
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=list(range(len(labels))), zero_division=0)
    summary = {
        "model": args.model_name_or_path, "labels": labels, "train_records": len(train_rows),
        "dev_records": len(dev_rows), "dev_records_skipped": skipped, "global_step": out.global_step,
        "train_runtime_s": out.metrics["train_runtime"], "train_tokens_processed": train_tokens,
        "train_padded_tokens_processed": train_padded, "eval_seconds": eval_s,
        "dev": {"accuracy": float(accuracy_score(y_true, y_pred)),
                "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
                "per_label": {l: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                  "support": int(n[i])} for i, l in enumerate(labels)}},
        "peak_gpu_memory_mib": (torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None,
    }
    Path(targs.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(targs.output_dir) / "reference_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "dev"} | {"dev_accuracy": summary["dev"]["accuracy"],
                                                                          "dev_macro_f1": summary["dev"]["macro_f1"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
