"""Fine-tune an encoder for NER with HF Trainer, from a resolved Hydra config.

One device:      lingshu train task=ner-crf model=tiny-bert data=cluener
Data parallel:   torchrun --nproc_per_node 2 -m lingshu.cli train ... (gloo on CPU, nccl on GPU)

What happens, in order: read and validate the data; pick labels (from the training data unless
given); load or build the tokenizer and encoder; attach the head; cut texts into windows; train
with dynamic padding, length-grouped batches, warmup + linear decay, bf16 autocast where the
hardware has it; evaluate strict span F1 on dev after each epoch (or every N steps), keep the
best, stop early; save the model directory, the metrics log, curves and the resolved config.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import EarlyStoppingCallback, Trainer, TrainingArguments, set_seed

from lingshu.inference.pipeline import NerPipeline
from lingshu.modeling.backbone import (
    build_char_tokenizer,
    format_key_report,
    load_pretrained_backbone,
    load_tokenizer,
    scratch_config,
)
from lingshu.modeling.model import LingshuModel
from lingshu.schema import LabelSet
from lingshu.text.features import Featurizer
from lingshu.training.callbacks import JsonlMetricsLogger, plot_curves
from lingshu.training.metrics import format_table, span_metrics

log = logging.getLogger("lingshu")


class NerTrainer(Trainer):
    """Trainer whose evaluation decodes dev documents exactly as `lingshu evaluate` does."""

    def __init__(self, *args, dev_docs=None, featurizer=None, head_lr_multiplier: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.dev_docs = dev_docs
        self.featurizer = featurizer
        self.head_lr_multiplier = head_lr_multiplier
        self.last_report = None
        self.reports: dict[int, dict] = {}  # global step -> dev report
        self.tokens_seen = 0  # real (non-pad) tokens trained on, this process
        self.eval_seconds = 0.0  # time spent evaluating inside train()

    def training_step(self, model, inputs, num_items_in_batch=None):
        mask = inputs.get("attention_mask")
        self.tokens_seen += int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
        return super().training_step(model, inputs, num_items_in_batch)

    def create_optimizer(self, model=None):
        """AdamW with the task head at `head_lr_multiplier` x the encoder's learning rate.

        A freshly initialised head (CRF transitions, GlobalPointer's bilinear q.k, whose gradient
        is the product of two small random matrices) barely moves at an encoder's learning rate;
        without this a GlobalPointer head predicts nothing after hundreds of steps.
        """
        if self.optimizer is None and self.head_lr_multiplier != 1.0:
            model = self.model if model is None else model
            decay = set(self.get_decay_parameter_names(model))
            lr = self.args.learning_rate
            groups: dict[tuple[bool, bool], list] = {}
            for n, p in model.named_parameters():
                if p.requires_grad:
                    groups.setdefault((n.startswith("backbone."), n in decay), []).append(p)
            params = [{"params": ps, "lr": lr if enc else lr * self.head_lr_multiplier,
                       "weight_decay": self.args.weight_decay if dec else 0.0}
                      for (enc, dec), ps in groups.items()]
            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            kwargs.pop("lr", None)
            self.optimizer = cls(params, lr=lr, **kwargs)
        return super().create_optimizer(model)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        t0 = time.perf_counter()
        pipe = NerPipeline(self.model, self.featurizer.tok, device=str(self.args.device),
                           batch_size=self.args.per_device_eval_batch_size)
        preds = pipe.predict(self.dev_docs)
        self.model.train()
        report = span_metrics(self.dev_docs, preds)
        self.last_report = report
        self.reports[self.state.global_step] = report
        self.eval_seconds += time.perf_counter() - t0
        m = report["micro"]
        metrics = {f"{metric_key_prefix}_f1": m["f1"], f"{metric_key_prefix}_precision": m["precision"],
                   f"{metric_key_prefix}_recall": m["recall"]}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def _read(path: str, fmt: str | None, labels=None):
    from lingshu.data import read_documents

    res = read_documents(path, format=fmt, labels=labels)
    log.info(res.report.summary().splitlines()[0])
    if res.report.records_skipped:
        log.warning(res.report.summary())
    return res.documents


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with bf16 matrix units (AMX-BF16 or AVX512-BF16), where autocast to bf16
    speeds training up (about 1.5x for tiny-bert here); elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def _bf16(setting, device_type: str) -> bool:
    if setting in (True, "true", "True"):
        return True
    if setting in (False, "false", "False"):
        return False
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_fast_bf16()


def build_model(cfg: DictConfig, labels: list[str], train_texts: list[str], out_dir: Path):
    """Tokenizer + encoder + head, from a checkpoint or from scratch. Returns (model, tokenizer)."""
    mc = cfg.model
    attn = mc.get("attn_implementation") or None
    spec = {
        "task": "ner",
        "decoder": cfg.task.decoder,
        "labels": labels,
        "max_seq_length": int(cfg.data.max_seq_length),
        "stride": int(cfg.data.stride),
        "head_size": int(cfg.task.get("head_size", 64)),
        "dropout": float(cfg.task.get("dropout", 0.1)),
    }
    if mc.name_or_path:
        tok = load_tokenizer(mc.tokenizer or mc.name_or_path)
        backbone, report = load_pretrained_backbone(mc.name_or_path, attn)
        config = backbone.config
        config.lingshu = spec
        if getattr(config, "use_cache", None):
            config.use_cache = False
        model = LingshuModel(config, backbone=backbone)
        head_keys = [k for k in model.state_dict() if not k.startswith("backbone.")]
        log.info(format_key_report(report, head_keys, mc.name_or_path))
    else:
        if mc.tokenizer:
            tok = load_tokenizer(mc.tokenizer)
        else:
            tok = build_char_tokenizer(train_texts, out_dir / "char_vocab")
            log.info("built a character vocabulary of %d entries from the training data", len(tok))
        config = scratch_config(mc.arch, OmegaConf.to_container(mc.config, resolve=True), tok, attn)
        config.lingshu = spec
        model = LingshuModel(config)
        log.info("built %s from scratch: %.1fM parameters", mc.arch, model.num_parameters() / 1e6)
    if mc.get("freeze_backbone"):
        for p in model.backbone.parameters():
            p.requires_grad = False
    if mc.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()
    return model, tok


def run(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Train, evaluate and save. Returns the final dev report (or {} without dev data)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tc = cfg.trainer
    set_seed(int(tc.seed))
    if not cfg.data.train:
        raise SystemExit("no training data: pass data.train=PATH (or data=cluener / data=cmeee / data=demo)")
    train_docs = _read(cfg.data.train, cfg.data.format)
    labels = list(cfg.task.labels) if cfg.task.get("labels") else LabelSet.from_documents(train_docs).labels
    if not labels:
        raise SystemExit(f"{cfg.data.train}: no entity found, so there are no labels to learn")
    dev_docs = _read(cfg.data.dev, cfg.data.format, labels=set(labels)) if cfg.data.dev else None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    model, tok = build_model(cfg, labels, [d.text for d in train_docs], run_dir)
    pf = cfg.model.get("padding_free", "auto")
    padding_free = (model.config._attn_implementation == "flash_attention_2") if pf == "auto" else bool(pf)
    featurizer = Featurizer(tok, labels, cfg.task.decoder, int(cfg.data.max_seq_length), int(cfg.data.stride),
                            padding_free=padding_free)
    if padding_free:
        log.info("padding-free batches: windows packed into one row (%s)", model.config._attn_implementation)
    train_feats, _, _, stats = featurizer.features(train_docs)
    log.info("train: %s", stats.summary())

    lr = tc.learning_rate if tc.learning_rate is not None else cfg.model.learning_rate
    eval_every = str(tc.eval_every)
    eval_kw = {"eval_strategy": "epoch", "save_strategy": "epoch"} if eval_every == "epoch" else {
        "eval_strategy": "steps", "save_strategy": "steps", "eval_steps": int(eval_every), "save_steps": int(eval_every)}
    if not dev_docs:
        eval_kw = {"eval_strategy": "no", "save_strategy": eval_kw["save_strategy"], **(
            {"save_steps": eval_kw["save_steps"]} if "save_steps" in eval_kw else {})}
    device_type = "cuda" if torch.cuda.is_available() and not tc.get("use_cpu") else "cpu"
    args = TrainingArguments(
        output_dir=str(run_dir),
        num_train_epochs=float(tc.epochs),
        max_steps=int(tc.max_steps) if tc.max_steps else -1,
        per_device_train_batch_size=int(tc.batch_size),
        per_device_eval_batch_size=int(tc.eval_batch_size),
        gradient_accumulation_steps=int(tc.gradient_accumulation_steps),
        learning_rate=float(lr),
        weight_decay=float(tc.weight_decay),
        warmup_steps=float(tc.warmup),
        lr_scheduler_type="linear",
        max_grad_norm=float(tc.max_grad_norm),
        seed=int(tc.seed),
        data_seed=int(tc.seed),
        bf16=_bf16(tc.bf16, device_type),
        use_cpu=device_type == "cpu",
        logging_steps=int(tc.logging_steps),
        logging_first_step=True,
        load_best_model_at_end=bool(dev_docs),
        metric_for_best_model="f1" if dev_docs else None,
        greater_is_better=True,
        save_total_limit=2,
        train_sampling_strategy="group_by_length" if tc.group_by_length else "random",
        dataloader_num_workers=int(tc.num_workers),
        remove_unused_columns=False,
        report_to="none",
        ddp_backend=(tc.get("ddp_backend") or ("gloo" if device_type == "cpu" else None))
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        disable_tqdm=not bool(tc.progress),
        save_only_model=False,
        **eval_kw,
    )
    callbacks = [JsonlMetricsLogger(run_dir / "metrics.jsonl")]
    if dev_docs and tc.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(int(tc.early_stopping_patience)))
    if local_rank == 0 and (run_dir / "metrics.jsonl").exists() and not tc.resume:
        (run_dir / "metrics.jsonl").unlink()
    trainer = NerTrainer(
        model=model, args=args, train_dataset=train_feats, data_collator=featurizer.collate,
        eval_dataset=dev_docs or None,  # only for Trainer's checks: evaluate() decodes dev_docs itself
        dev_docs=dev_docs, featurizer=featurizer, callbacks=callbacks,
        head_lr_multiplier=float(tc.head_lr_multiplier),
    )
    resume = tc.resume
    if resume in (True, "true", "True", "last"):
        resume = True
    result = trainer.train(resume_from_checkpoint=resume or None)
    train_eval_s = trainer.eval_seconds
    report = {}
    if dev_docs:
        # the best checkpoint was loaded at the end: report its dev score, decoding again only
        # when that checkpoint was not the one evaluated at its step
        best = trainer.state.best_model_checkpoint
        step = int(best.rsplit("-", 1)[-1]) if best else trainer.state.global_step
        if step not in trainer.reports:
            trainer.evaluate()
        report = trainer.reports.get(step, trainer.last_report)
    if trainer.is_world_process_zero():
        trainer.save_model(str(run_dir))
        tok.save_pretrained(str(run_dir))
        (run_dir / "char_vocab").exists() and shutil.rmtree(run_dir / "char_vocab")
        runtime = result.metrics.get("train_runtime") or 0.0
        tokens = trainer.tokens_seen * trainer.args.world_size  # ranks see equal shares
        train_stats = {"train_runtime_s": runtime,
                       "eval_in_training_s": train_eval_s,
                       "train_tokens_processed": tokens,
                       "train_tokens_per_s": tokens / max(runtime - train_eval_s, 1e-9),
                       "bf16": args.bf16,
                       "train_samples_per_second": result.metrics.get("train_samples_per_second"),
                       "global_step": trainer.state.global_step,
                       "world_size": trainer.args.world_size,
                       "samples_seen": trainer.state.global_step * trainer.args.world_size
                       * args.per_device_train_batch_size * args.gradient_accumulation_steps,
                       "train_windows": len(train_feats),
                       "train_tokens_one_pass": sum(len(f["input_ids"]) for f in train_feats)}
        (run_dir / "train_summary.json").write_text(json.dumps({**train_stats, "dev": report}, indent=2,
                                                               ensure_ascii=False), encoding="utf-8")
        OmegaConf.save(cfg, run_dir / "lingshu_config.yaml", resolve=True)
        plots = plot_curves(trainer.state.log_history, run_dir)
        if not tc.keep_checkpoints:
            for ck in run_dir.glob("checkpoint-*"):
                shutil.rmtree(ck, ignore_errors=True)
        if report:
            print("\nDev set, " + report["scheme"] + ":\n" + format_table(report))
        print(f"\nSaved model to {run_dir}" + (f" (curves: {', '.join(p.name for p in plots)})" if plots else ""))
    return report
