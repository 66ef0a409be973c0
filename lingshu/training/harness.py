"""What `lingshu train` and `lingshu adapt` share around HF `Trainer`: the device and precision,
the TrainingArguments built from the `trainer:` config, resume, the metrics log, and how a
finished run is saved (model, tokenizer, resolved config, summary, curves, checkpoints).

    run_dir = start_run(cfg, run_dir)              # seed, folder, a fresh metrics.jsonl
    args = training_arguments(cfg, run_dir, **what_differs)
    result = trainer.train(resume_from_checkpoint=resume_target(cfg.trainer, run_dir))
    plots = save_run(trainer, tok, cfg, run_dir, summary, curve)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import TrainingArguments, set_seed

from lingshu.training.callbacks import plot_curves

log = logging.getLogger("lingshu")


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


# what a lingshu run folder holds (train, adapt); anything else in an output_dir is the user's
RUN_MARKERS = ("lingshu_config.yaml", "train_summary.json", "metrics.jsonl")
RUN_FILES = {
    "config.json", "model.safetensors", "pytorch_model.bin", "generation_config.json", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt", "sentencepiece.bpe.model",
    "chat_template.jinja", "training_args.bin", "README.md", ".hydra", *RUN_MARKERS,
}


def _is_checkpoint(p: Path) -> bool:
    return p.name.startswith("checkpoint-") and p.name.rsplit("-", 1)[-1].isdigit()


def _is_partial_checkpoint(p: Path) -> bool:
    """`.checkpoint-N.partial`: a checkpoint being written (or left by a kill while it was)."""
    return (p.name.startswith(".checkpoint-") and p.name.endswith(".partial")
            and p.name[len(".checkpoint-"):-len(".partial")].isdigit())


class AtomicCheckpoints:
    """Trainer mixin: a checkpoint appears complete or not at all.

    HF's Trainer writes checkpoint-N/ file by file, so a kill while it saves leaves a folder that
    looks like a checkpoint and is not one. Here every rank writes into a hidden
    `.checkpoint-N.partial/` beside it (model, optimizer, scheduler, scaler, RNG states, what
    `write_checkpoint_extras` adds, trainer_state.json last); once all ranks are done, the main
    process renames it to checkpoint-N, then rotates old checkpoints (save_total_limit) as the
    Trainer does. A `.partial` folder a kill left behind is removed when that step is saved again
    and when the run is saved. Hyperparameter searches and push_to_hub keep the Trainer's own
    saving."""

    def write_checkpoint_extras(self, folder: Path) -> None:
        """Called on every rank with the staging folder, before trainer_state.json is written."""

    def _save_checkpoint(self, model, trial):
        from transformers.trainer_callback import ExportableState
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

        if trial is not None or self.hp_search_backend is not None or self.args.push_to_hub:
            return super()._save_checkpoint(model, trial)
        self.store_flos()
        run_dir = Path(self._get_output_dir(trial=trial))
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        final, staging = run_dir / name, run_dir / f".{name}.partial"
        if self.args.should_save and staging.exists():
            shutil.rmtree(staging)
        self.accelerator.wait_for_everyone()
        self.save_model(str(staging), _internal_call=True)
        if not self.args.save_only_model:
            self._save_optimizer_and_scheduler(str(staging))
            self._save_scaler(str(staging))
            self._save_rng_state(str(staging))
        staging.mkdir(parents=True, exist_ok=True)
        self.write_checkpoint_extras(staging)
        if self.state.best_global_step:  # the Trainer's rule: the best step's folder, once it exists
            best = run_dir / f"{PREFIX_CHECKPOINT_DIR}-{self.state.best_global_step}"
            if best == final or best.is_dir():
                self.state.best_model_checkpoint = str(best)
        if self.args.should_save:
            for cb in self.callback_handler.callbacks + [self.control]:
                if isinstance(cb, ExportableState):
                    kept = self.state.stateful_callbacks[cb.__class__.__name__]
                    if isinstance(kept, list):
                        kept.append(cb.state())
                    else:
                        self.state.stateful_callbacks[cb.__class__.__name__] = cb.state()
            self.state.save_to_json(str(staging / "trainer_state.json"))
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            if final.exists():  # the same step saved again (a resumed run): the new one replaces it
                shutil.rmtree(final)
            os.replace(staging, final)
            _fsync_dir(run_dir)
            rotate_checkpoints(output_dir=str(run_dir), save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)
        self.accelerator.wait_for_everyone()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_run_dir(path: Path) -> bool:
    """A folder an earlier lingshu train/adapt wrote: it holds one of RUN_MARKERS (metrics.jsonl
    is written from the first logged step, so a killed run has it too) or a config.json with a
    `lingshu` field. checkpoint-N folders alone prove nothing: any HF Trainer writes them."""
    if any((path / m).is_file() for m in RUN_MARKERS):
        return True
    try:
        return "lingshu" in json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def check_output_dir(run_dir: str | Path, overwrite: bool = False, resume: bool = False, warn: bool = True) -> None:
    """Refuse (SystemExit) an output_dir that holds anything but an earlier lingshu run, unless
    `overwrite`; an earlier run is replaced, with a warning (unless resuming it)."""
    path = Path(run_dir)
    if not path.is_dir():
        if path.exists():
            raise SystemExit(f"output_dir={run_dir} is a file; give a folder")
        return
    ignore = {".hydra"}
    try:  # what Hydra itself wrote into the folder before the run started: .hydra/ and JOB.log
        from hydra.core.hydra_config import HydraConfig

        ignore.add(f"{HydraConfig.get().job.name}.log")
    except (ValueError, ImportError):
        pass
    entries = [p for p in path.iterdir() if p.name not in ignore]
    if not entries or resume:
        return
    if is_run_dir(path):
        if warn:
                log.warning("output_dir=%s holds an earlier lingshu run: its model, metrics and checkpoints are "
                        "replaced (trainer.resume=true continues it instead)", run_dir)
        return
    if overwrite:
        ckpts = sorted(p.name for p in entries if (_is_checkpoint(p) or _is_partial_checkpoint(p)) and p.is_dir())
        if ckpts:  # the Trainer would replace a same-named one and rotate the others out
            raise SystemExit(f"output_dir={run_dir} is not a lingshu run and holds checkpoint folders "
                             f"({', '.join(ckpts[:4])}{' …' if len(ckpts) > 4 else ''}) that training would "
                             "replace or rotate away, even with overwrite=true; choose a new folder")
        if warn:
                log.warning("output_dir=%s is not empty (overwrite=true): lingshu's files in it are replaced, the "
                        "rest is left as it is", run_dir)
        return
    foreign = sorted(p.name for p in entries
                     if p.name not in RUN_FILES and not _is_checkpoint(p) and not _is_partial_checkpoint(p))
    foreign = foreign or sorted(p.name for p in entries)  # files named like lingshu's, without a run's markers
    raise SystemExit(f"output_dir={run_dir} is not empty and is not a lingshu run (it holds "
                     f"{', '.join(foreign[:6])}{' …' if len(foreign) > 6 else ''}); choose a new folder, or pass "
                     "overwrite=true to write into it (only lingshu's own files are ever replaced or removed)")


def check_data_paths(cfg: DictConfig, keys=("train", "dev", "test", "schema"), choice: str | None = None) -> None:
    """Every data.KEY path that is set names a readable file (SystemExit otherwise, before any
    work): a preset (data=cmeee, `choice`) names paths relative to the current folder."""
    if choice is None:
        try:
            from hydra.core.hydra_config import HydraConfig

            choice = HydraConfig.get().runtime.choices.get("data")
        except (ValueError, ImportError):  # not under Hydra (a test calling run() directly)
            pass
    for key in keys:
        value = cfg.data.get(key)
        if not value:
            continue
        path = Path(str(value))
        if path.is_file():
            continue
        what = "is a folder, not a file" if path.is_dir() else "not found"
        preset = f" (from data={choice})" if choice and choice != "none" else ""
        hint = ("\n  relative paths resolve against the current folder, " + os.getcwd()
                + ("; data=demo is written by `lingshu quickstart`: run from the folder that holds "
                   "lingshu-quickstart/" if choice == "demo" else
                   "; the data= presets expect shared/ beside the current folder (../shared/data)"
                   if preset else ""))
        raise SystemExit(f"error: data.{key}={value}{preset}: {what}" + ("" if path.is_absolute() else hint))


def start_run(cfg: DictConfig, run_dir: str | Path) -> Path:
    """Check the output folder and data paths, seed everything, create the run folder and,
    unless resuming, start a fresh metrics.jsonl."""
    run_dir = Path(run_dir)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun the other ranks would see rank 0's files
        check_output_dir(run_dir, bool(cfg.get("overwrite", False)),
                         cfg.trainer.resume not in (None, False, "false", ""))
    check_data_paths(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" / "Writing model shards" bars; training keeps its own
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


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """checkpoint-N folders whose trainer_state.json (the Trainer writes it last) reads as JSON,
    newest first."""
    out = []
    for ck in Path(run_dir).glob("checkpoint-*"):
        step = ck.name.rsplit("-", 1)[-1]
        if not step.isdigit():
            continue
        try:
            json.loads((ck / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        out.append((int(step), ck))
    return [ck for _, ck in sorted(out, reverse=True)]


def resume_target(tc: DictConfig, run_dir: Path):
    """trainer.resume: true / "last" -> the newest complete checkpoint in the run folder (one a
    kill left half-written is passed over, with a warning); a path -> that checkpoint, if
    complete; false / null -> start afresh. A resume with nothing to resume from is an error."""
    if tc.resume in (None, False, "false", "False", ""):
        return None
    if tc.resume in (True, "true", "True", "last"):
        complete = complete_checkpoints(run_dir)
        partial = sorted({p.name for p in Path(run_dir).glob("checkpoint-*") if p.name.rsplit("-", 1)[-1].isdigit()}
                         - {p.name for p in complete}, key=lambda n: int(n.rsplit("-", 1)[-1]))
        if not complete:
            raise SystemExit(f"trainer.resume={tc.resume}, but {run_dir} holds no complete checkpoint"
                             + (f" ({', '.join(partial)}: no readable trainer_state.json, written when a run "
                                "was killed while saving)" if partial else "")
                             + "; start without trainer.resume, or pass trainer.resume=PATH/checkpoint-N")
        newer = [n for n in partial if int(n.rsplit("-", 1)[-1]) > int(complete[0].name.rsplit("-", 1)[-1])]
        if newer:
            log.warning("%s: %s incomplete (no readable trainer_state.json); resuming from %s",
                        run_dir, ", ".join(newer), complete[0].name)
        return str(complete[0])
    ck = Path(str(tc.resume))
    if ck not in complete_checkpoints(ck.parent):
        raise SystemExit(f"trainer.resume={ck}: not a complete checkpoint (a checkpoint-N folder with a readable "
                         "trainer_state.json)")
    return str(ck)


def save_run(trainer, tokenizer, cfg: DictConfig, run_dir: Path, summary: dict, curve: dict | None = None,
             card: str | None = None) -> list:
    """Save what a finished run leaves (rank 0 only): the model, its tokenizer, the resolved
    config (lingshu_config.yaml), train_summary.json, curves (`curve`: plot_curves options), the
    model card README.md (`card`, lingshu.modelcard); checkpoints are removed unless
    trainer.keep_checkpoints. Returns the plot files."""
    if not trainer.is_world_process_zero():
        return []
    trainer.save_model(str(run_dir))
    tokenizer.save_pretrained(str(run_dir))
    from lingshu.io import _umask, atomic_write_text

    for f in run_dir.glob("*.safetensors"):  # safetensors writes them owner-only; follow the umask like the rest
        f.chmod(0o666 & ~_umask())
    atomic_write_text(run_dir / "lingshu_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    atomic_write_text(run_dir / "train_summary.json", json.dumps(summary, indent=2, ensure_ascii=False))
    plots = plot_curves(trainer.state.log_history, run_dir, **(curve or {}))
    if card:
        from lingshu.modelcard import write

        write(run_dir, card)
    if not cfg.trainer.keep_checkpoints:
        for ck in run_dir.glob("checkpoint-*"):
            if _is_checkpoint(ck) and ck.is_dir():  # what the Trainer wrote, not a user's checkpoint-best/
                shutil.rmtree(ck, ignore_errors=True)
    for ck in run_dir.glob(".checkpoint-*.partial"):  # left by a kill while a checkpoint was written
        if _is_partial_checkpoint(ck) and ck.is_dir():
            shutil.rmtree(ck, ignore_errors=True)
    return plots
