"""`lingshu adapt`: masked-language-model training on domain text, with HF Trainer.

    lingshu adapt model=tiny-bert model.tokenizer=tok data.train=corpus.txt \
        masking.lexicon=../shared/data/lexicon/cmekg_terms.txt trainer.max_steps=300 output_dir=runs/mlm
    lingshu adapt model=pretrained model.name_or_path=/models/chinese-roberta-wwm-ext data.train=corpus.txt

Continues from a checkpoint (BertForMaskedLM, ModernBertForMaskedLM, … via
AutoModelForMaskedLM) or builds a model from scratch from conf/model/NAME.yaml and a tokenizer.
Sentences are segmented with jieba (lexicon terms kept whole), packed into full sequences and
masked by `EntityAwareWWMCollator`, which draws new masks every time a batch is built, so every
epoch sees different masks. Held-out sentences give masked-token accuracy and perplexity at
every evaluation. The output directory loads with `AutoModelForMaskedLM.from_pretrained` and is
accepted by `lingshu train model.name_or_path=DIR`.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import AutoModelForMaskedLM, Trainer

from lingshu.modeling.backbone import (
    build_char_tokenizer,
    load_tokenizer,
    resolve_model,
    scratch_config,
)
from lingshu.training.callbacks import JsonlMetricsLogger
from lingshu.training.harness import AtomicCheckpoints, resume_target, save_run, start_run, training_arguments

if TYPE_CHECKING:
    from lingshu.pretrain.masking import EntityAwareWWMCollator

log = logging.getLogger("lingshu")


def read_lines(path: str | Path, max_lines: int | None = None) -> list[str]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(line)
                if max_lines and len(out) >= max_lines:
                    break
    if not out:
        raise SystemExit(f"{path}: no text (expected one sentence a line; see `lingshu corpus prepare`)")
    return out


def split_heldout(lines: list[str], n: int) -> tuple[list[str], list[str]]:
    """Every k-th line goes to the held-out set (spread over all sources of a concatenated corpus)."""
    if n <= 0 or len(lines) < 2 * n:
        return lines, []
    k = len(lines) // n
    held = set(range(0, k * n, k))
    return [x for i, x in enumerate(lines) if i not in held], [lines[i] for i in sorted(held)]


def pack_examples(examples: list[dict], max_length: int) -> list[dict]:
    """Join consecutive examples ([CLS] a [SEP] + b [SEP] + …) into sequences of at most max_length.

    Word and entity indices are renumbered so whole words stay whole across the join.
    """
    packed: list[dict] = []
    cur: dict | None = None
    for ex in examples:
        ids, words = ex["input_ids"], ex["word_ids"]
        if cur is not None and len(cur["input_ids"]) + len(ids) - 1 <= max_length:
            offset = 1 + max((w for w in cur["word_ids"] if w is not None), default=-1)
            cur["input_ids"] += ids[1:]  # drop the next example's [CLS], keep its [SEP]
            cur["word_ids"] += [None if w is None else w + offset for w in words[1:]]
            cur["entity_words"] += [w + offset for w in ex["entity_words"]]
        else:
            if cur is not None:
                packed.append(cur)
            cur = {"input_ids": list(ids), "word_ids": list(words), "entity_words": list(ex["entity_words"])}
    if cur is not None:
        packed.append(cur)
    return packed


def mlm_head(model):
    """The part of a masked-LM model after its encoder, as a function of hidden states, or None
    when the architecture is not one we know (then the model's own full forward is used)."""
    if hasattr(model, "cls") and hasattr(model.cls, "predictions"):  # BERT family
        return model.cls
    if hasattr(model, "head") and hasattr(model, "decoder"):  # ModernBERT
        return lambda h: model.decoder(model.head(h))
    if hasattr(model, "lm_head"):  # RoBERTa / XLM-R
        return model.lm_head
    return None


def sparse_mlm_forward(model, inputs: dict) -> dict:
    """Masked-LM loss with the vocabulary projection only at masked positions.

    The full forward projects every token onto the vocabulary: (batch, length, vocab) logits,
    which with a 250k-piece SentencePiece vocabulary costs more than the encoder itself. Only the
    ~15% masked positions carry a label, so the head runs on those alone. Returns the loss and,
    as `logits`, the predicted ids (-100 at unmasked positions) for masked-token accuracy.
    """
    labels = inputs["labels"]
    head = mlm_head(model)
    enc_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    if head is None:
        out = model(**inputs)
        return {"loss": out.loss, "logits": out.logits.argmax(-1)}
    hidden = model.base_model(**enc_inputs).last_hidden_state
    sel = labels != -100
    logits = head(hidden[sel]).float()
    loss = torch.nn.functional.cross_entropy(logits, labels[sel]) if sel.any() else hidden.sum() * 0.0
    preds = torch.full_like(labels, -100)
    preds[sel] = logits.argmax(-1)
    return {"loss": loss, "logits": preds}


class MlmTrainer(AtomicCheckpoints, Trainer):
    """Adds perplexity next to the eval loss; optional LAMB optimizer; the sparse MLM head; the
    masking generator's state in every checkpoint."""

    def __init__(self, *args, optimizer_name: str = "adamw", eval_collator=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.optimizer_name = optimizer_name
        self.eval_collator = eval_collator  # () -> collator with a fixed seed: same masks at every evaluation

    def write_checkpoint_extras(self, folder: Path) -> None:
        if not self.args.dataloader_num_workers:
            save_masking_state(self.data_collator, folder, rank=self.args.process_index)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = sparse_mlm_forward(model, inputs)
        return (out["loss"], out) if return_outputs else out["loss"]

    def get_eval_dataloader(self, eval_dataset=None):
        if self.eval_collator is None:
            return super().get_eval_dataloader(eval_dataset)
        train_collator, self.data_collator = self.data_collator, self.eval_collator()
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = train_collator

    def log(self, logs, *args, **kwargs):
        if "eval_loss" in logs:
            logs["eval_perplexity"] = math.exp(min(logs["eval_loss"], 50.0))
        super().log(logs, *args, **kwargs)

    def create_optimizer(self, model=None):
        if self.optimizer is None and self.optimizer_name == "lamb":
            try:
                from torch_optimizer import Lamb
            except ImportError as e:
                raise SystemExit("optimizer=lamb needs torch-optimizer: pip install torch-optimizer") from e
            model = self.model if model is None else model
            decay = set(self.get_decay_parameter_names(model))
            params = [
                {"params": [p for n, p in model.named_parameters() if p.requires_grad and n in decay],
                 "weight_decay": self.args.weight_decay},
                {"params": [p for n, p in model.named_parameters() if p.requires_grad and n not in decay],
                 "weight_decay": 0.0},
            ]
            self.optimizer = Lamb(params, lr=self.args.learning_rate)
        elif self.optimizer is None and self.optimizer_name != "adamw":
            raise SystemExit(f"unknown optimizer {self.optimizer_name!r}: choose adamw or lamb")
        return super().create_optimizer(model)


def load_mlm(name_or_path: str, attn: str | None = None):
    """A masked-LM model from a checkpoint, with a report of what is new.

    An encoder-only checkpoint (an embedding model such as multilingual-e5, a lingshu encoder)
    has no MLM head: the decoder is tied to the word embeddings, so only the head's transform and
    output bias are new; they are listed as such. Anything else missing from the encoder is shouted.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(
            resolve_model(name_or_path), output_loading_info=True, **({"attn_implementation": attn} if attn else {}))
    finally:
        hf_logging.set_verbosity(verbosity)
    prefix = model.base_model_prefix + "."
    missing = sorted(info.get("missing_keys", []))
    head_new = [k for k in missing if not k.startswith(prefix)]
    enc_missing = [k for k in missing if k.startswith(prefix) and ".pooler." not in k]
    tied = model.get_output_embeddings() is not None and (
        model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr())
    log.info("MLM head: %d new weights (randomly initialised)%s; decoder %s", len(head_new),
             f": {', '.join(head_new)}" if head_new else "",
             "tied to the word embeddings" if tied else "not tied")
    if enc_missing:
        log.warning("!!! ENCODER WEIGHTS MISSING FROM THE CHECKPOINT (randomly initialised): %d: %s",
                    len(enc_missing), ", ".join(enc_missing[:8]))
    model.lingshu_new_keys = head_new
    return model


def masked_accuracy(eval_pred) -> dict[str, float]:
    preds, labels = eval_pred.predictions, eval_pred.label_ids  # predicted ids (sparse_mlm_forward)
    keep = labels != -100
    return {"masked_accuracy": float((preds[keep] == labels[keep]).mean()) if keep.any() else 0.0}


def entity_operations(masking: DictConfig, lexicon: list[str]) -> dict[str, float]:
    """The entity operations a run applies: the configured ones for entity-wwm with a lexicon,
    none for wwm and char (they belong to entity-wwm) or without a lexicon (entities are lexicon
    terms), which is then plain whole-word masking and is said in a warning."""
    strategy = str(masking.strategy)
    ops = {k: float(masking[k]) if strategy == "entity-wwm" and lexicon else 0.0
           for k in ("replace_prob", "delete_prob", "entity_mask_prob")}
    if strategy == "entity-wwm" and not lexicon:
        log.warning("masking.strategy=entity-wwm without masking.lexicon: no entities, so this is plain "
                    "whole-word masking on jieba words (on multilingual-e5-small it scored below no "
                    "adaptation; see benchmarks/RESULTS.md). Pass masking.lexicon=FILE (one term a line), "
                    "or masking.strategy=char for a model trained from scratch.")
    return ops


def run_adapt(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Train an MLM as configured; returns the final held-out metrics."""
    from lingshu.pretrain.lexicon import Segmenter, load_lexicon
    from lingshu.pretrain.masking import EntityAwareWWMCollator, encode_for_mlm
    run_dir = start_run(cfg, run_dir)
    tc, mc, dc, mk = cfg.trainer, cfg.model, cfg.data, cfg.masking
    resume = resume_target(tc, run_dir)  # before any work: a resume with nothing to resume from stops here
    if not dc.train:
        raise SystemExit("no corpus: pass data.train=FILE (one sentence a line; see `lingshu corpus prepare`)")
    lines = read_lines(dc.train, dc.max_lines)
    train_lines, held_lines = split_heldout(lines, int(dc.heldout))
    log.info("%s: %d sentences for training, %d held out", dc.train, len(train_lines), len(held_lines))

    attn = mc.get("attn_implementation") or None
    if mc.name_or_path:
        tok = load_tokenizer(mc.tokenizer or mc.name_or_path)
        model = load_mlm(mc.name_or_path, attn)
        log.info("continuing MLM training of %s (%.1fM parameters)", mc.name_or_path, model.num_parameters() / 1e6)
    else:
        tok = load_tokenizer(mc.tokenizer) if mc.tokenizer else build_char_tokenizer(train_lines)
        config = scratch_config(mc.arch, OmegaConf.to_container(mc.config, resolve=True), tok, attn)
        model = AutoModelForMaskedLM.from_config(config)
        log.info("built %s MLM from scratch: %.1fM parameters, vocabulary %d", mc.arch,
                 model.num_parameters() / 1e6, len(tok))

    lexicon = load_lexicon(mk.lexicon) if mk.lexicon else []
    keywords = load_lexicon(mk.keywords) if mk.keywords else []
    ops = entity_operations(mk, lexicon)
    log.info("loading the jieba segmenter%s (a minute on a large lexicon)",
             f" with {len(lexicon):,} lexicon terms and {len(keywords):,} keywords" if lexicon or keywords else "")
    segmenter = Segmenter(lexicon_terms=lexicon, keyword_terms=keywords)
    max_len = int(dc.max_seq_length)
    log.info("segmenting and tokenizing %d sentences into whole words", len(train_lines) + len(held_lines))
    train = encode_for_mlm(tok, segmenter, train_lines, max_len)
    held = encode_for_mlm(tok, segmenter, held_lines, max_len) if held_lines else []
    if dc.pack:
        train, held = pack_examples(train, max_len), pack_examples(held, max_len)
    n_tokens = sum(len(x["input_ids"]) for x in train)
    log.info("training sequences: %d (%d tokens, %.1f per sequence)", len(train), n_tokens, n_tokens / max(len(train), 1))

    def make_collator(seed: int) -> EntityAwareWWMCollator:
        return EntityAwareWWMCollator(
            tok, mlm_probability=float(mk.mlm_probability), entity_weight=float(mk.entity_weight),
            **ops, lexicon_terms=lexicon or None,
            strategy=str(mk.strategy), seed=seed, max_length=max_len)

    collator = make_collator(int(tc.seed))
    eval_kw = {"eval_strategy": "steps", "eval_steps": int(tc.eval_every)} if held else {"eval_strategy": "no"}
    args = training_arguments(cfg, run_dir, save_strategy="steps", save_steps=int(tc.eval_every), **eval_kw)
    trainer = MlmTrainer(
        model=model, args=args, train_dataset=train, eval_dataset=held or None, data_collator=collator,
        compute_metrics=masked_accuracy if held else None,
        callbacks=[JsonlMetricsLogger(run_dir / "metrics.jsonl")],
        optimizer_name=str(cfg.optimizer), eval_collator=lambda: make_collator(int(tc.seed) + 1))
    if resume and not int(tc.num_workers):
        restore_masking_state(collator, resume, rank=args.process_index)
    result = trainer.train(resume_from_checkpoint=resume)
    final = trainer.evaluate() if held else {}
    summary = {"train_runtime_s": result.metrics.get("train_runtime"), "global_step": trainer.state.global_step,
               "train_sequences": len(train), "heldout_sequences": len(held), "masking": {
                   **OmegaConf.to_container(cfg.masking, resolve=True), **ops,  # the operations applied
                   # entity mentions seen / masked whole / replaced / deleted (main process; none
                   # counted when DataLoader workers build the batches)
                   "entity_operations": dict(collator.stats)},
               "heldout": {k: v for k, v in final.items() if k.startswith("eval_")}}
    from lingshu.modelcard import mlm_card

    card = mlm_card(trainer.model.config.to_dict(), cfg, summary, folder_hint=str(run_dir))
    save_run(trainer, tok, cfg, run_dir, summary, {"metric": "eval_masked_accuracy", "name": "heldout_accuracy.png",
                                                   "ylabel": "held-out masked-token accuracy"}, card=card)
    if trainer.is_world_process_zero():
        if final:
            print(f"\nheld-out: masked-token accuracy {final.get('eval_masked_accuracy', 0):.4f}, "
                  f"perplexity {final.get('eval_perplexity', math.exp(min(final['eval_loss'], 50))):.1f}")
        print(f"Saved MLM to {run_dir} (AutoModelForMaskedLM.from_pretrained loads it; "
              f"fine-tune with `lingshu train model.name_or_path={run_dir}`)")
    return final


MASKING_STATE = "masking_rng_rank{rank}.json"


def save_masking_state(collator: EntityAwareWWMCollator, checkpoint: str | Path, rank: int = 0) -> None:
    """Write the training collator's generator state into `checkpoint` (one file per rank).

    Resuming then restores it (`restore_masking_state`), so the steps after a resume see new
    masks, not those of the run's first steps. With DataLoader workers the masks come from the
    workers' generators, re-seeded from torch's per-epoch worker seeds, which the Trainer's own
    RNG checkpoint restores; there is nothing to save then (MlmTrainer skips it)."""
    path = Path(checkpoint) / MASKING_STATE.format(rank=rank)
    path.write_text(json.dumps(collator.rng_state()), encoding="utf-8")


def restore_masking_state(collator: EntityAwareWWMCollator, checkpoint: str | Path, rank: int = 0) -> bool:
    """Load the generator state saved in `checkpoint` into `collator`; False (and a warning) when
    the checkpoint has none (written before lingshu saved it, or with DataLoader workers)."""
    path = Path(checkpoint) / MASKING_STATE.format(rank=rank)
    if not path.exists():
        log.warning("%s has no masking state: the masks after this resume are drawn from the run's seed again", checkpoint)
        return False
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("seed") != collator.seed:
        log.warning("%s was written with masking seed %s, this run has %s: its state is not restored",
                    checkpoint, state.get("seed"), collator.seed)
        return False
    collator.set_rng_state(state)
    return True


def fill_mask(model_dir: str, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-k (piece, probability) for every [MASK] in `text` (written [MASK] or as the tokenizer's
    mask token), each mask predicted on its own: transformers' fill-mask pipeline."""
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tok = load_tokenizer(model_dir)
    text = text.replace("[MASK]", tok.mask_token)
    if tok.mask_token not in text:
        raise SystemExit(f"no {tok.mask_token} in the text")
    mlm = AutoModelForMaskedLM.from_pretrained(resolve_model(model_dir)).eval()
    fill = pipeline("fill-mask", model=mlm, tokenizer=tok, device="cpu")
    out = fill(text, top_k=top_k)
    per_mask = out if out and isinstance(out[0], list) else [out]  # one mask: a flat list
    return [[(tok.convert_ids_to_tokens(int(d["token"])), float(d["score"])) for d in m] for m in per_mask]
