"""A GPLinker-style reference for CMeIE SPO extraction, to compare lingshu's `task=re` and
`task=re-gplinker` against at the same backbone and budget.

Written for this benchmark from the published GPLinker recipe (Su Jianlin, "GPLinker: 基于
GlobalPointer的实体关系联合抽取", kexue.fm/archives/8888, and the bert4keras example
task_relation_extraction_gplinker.py), with transformers and torch only; nothing of lingshu's
modelling, heads or decoding is used:

- encoder: `AutoModel.from_pretrained` (last hidden states);
- entities: one GlobalPointer with 2 classes (0 = subject, 1 = object), RoPE, lower triangle
  masked (start <= end), head size 64;
- relations: per predicate (the schema's 44 distinct predicates, not its 53 patterns) a
  head-pair GlobalPointer (subject start x object start) and a tail-pair GlobalPointer (subject
  end x object end), both without RoPE and without the triangle mask, head size 64. These are
  plain GlobalPointers (separate q/k projections per class, the recipe's `GlobalPointer` layer
  with `RoPE=False, tril_mask=False` for the pair heads);
  `--efficient true` switches all three to Efficient GlobalPointer (shared q/k, per-class
  start/end biases);
- loss: the sparse multilabel categorical cross-entropy of GlobalPointer (positives above 0,
  everything else below 0, padding and special tokens excluded), summed over classes and
  averaged over the batch, for each of the three heads; the three losses are added;
- decoding: span scores > 0 (CLS/SEP excluded) give subjects and objects; a triple
  (s, p, o) is emitted when both the head-pair score (p, s.start, o.start) and the tail-pair
  score (p, s.end, o.end) are > 0. One addition to the recipe: at most `--max_mentions` (64)
  subjects and 64 objects per text, those with the highest span scores, so that an untrained
  model (half its span scores above 0) cannot produce millions of pairs; the summary counts the
  dev texts where the cap was hit;
- tokenization: the fast tokenizer on the raw text (`return_offsets_mapping`), as the recipe
  tokenizes the whole text; arguments are located at their first occurrence in the text (the
  recipe's `search`) and mapped to the tokens whose character offsets start and end exactly
  there. An argument whose boundaries fall inside a SentencePiece piece cannot be represented
  by token boundaries (a search for the argument's own token ids, as the recipe does, cannot find
  it either): such triples are left out of training and counted. Predicted spans are mapped back to characters through the offsets.

Scoring is lingshu evaluate's: exact (subject text, predicate, object text) triples, a set per
text (a triple predicted or annotated twice counts once), micro-averaged over the dev set
(`lingshu.training.metrics.re_metrics`, "micro"). Gold triples are read from the CMeIE records
(subject, predicate, object["@value"]). When lingshu is importable the gold sets are checked
against lingshu's CMeIE reader and the micro figures against re_metrics (reading and scoring
only).

Training is HF Trainer: AdamW, one learning rate for every parameter, linear schedule with
warmup, weight decay (not on biases and LayerNorm), random batches padded to the longest,
bf16 autocast with `--bf16 true` (on CPU with `--use_cpu true`; benchmarks/bench_re.py turns it
on exactly where lingshu's `trainer.bf16=auto` does: CUDA, or a CPU with AMX-BF16/AVX512-BF16).

    HF_HUB_OFFLINE=1 python benchmarks/reference_re.py --model_name_or_path ME5_DIR \
        --train_file ../shared/data/cmeie/CMeIE_train.jsonl --validation_file ../shared/data/cmeie/CMeIE_dev.jsonl \
        --schema_file ../shared/data/cmeie/53_schemas.json --output_dir benchmarks/work/ref-re \
        --num_train_epochs 1 --per_device_train_batch_size 32 --learning_rate 3e-5 --warmup_steps 0.1 \
        --lr_scheduler_type linear --weight_decay 0.01 --seed 42 --bf16 false --use_cpu true \
        --save_strategy no --eval_strategy no --report_to none

`--limit N` keeps the first N train and dev texts (smoke tests). Writes
OUTPUT_DIR/reference_summary.json: dev P/R/F1 (micro and per predicate), train runtime, non-pad
and padded training tokens, truncation and alignment counts, peak GPU memory on CUDA.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoModel,
    AutoTokenizer,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)

logger = logging.getLogger(__name__)
NEG = -1e12  # a score that never counts (padding, special tokens, below the diagonal)


@dataclass
class Args:
    model_name_or_path: str = field(metadata={"help": "a pretrained encoder directory"})
    train_file: str = field(metadata={"help": "CMeIE JSON lines: text, spo_list"})
    validation_file: str = field(metadata={"help": "same format"})
    schema_file: str = field(default="", metadata={"help": "53_schemas.json; its predicates (default: train's)"})
    max_seq_length: int = field(default=256, metadata={"help": "tokens incl. <s>/</s>; CMeIE needs 251"})
    head_size: int = field(default=64)
    efficient: bool = field(default=False, metadata={"help": "Efficient GlobalPointer instead of the plain one"})
    eval_batch_size: int = field(default=64)
    max_mentions: int = field(default=64, metadata={"help": "most subjects and most objects per text in decoding "
                                                            "(highest span scores); a guard for untrained heads"})
    limit: int = field(default=0, metadata={"help": "> 0: first N train and dev texts only"})


# ----------------------------------------------------------------------------------------------
# data


def read_cmeie(path: str, limit: int = 0) -> list[dict]:
    rows = [json.loads(l) for l in Path(path).read_text(encoding="utf-8").splitlines() if l.strip()]
    rows = rows[:limit] if limit else rows
    out = []
    for r in rows:
        spo = {(t["subject"], t["predicate"], t["object"]["@value"] if isinstance(t["object"], dict) else t["object"])
               for t in r.get("spo_list", [])}
        out.append({"text": r["text"], "spo": spo})
    return out


def read_predicates(schema_file: str, rows: list[dict]) -> list[str]:
    if schema_file:
        lines = Path(schema_file).read_text(encoding="utf-8").splitlines()
        return sorted({json.loads(l)["predicate"] for l in lines if l.strip()})
    return sorted({p for r in rows for _, p, _ in r["spo"]})


def encode(tok, rows: list[dict], max_len: int, pid: dict[str, int]) -> tuple[list[dict], Counter]:
    """Token ids, offsets and the token positions of every gold argument (first occurrence,
    token-aligned only)."""
    enc = tok([r["text"] for r in rows], truncation=True, max_length=max_len, return_offsets_mapping=True)
    stats = Counter()
    feats = []
    for i, r in enumerate(rows):
        ids, offs = enc["input_ids"][i], enc["offset_mapping"][i]
        special = [o[0] == o[1] for o in offs]  # <s>, </s> (and nothing else in CMeIE texts)
        start_tok, end_tok = {}, {}
        for t, (s, e) in enumerate(offs):
            if s < e:  # a lone "▁" shares its character with the next piece: the piece wins
                start_tok[s] = t
                end_tok[e] = t
        if offs[-2][1] < len(r["text"].rstrip()):
            stats["texts_truncated"] += 1
        ents, heads, tails = set(), set(), set()
        for s, p, o in sorted(r["spo"]):
            stats["triples"] += 1
            si, oi = r["text"].find(s), r["text"].find(o)
            if si < 0 or oi < 0:
                stats["triples_argument_not_in_text"] += 1
                continue
            sh, st = start_tok.get(si), end_tok.get(si + len(s))
            oh, ot = start_tok.get(oi), end_tok.get(oi + len(o))
            if None in (sh, st, oh, ot) or sh > st or oh > ot:
                stats["triples_not_token_aligned"] += 1
                continue
            ents.update({(0, sh, st), (1, oh, ot)})
            if p in pid:
                heads.add((pid[p], sh, oh))
                tails.add((pid[p], st, ot))
            else:
                stats["triples_unknown_predicate"] += 1
        feats.append({"input_ids": ids, "offsets": offs, "special": special, "entities": sorted(ents),
                      "heads": sorted(heads), "tails": sorted(tails)})
    return feats, stats


class Collator:
    """Pad to the longest in the batch; positives as flat indices class * L * L + i * L + j."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id
        self.count = False
        self.tokens = 0
        self.padded = 0

    def __call__(self, feats: list[dict]) -> dict:
        L = max(len(f["input_ids"]) for f in feats)
        ids = torch.full((len(feats), L), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(feats), L), dtype=torch.long)
        valid = torch.zeros((len(feats), L), dtype=torch.bool)  # real, non-special tokens
        for b, f in enumerate(feats):
            n = len(f["input_ids"])
            ids[b, :n] = torch.tensor(f["input_ids"])
            mask[b, :n] = 1
            valid[b, :n] = ~torch.tensor(f["special"])
        batch = {"input_ids": ids, "attention_mask": mask, "valid": valid}
        for key in ("entities", "heads", "tails"):
            flat = [[c * L * L + i * L + j for c, i, j in f[key]] for f in feats]
            width = max(1, max(len(x) for x in flat))
            idx = torch.zeros((len(feats), width), dtype=torch.long)
            ok = torch.zeros((len(feats), width), dtype=torch.bool)
            for b, x in enumerate(flat):
                idx[b, :len(x)] = torch.tensor(x, dtype=torch.long)
                ok[b, :len(x)] = True
            batch[f"{key}_index"], batch[f"{key}_mask"] = idx, ok
        if self.count:
            self.tokens += int(mask.sum())
            self.padded += int(mask.numel())
        return batch


# ----------------------------------------------------------------------------------------------
# model


def rope(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding over the last dimension of x: (B, L, C, D), D even."""
    _, L, _, D = x.shape
    pos = torch.arange(L, dtype=torch.float32, device=x.device)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, D, 2, dtype=torch.float32, device=x.device) / D)
    ang = pos * freq  # (L, D/2)
    sin = torch.repeat_interleave(ang.sin(), 2, dim=-1)[None, :, None, :].to(x.dtype)
    cos = torch.repeat_interleave(ang.cos(), 2, dim=-1)[None, :, None, :].to(x.dtype)
    x2 = torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).reshape(x.shape)
    return x * cos + x2 * sin


class GlobalPointer(nn.Module):
    """Scores (B, C, L, L) for every (start, end) token pair and class. Plain: q/k per class.
    Efficient: one shared q/k, plus per-class start and end biases."""

    def __init__(self, hidden: int, classes: int, head_size: int, use_rope: bool, tril: bool, efficient: bool):
        super().__init__()
        self.c, self.d, self.use_rope, self.tril, self.efficient = classes, head_size, use_rope, tril, efficient
        if efficient:
            self.qk = nn.Linear(hidden, 2 * head_size)
            self.bias = nn.Linear(2 * head_size, 2 * classes)
        else:
            self.qk = nn.Linear(hidden, classes * 2 * head_size)

    def forward(self, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        B, L, _ = h.shape
        x = self.qk(h)
        if self.efficient:
            q, k = x[..., ::2][:, :, None], x[..., 1::2][:, :, None]  # (B, L, 1, D)
        else:
            x = x.view(B, L, self.c, 2 * self.d)
            q, k = x[..., : self.d], x[..., self.d:]
        if self.use_rope:
            q, k = rope(q), rope(k)
        s = torch.einsum("bmcd,bncd->bcmn", q, k).float() / math.sqrt(self.d)
        if self.efficient:
            bias = self.bias(x).float().transpose(1, 2) / 2  # (B, 2C, L)
            s = s + bias[:, ::2, None, :] + bias[:, 1::2, :, None]  # (B, C, L, L)
        pair = valid[:, None, :, None] & valid[:, None, None, :]
        if self.tril:
            pair = pair & torch.ones(L, L, dtype=torch.bool, device=h.device).triu()[None, None]
        return s.masked_fill(~pair, NEG)


def sparse_multilabel_ce(scores: torch.Tensor, index: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """GlobalPointer's multilabel categorical cross-entropy with sparse positives.

    scores (B, C, L, L) in fp32; index (B, P) flat positive positions into C*L*L; ok (B, P) which
    entries of index are real. Per sample and class: log(1 + sum_pos e^-s) + log(1 + sum_neg e^s),
    the negative term computed as lse(all) + log(1 - e^(lse(pos) - lse(all))) so that only the
    positives are gathered; summed over classes, averaged over the batch (the recipe's
    `K.mean(K.sum(loss, axis=1))`)."""
    B, C, L, _ = scores.shape
    flat = scores.reshape(B, C, L * L)
    zeros = flat.new_zeros(B, C, 1)
    pos = torch.gather(flat.reshape(B, C * L * L), 1, index)  # (B, P)
    sel = ok[:, None, :] & ((index // (L * L))[:, None, :] == torch.arange(C, device=index.device)[None, :, None])
    pos = pos[:, None, :].expand(B, C, pos.shape[1])  # (B, C, P), class c keeps its own positives
    pos_loss = torch.logsumexp(torch.cat([torch.where(sel, -pos, NEG), zeros], dim=2), dim=2)
    all_lse = torch.logsumexp(torch.cat([flat, zeros], dim=2), dim=2)
    aux = torch.logsumexp(torch.where(sel, pos, NEG), dim=2) - all_lse
    neg_loss = all_lse + torch.log(torch.clamp(1 - torch.exp(aux), min=1e-7, max=1.0))
    return (pos_loss + neg_loss).sum(1).mean()


class GPLinker(nn.Module):
    def __init__(self, path: str, n_predicates: int, head_size: int, efficient: bool):
        super().__init__()
        self.encoder = AutoModel.from_pretrained(path, add_pooling_layer=False)
        hid = self.encoder.config.hidden_size
        self.entity = GlobalPointer(hid, 2, head_size, use_rope=True, tril=True, efficient=efficient)
        self.head = GlobalPointer(hid, n_predicates, head_size, use_rope=False, tril=False, efficient=efficient)
        self.tail = GlobalPointer(hid, n_predicates, head_size, use_rope=False, tril=False, efficient=efficient)

    def forward(self, input_ids, attention_mask, valid, entities_index=None, entities_mask=None,
                heads_index=None, heads_mask=None, tails_index=None, tails_mask=None):
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        ent, head, tail = self.entity(h, valid), self.head(h, valid), self.tail(h, valid)
        out = {"entity": ent, "head": head, "tail": tail}
        if entities_index is not None:
            out["loss"] = (sparse_multilabel_ce(ent, entities_index, entities_mask)
                           + sparse_multilabel_ce(head, heads_index, heads_mask)
                           + sparse_multilabel_ce(tail, tails_index, tails_mask))
        return out


# ----------------------------------------------------------------------------------------------
# decoding and scoring


def decode(ent: np.ndarray, head: np.ndarray, tail: np.ndarray, text: str, offs, preds: list[str],
           max_mentions: int) -> tuple[set, bool]:
    """The recipe's decoding: subjects/objects with span score > 0, a predicate where both the
    head-pair and the tail-pair scores are > 0. Returns (triples, whether a cap was hit)."""
    capped = False
    args = []
    for c in (0, 1):
        i, j = np.where(ent[c] > 0)
        if len(i) > max_mentions:  # a guard for untrained heads only (the recipe has none)
            keep = np.argsort(-ent[c][i, j], kind="stable")[:max_mentions]
            i, j, capped = i[keep], j[keep], True
        args.append((i, j))
    (sh, st), (oh, ot) = args
    out = set()
    if len(sh) and len(oh):
        both = (head[:, sh[:, None], oh[None, :]] > 0) & (tail[:, st[:, None], ot[None, :]] > 0)  # (P, S, O)
        for p, a, b in zip(*np.where(both)):
            out.add((text[offs[sh[a]][0]:offs[st[a]][1]], preds[p], text[offs[oh[b]][0]:offs[ot[b]][1]]))
    return out, capped


def micro(gold: list[set], pred: list[set]) -> dict:
    tp = sum(len(g & p) for g, p in zip(gold, pred))
    np_, ng = sum(len(p) for p in pred), sum(len(g) for g in gold)
    pr, rc = (tp / np_ if np_ else 0.0), (tp / ng if ng else 0.0)
    return {"precision": pr, "recall": rc, "f1": 2 * pr * rc / (pr + rc) if pr + rc else 0.0,
            "tp": tp, "predicted": np_, "gold": ng}


def per_predicate(gold: list[set], pred: list[set]) -> dict:
    """`micro` per predicate, in one pass over the triples."""
    tp, np_, ng = Counter(), Counter(), Counter()
    for g, q in zip(gold, pred):
        tp.update(t[1] for t in g & q)
        np_.update(t[1] for t in q)
        ng.update(t[1] for t in g)
    out = {}
    for p in sorted(set(np_) | set(ng)):
        pr, rc = (tp[p] / np_[p] if np_[p] else 0.0), (tp[p] / ng[p] if ng[p] else 0.0)
        out[p] = {"precision": pr, "recall": rc, "f1": 2 * pr * rc / (pr + rc) if pr + rc else 0.0,
                  "tp": tp[p], "predicted": np_[p], "gold": ng[p]}
    return out


def lingshu_check(path: str, rows: list[dict], pred: list[set], limit: int) -> dict | None:
    """lingshu's CMeIE reader and re_metrics on our predictions (reading and scoring only)."""
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from lingshu.data import read_documents
        from lingshu.schema import Document, Entity, Relation
        from lingshu.training.metrics import re_metrics
    except ImportError:
        return None
    gold_docs = read_documents(path).documents
    gold_docs = gold_docs[:limit] if limit else gold_docs
    assert [d.text for d in gold_docs] == [r["text"] for r in rows], "lingshu's reader gives other texts"
    assert [{r.key for r in d.relations} for d in gold_docs] == [r["spo"] for r in rows], "gold triples differ"
    docs = [Document(r["text"], relations=[Relation(Entity(-1, -1, "", s), p, Entity(-1, -1, "", o))
                                           for s, p, o in sorted(ps)]) for r, ps in zip(rows, pred)]
    return re_metrics(gold_docs, docs)["micro"]


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((Args, TrainingArguments))
    args, targs = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO)
    set_seed(targs.seed)
    train_rows = read_cmeie(args.train_file, args.limit)
    dev_rows = read_cmeie(args.validation_file, args.limit)
    preds = read_predicates(args.schema_file, train_rows)
    pid = {p: i for i, p in enumerate(preds)}
    tok = AutoTokenizer.from_pretrained(args.model_name_or_path)
    train_ds, train_stats = encode(tok, train_rows, args.max_seq_length, pid)
    dev_ds, dev_stats = encode(tok, dev_rows, args.max_seq_length, pid)
    logger.info("train %s; dev %s; %d predicates", dict(train_stats), dict(dev_stats), len(preds))

    model = GPLinker(args.model_name_or_path, len(preds), args.head_size, args.efficient)
    collator = Collator(tok.pad_token_id)
    collator.count = True
    targs.remove_unused_columns = False
    trainer = Trainer(model=model, args=targs, train_dataset=train_ds, data_collator=collator)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = trainer.train()
    collator.count = False

    # ---- dev: forward in batches, decode, score
    t0 = time.perf_counter()
    model.eval()
    device = next(model.parameters()).device
    pred: list[set] = []
    n_capped = 0
    use_bf16 = bool(targs.bf16)
    with torch.no_grad():
        for b in range(0, len(dev_ds), args.eval_batch_size):
            feats = dev_ds[b: b + args.eval_batch_size]
            batch = {k: v.to(device) for k, v in collator(feats).items()
                     if k in ("input_ids", "attention_mask", "valid")}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                out = model(**batch)
            ent, head, tail = (out[k].float().cpu().numpy() for k in ("entity", "head", "tail"))
            for i, f in enumerate(feats):
                triples, capped = decode(ent[i], head[i], tail[i], dev_rows[b + i]["text"], f["offsets"], preds,
                                         args.max_mentions)
                pred.append(triples)
                n_capped += capped
    eval_s = time.perf_counter() - t0
    gold = [r["spo"] for r in dev_rows]
    dev = micro(gold, pred)
    check = lingshu_check(args.validation_file, dev_rows, pred, args.limit)
    if check is not None:
        assert abs(check["f1"] - dev["f1"]) < 1e-9 and abs(check["precision"] - dev["precision"]) < 1e-9, (check, dev)

    summary = {
        "model": args.model_name_or_path, "system": "reference (GPLinker recipe)",
        "heads": "efficient GlobalPointer" if args.efficient else "plain GlobalPointer",
        "predicates": len(preds), "max_seq_length": args.max_seq_length,
        "train_records": len(train_ds), "dev_records": len(dev_ds),
        "train_data": dict(train_stats), "dev_data": dict(dev_stats),
        "global_step": result.global_step, "epochs": targs.num_train_epochs,
        "learning_rate": targs.learning_rate, "train_runtime_s": result.metrics["train_runtime"],
        "train_tokens": sum(len(f["input_ids"]) for f in train_ds),  # one pass, non-pad, incl. <s>/</s>
        "train_tokens_processed": collator.tokens, "train_padded_tokens_processed": collator.padded,
        "train_loss": result.metrics.get("train_loss"), "eval_seconds": eval_s,
        "dev": {**dev, "checked_with_lingshu_re_metrics": check is not None},
        "dev_texts_mention_cap_hit": n_capped,
        "per_predicate": per_predicate(gold, pred),
        "peak_gpu_memory_mib": (torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None,
    }
    outdir = Path(targs.output_dir)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "reference_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nreference dev: triple P/R/F1 {dev['precision']:.4f}/{dev['recall']:.4f}/{dev['f1']:.4f} "
          f"({dev['tp']} of {dev['predicted']} predicted, {dev['gold']} gold); train {result.metrics['train_runtime']:.1f}s")
    return summary


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(sys.argv[1:])
