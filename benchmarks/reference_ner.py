"""Reference NER fine-tuning, written the way transformers' examples/pytorch/token-classification/run_ner.py
does it: AutoModelForTokenClassification + DataCollatorForTokenClassification + Trainer, one label
per word on its first sub-token and -100 on the others (and on [CLS]/[SEP]), BIO tags, seqeval.

Each Chinese text is fed as a list of characters (`is_split_into_words=True`), so a "word" is a
character and every tag is a character's tag. Nested entities (CMeEE) cannot be BIO tags: the
longest entity is kept (ties: the earlier one), as lingshu's BIOS does. Texts longer than
max_seq_length are truncated (run_ner.py's behaviour): characters past the cut get no
prediction ("O").

For a score comparable with lingshu, the predicted tags are turned back into character spans and
scored with lingshu.training.metrics.span_metrics (strict exact (start, end, type), micro); the
seqeval F1 that run_ner.py reports (default, conlleval-style mode) is reported as well.

Run (from the repository root, offline):
    HF_HUB_OFFLINE=1 python benchmarks/reference_ner.py \
        --train_file ../shared/data/cluener/train.json --validation_file ../shared/data/cluener/dev.json \
        --tokenizer_name ../shared/data/vocab/bert-base-chinese --max_seq_length 64 \
        --output_dir benchmarks/work/ref-cluener --num_train_epochs 2 --per_device_train_batch_size 32 \
        --learning_rate 5e-4 --warmup_steps 0.1 --weight_decay 0.01 --seed 42

`--limit N` keeps the first N training and dev texts (smoke tests). A summary with the metrics and
the token counts lands in <output_dir>/reference_summary.json.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertConfig,
    DataCollatorForTokenClassification,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """Which model: a pretrained checkpoint (`model_name_or_path`), or else a from-scratch BERT of the
    size of lingshu/conf/model/tiny-bert.yaml."""

    tokenizer_name: str = field(default=None, metadata={"help": "tokenizer directory; default: model_name_or_path"})
    model_name_or_path: str = field(default=None, metadata={"help": "a pretrained encoder directory (run_ner.py's "
                                                                    "--model_name_or_path); unset: from scratch"})
    hidden_size: int = field(default=256)
    num_hidden_layers: int = field(default=4)
    num_attention_heads: int = field(default=4)
    intermediate_size: int = field(default=1024)
    max_position_embeddings: int = field(default=512)
    hidden_dropout_prob: float = field(default=0.1)
    attention_probs_dropout_prob: float = field(default=0.1)
    attn_implementation: str = field(default="sdpa", metadata={"help": "sdpa | eager"})


@dataclass
class DataTrainingArguments:
    """What to train and evaluate on."""

    train_file: str = field(metadata={"help": "CLUENER (jsonl with `label`) or CMeEE (json list with `entities`)"})
    validation_file: str = field(metadata={"help": "same format as train_file"})
    max_seq_length: int = field(default=128, metadata={"help": "tokens incl. [CLS]/[SEP]; longer texts are truncated"})
    label_all_tokens: bool = field(default=False, metadata={"help": "label every sub-token, not only the first"})
    limit: int = field(default=0, metadata={"help": "> 0: keep only the first N train and dev texts"})


# ----------------------------------------------------------------------------------------------
# data: file -> (chars, spans) -> BIO tags


def read_examples(path: str) -> list[dict]:
    """Read CLUENER or CMeEE into {"text", "spans": [(start, end_exclusive, type)]}."""
    raw = Path(path).read_text(encoding="utf-8")
    examples = []
    if raw.lstrip().startswith("["):  # CMeEE: one JSON list; end_idx is inclusive
        for rec in json.loads(raw):
            spans = [(e["start_idx"], e["end_idx"] + 1, e["type"]) for e in rec.get("entities", [])]
            examples.append({"text": rec["text"], "spans": spans})
    else:  # CLUENER: JSON lines; label -> type -> mention -> [[start, end_inclusive], ...]
        for line in raw.splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            spans = [(s, e + 1, t) for t, mentions in (rec.get("label") or {}).items()
                     for offs in mentions.values() for s, e in offs]
            examples.append({"text": rec["text"], "spans": spans})
    return examples


def spans_to_bio(n: int, spans: list[tuple[int, int, str]]) -> list[str]:
    """Character BIO tags; overlapping spans: the longest wins (ties: the earlier)."""
    tags = ["O"] * n
    for s, e, t in sorted(set(spans), key=lambda x: (-(x[1] - x[0]), x[0], x[2])):
        if s < 0 or e > n or s >= e or any(tags[i] != "O" for i in range(s, e)):
            continue
        tags[s] = f"B-{t}"
        for i in range(s + 1, e):
            tags[i] = f"I-{t}"
    return tags


def bio_to_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """BIO tags -> (start, end_exclusive, type). A stray I-x opens an entity (as conlleval does)."""
    spans, start, typ = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, t = tag.partition("-")
        if start is not None and not (prefix == "I" and t == typ):
            spans.append((start, i, typ))
            start, typ = None, None
        if prefix == "B" or (prefix == "I" and start is None):
            start, typ = i, t
    return spans


# ----------------------------------------------------------------------------------------------


class CountingCollator(DataCollatorForTokenClassification):
    """DataCollatorForTokenClassification that also counts the tokens it hands out while `count` is on:
    all positions of the padded batches and the real (non-pad) ones."""

    count = False
    padded_tokens = 0
    real_tokens = 0

    def __call__(self, features, return_tensors=None):
        batch = super().__call__(features, return_tensors)
        if self.count:
            self.padded_tokens += int(batch["input_ids"].numel())
            self.real_tokens += int(batch["attention_mask"].sum())
        return batch


def main(argv=None) -> dict:
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO)
    set_seed(training_args.seed)

    train_examples = read_examples(data_args.train_file)
    eval_examples = read_examples(data_args.validation_file)
    if data_args.limit:
        train_examples, eval_examples = train_examples[: data_args.limit], eval_examples[: data_args.limit]

    # label list from the training data, "O" first, then B-/I- per type (sorted, like run_ner.py)
    types = sorted({t for ex in train_examples for _, _, t in ex["spans"]})
    label_list = ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]
    label_to_id = {l: i for i, l in enumerate(label_list)}
    for ex in train_examples + eval_examples:
        ex["tokens"] = list(ex["text"])
        ex["ner_tags"] = spans_to_bio(len(ex["tokens"]), [s for s in ex["spans"] if s[2] in types])

    tok_name = model_args.tokenizer_name or model_args.model_name_or_path
    tokenizer = AutoTokenizer.from_pretrained(tok_name)
    assert len(tokenizer) > 1000, f"{tok_name}: only {len(tokenizer)} tokens in the vocabulary"
    if model_args.model_name_or_path:
        model = AutoModelForTokenClassification.from_pretrained(
            model_args.model_name_or_path, num_labels=len(label_list), id2label=dict(enumerate(label_list)),
            label2id=label_to_id, attn_implementation=model_args.attn_implementation)
        logger.info("loaded %s: %.1fM parameters", model_args.model_name_or_path, model.num_parameters() / 1e6)
    else:
        model = None
    config = None if model is not None else BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=model_args.hidden_size,
        num_hidden_layers=model_args.num_hidden_layers,
        num_attention_heads=model_args.num_attention_heads,
        intermediate_size=model_args.intermediate_size,
        max_position_embeddings=model_args.max_position_embeddings,
        hidden_dropout_prob=model_args.hidden_dropout_prob,
        attention_probs_dropout_prob=model_args.attention_probs_dropout_prob,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(label_list),
        id2label=dict(enumerate(label_list)),
        label2id=label_to_id,
    )
    if model is None:
        config._attn_implementation = model_args.attn_implementation
        model = AutoModelForTokenClassification.from_config(config)
        logger.info("built BERT from scratch: %.1fM parameters", model.num_parameters() / 1e6)

    # run_ner.py's tokenize_and_align_labels, over batches of examples
    def tokenize_and_align_labels(examples: list[dict]) -> list[dict]:
        enc = tokenizer([ex["tokens"] for ex in examples], is_split_into_words=True, truncation=True,
                        max_length=data_args.max_seq_length)
        out = []
        for i, ex in enumerate(examples):
            word_ids = enc.word_ids(i)
            labels, prev = [], None
            for w in word_ids:
                if w is None:
                    labels.append(-100)
                elif w != prev:
                    labels.append(label_to_id[ex["ner_tags"][w]])
                else:
                    labels.append(label_to_id[ex["ner_tags"][w]] if data_args.label_all_tokens else -100)
                prev = w
            f = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": labels}
            if "token_type_ids" in enc:  # XLM-R style tokenizers have none
                f["token_type_ids"] = enc["token_type_ids"][i]
            out.append(f)
        return out

    def tokenize(examples: list[dict], batch_size: int = 1000) -> list[dict]:
        return [f for b in range(0, len(examples), batch_size)
                for f in tokenize_and_align_labels(examples[b: b + batch_size])]

    train_dataset = tokenize(train_examples)
    eval_dataset = tokenize(eval_examples)
    truncated = sum(1 for ex, f in zip(train_examples, train_dataset)
                    if sum(1 for l in f["labels"] if l != -100) < sum(1 for c in ex["text"] if c.strip()))
    logger.info("train: %d texts, %d truncated at %d tokens", len(train_dataset), truncated, data_args.max_seq_length)

    collator = CountingCollator(tokenizer, pad_to_multiple_of=None)
    collator.count = True
    trainer = Trainer(model=model, args=training_args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                      data_collator=collator, processing_class=tokenizer)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from lingshu.training.health import token_geometry

    probe = [ex["text"] for ex in eval_examples[:32]]
    geometry_start = token_geometry(model.base_model, tokenizer, probe)
    result = trainer.train()
    collator.count = False
    trainer.save_model()
    geometry_end = token_geometry(model.base_model, tokenizer, probe)

    # ---- evaluation on dev: predictions -> per-character tags -> character spans
    t0 = time.perf_counter()
    pred = trainer.predict(eval_dataset)
    pred_ids = np.argmax(pred.predictions, axis=2)
    enc = tokenizer([ex["tokens"] for ex in eval_examples], is_split_into_words=True, truncation=True,
                    max_length=data_args.max_seq_length)
    true_tags, pred_tags, pred_spans = [], [], []
    for i, ex in enumerate(eval_examples):
        tags = ["O"] * len(ex["tokens"])  # chars without a token, or past the truncation: "O"
        prev = None
        for t, w in enumerate(enc.word_ids(i)):
            if w is not None and w != prev:
                tags[w] = label_list[pred_ids[i][t]]
            prev = w
        pred_tags.append(tags)
        true_tags.append(ex["ner_tags"])
        pred_spans.append(bio_to_spans(tags))
    eval_seconds = time.perf_counter() - t0

    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    # run_ner.py's seqeval (default, conlleval-style mode), and seqeval's strict IOB2 mode
    seqeval_scores = {"mode": "default (conlleval-style), as run_ner.py",
                      "precision": precision_score(true_tags, pred_tags, zero_division=0),
                      "recall": recall_score(true_tags, pred_tags, zero_division=0),
                      "f1": f1_score(true_tags, pred_tags, zero_division=0),
                      "f1_strict_iob2": f1_score(true_tags, pred_tags, mode="strict", scheme=IOB2, zero_division=0)}

    # strict span F1 with lingshu's metric against the gold read by lingshu's reader (the same gold
    # lingshu is scored on, nested entities included)
    from lingshu.data import read_documents
    from lingshu.schema import Document, Entity
    from lingshu.training.metrics import span_metrics

    gold = read_documents(data_args.validation_file).documents
    if data_args.limit:
        gold = gold[: data_args.limit]
    assert [d.text for d in gold] == [ex["text"] for ex in eval_examples], "gold texts differ from ours"
    preds = [Document(ex["text"], [Entity(s, e, t, ex["text"][s:e]) for s, e, t in spans])
             for ex, spans in zip(eval_examples, pred_spans)]
    span_report = span_metrics(gold, preds)

    n_train_tokens = sum(len(f["input_ids"]) for f in train_dataset)
    epochs = training_args.num_train_epochs
    steps = trainer.state.global_step
    summary = {
        "train_runtime_s": result.metrics["train_runtime"],
        "global_step": steps,
        "epochs": epochs,
        "train_texts": len(train_dataset),
        "train_truncated_texts": truncated,
        "train_tokens": n_train_tokens,  # one pass, non-pad tokens incl. [CLS]/[SEP]
        "train_tokens_processed": collator.real_tokens,  # non-pad tokens in the batches trained on
        "train_padded_tokens_processed": collator.padded_tokens,
        "eval_seconds": eval_seconds,
        "seqeval": seqeval_scores,
        "dev": span_report,
        "labels": label_list,
        "token_geometry_start": geometry_start,  # lingshu.training.health, on the first 32 dev texts
        "token_geometry_end": geometry_end,
    }
    out = Path(training_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reference_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    m = span_report["micro"]
    print(f"\nreference dev: strict span P/R/F1 {m['precision']:.4f}/{m['recall']:.4f}/{m['f1']:.4f}; "
          f"seqeval F1 {seqeval_scores['f1']:.4f}; train {result.metrics['train_runtime']:.1f}s")
    return summary


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(sys.argv[1:])
