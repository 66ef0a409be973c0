"""What `lingshu train` and `lingshu adapt` share around HF `Trainer`: the device and precision,
the TrainingArguments built from the `trainer:` config, resume, the metrics log, and how a
finished run is saved (model, tokenizer, resolved config, summary, curves, checkpoints).

    run_dir = start_run(cfg, run_dir)              # seed, folder, a fresh metrics.jsonl
    args = training_arguments(cfg, run_dir, **what_differs)
    result = trainer.train(resume_from_checkpoint=resume_target(cfg.trainer))
    plots = save_run(trainer, tok, cfg, run_dir, summary, curve)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import TrainingArguments, set_seed

from lingshu.training.callbacks import plot_curves


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with bf16 matrix units (AMX-BF16 or AVX512-BF16), where autocast to bf16
    speeds training up (about 1.5x for tiny-bert here); elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def use_bf16(setting, device_type: str) -> bool:
    """trainer.bf16: true / false, or auto (null): CUDA with bf16, or a CPU with bf16 units."""
    if setting in (True, "true", "True"):
        return True
    if setting in (False, "false", "False"):
        return False
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_fast_bf16()


def device_type(tc: DictConfig) -> str:
    return "cuda" if torch.cuda.is_available() and not tc.get("use_cpu") else "cpu"


def learning_rate(cfg: DictConfig) -> float:
    """trainer.learning_rate when set, else the model config's suggestion."""
    lr = cfg.trainer.learning_rate
    return float(lr if lr is not None else cfg.model.learning_rate)


def start_run(cfg: DictConfig, run_dir: str | Path) -> Path:
    """Seed everything, create the run folder and, unless resuming, start a fresh metrics.jsonl."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(int(cfg.trainer.seed))
    log_file = run_dir / "metrics.jsonl"
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and log_file.exists() and not cfg.trainer.resume:
        log_file.unlink()
    return run_dir


def training_arguments(cfg: DictConfig, run_dir: Path, **overrides) -> TrainingArguments:
    """TrainingArguments from the `trainer:` config; `overrides` are what a command sets itself
    (evaluation and save strategy, best-model selection, batching)."""
    tc = cfg.trainer
    dt = device_type(tc)
    kw = dict(
        output_dir=str(run_dir),
        num_train_epochs=float(tc.epochs),
        max_steps=int(tc.max_steps) if tc.max_steps else -1,
        per_device_train_batch_size=int(tc.batch_size),
        per_device_eval_batch_size=int(tc.eval_batch_size),
        gradient_accumulation_steps=int(tc.gradient_accumulation_steps),
        learning_rate=learning_rate(cfg),
        weight_decay=float(tc.weight_decay),
        warmup_steps=float(tc.warmup),
        lr_scheduler_type="linear",
        max_grad_norm=float(tc.max_grad_norm),
        seed=int(tc.seed),
        data_seed=int(tc.seed),
        bf16=use_bf16(tc.bf16, dt),
        use_cpu=dt == "cpu",
        logging_steps=int(tc.logging_steps),
        logging_first_step=True,
        save_total_limit=2,
        dataloader_num_workers=int(tc.num_workers),
        remove_unused_columns=False,
        report_to="none",
        ddp_backend=(tc.get("ddp_backend") or ("gloo" if dt == "cpu" else None))
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        disable_tqdm=not bool(tc.progress),
    )
    kw.update(overrides)
    return TrainingArguments(**kw)


def resume_target(tc: DictConfig):
    """trainer.resume: true / "last" -> the latest checkpoint in the run folder; a path -> that
    checkpoint; false / null -> start afresh."""
    return True if tc.resume in (True, "true", "True", "last") else (tc.resume or None)


def save_run(trainer, tokenizer, cfg: DictConfig, run_dir: Path, summary: dict, curve: dict | None = None) -> list:
    """Save what a finished run leaves (rank 0 only): the model, its tokenizer, the resolved
    config (lingshu_config.yaml), train_summary.json, curves (`curve`: plot_curves options);
    checkpoints are removed unless trainer.keep_checkpoints. Returns the plot files."""
    if not trainer.is_world_process_zero():
        return []
    trainer.save_model(str(run_dir))
    tokenizer.save_pretrained(str(run_dir))
    if (run_dir / "char_vocab").exists():  # a from-scratch vocabulary, now saved with the tokenizer
        shutil.rmtree(run_dir / "char_vocab")
    OmegaConf.save(cfg, run_dir / "lingshu_config.yaml", resolve=True)
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    plots = plot_curves(trainer.state.log_history, run_dir, **(curve or {}))
    if not cfg.trainer.keep_checkpoints:
        for ck in run_dir.glob("checkpoint-*"):
            shutil.rmtree(ck, ignore_errors=True)
    return plots
