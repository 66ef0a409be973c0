"""Fine-tune an encoder with HF Trainer, from a resolved Hydra config: NER, relation (SPO)
extraction or sentence-pair classification (`task=`).

One device:      lingshu train task=ner-crf model=tiny-bert data=cluener
                 lingshu train task=re model=tiny-modernbert data=cmeie
                 lingshu train task=pair model=tiny-bert data=kuake-qqr
Data parallel:   torchrun --nproc_per_node 2 -m lingshu.cli train ... (gloo on CPU, nccl on GPU)

What happens, in order: read and validate the data; pick labels (from the training data unless
given; for RE the SPO schema from data.schema); load or build the tokenizer and encoder; attach
the task's heads; cut texts into windows; train with dynamic padding, length-grouped batches,
warmup + linear decay, bf16 autocast where the hardware has it; evaluate on dev with the task's
strict metric after each epoch (or every N steps), keep the best, stop early; save the model
directory, the metrics log, curves and the resolved config.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import EarlyStoppingCallback, Trainer

from lingshu.inference.pipeline import pipeline_for
from lingshu.modeling.backbone import (
    build_char_tokenizer,
    format_key_report,
    load_pretrained_backbone,
    load_tokenizer,
    scratch_config,
)
from lingshu.modeling.model import LingshuModel
from lingshu.modeling.spec import ModelSpec
from lingshu.tasks import Task, get_task
from lingshu.training.callbacks import EpochSetter, JsonlMetricsLogger
from lingshu.training.harness import AtomicCheckpoints, resume_target, save_run, start_run, training_arguments

log = logging.getLogger("lingshu")


class TaskTrainer(AtomicCheckpoints, Trainer):
    """Trainer whose evaluation decodes dev documents exactly as `lingshu evaluate` does."""

    def __init__(self, *args, task: Task, dev_docs=None, tokenizer=None, head_lr_multiplier: float = 1.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.dev_docs = dev_docs
        self.tok = tokenizer
        self.task = task
        self.head_lr_multiplier = head_lr_multiplier
        self.last_report = None
        self.dev_pipe = None  # built at the first evaluation, with the dev features, and kept
        self.reports: dict[int, dict] = {}  # global step -> dev report
        self.tokens_seen = 0  # real (non-pad) tokens trained on, this process
        self.eval_seconds = 0.0  # time spent evaluating inside train()
        # a fixed probe of dev (else train) texts for the token-collapse check (lingshu.training.health)
        self.probe_texts: list[str] = []
        self.geometry_start: dict | None = None
        self.health_warnings: list[str] = []
        self.health_current: list[str] = []

    def geometry(self) -> dict:
        from lingshu.training.health import token_geometry

        return token_geometry(self.model.backbone, self.tok, self.probe_texts) if self.probe_texts else {}

    def check_health(self, report: dict | None = None, geo: dict | None = None) -> dict:
        """Token geometry now (`geo`, else measured; at the start, the first time); warnings
        logged and kept."""
        from lingshu.training.health import collapse_warning

        if not self.probe_texts:
            return {}
        geo = self.geometry() if geo is None else geo
        if self.geometry_start is None:
            self.geometry_start = geo
            log.info("encoder token vectors at the start: mean pairwise cosine %.4f, per-dimension std %.4f",
                     geo["token_cosine"], geo["token_std"])
            return geo
        now = [w for w in (collapse_warning(geo, self.geometry_start, self.state.global_step),
                           self.task.prediction_warning(report) if report else None) if w]
        for w in now:
            log.warning(w)
        self.health_warnings += now
        self.health_current = now  # what the latest check found (earlier problems may have passed)
        return geo

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
        """Dev scores the way `lingshu evaluate` computes them: the task's pipeline decodes the
        dev documents (featurized once per run) and the task's metrics score them. Under
        torchrun only rank 0 decodes; the others receive its report, so every rank selects the
        same best checkpoint and stops at the same step."""
        t0 = time.perf_counter()
        report = geo = None
        if self.is_world_process_zero():
            if self.dev_pipe is None:
                self.dev_pipe = pipeline_for(self.model, self.tok, device=str(self.args.device),
                                             batch_size=self.args.per_device_eval_batch_size)
                self.dev_pipe.remember(self.dev_docs)
            preds = self.dev_pipe.predict(self.dev_docs)
            self.model.train()
            report = self.task.metrics(self.dev_docs, preds)
            log.info("dev: %d documents decoded at step %d", len(preds), self.state.global_step)
            geo = self.geometry()
        if self.args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            box = [(report, geo)]
            torch.distributed.broadcast_object_list(box, src=0)
            report, geo = box[0]
        self.last_report = report
        self.reports[self.state.global_step] = report
        geo = self.check_health(report, geo)
        self.eval_seconds += time.perf_counter() - t0
        metrics = self.task.eval_metrics(report, metric_key_prefix)
        metrics.update({f"{metric_key_prefix}_{k}": v for k, v in geo.items()})
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def _read(path: str, fmt: str | None, labels=None, role: str = "train"):
    from lingshu.data import read_documents

    res = read_documents(path, format=fmt, labels=labels)
    if res.report.records_skipped:  # the counts line once, then what was skipped and why
        log.warning("%s data: %s", role, res.report.summary())
    else:
        log.info("%s data: %s", role, res.report.summary().splitlines()[0])
    return res.documents


def head_lr_multiplier(cfg: DictConfig) -> float:
    """trainer.head_lr_multiplier when set, else the task's, else the model's.

    NER and RE heads (ner-softmax, ner-crf, ner-globalpointer, re, re-gplinker) take 10
    everywhere: a fresh head barely moves at an encoder's rate, on a random encoder and on a
    pretrained one (on multilingual-e5-small, with the head's biases at the label priors, one
    CLUENER epoch: CRF 0.4294 at 1x, 0.6382 at 10x; benchmarks/RESULTS.md). Pair classifiers take
    the model's: 10 from scratch, 1 pretrained."""
    for v in (cfg.trainer.get("head_lr_multiplier"), cfg.task.get("head_lr_multiplier"),
              cfg.model.get("head_lr_multiplier")):
        if v is not None:
            return float(v)
    return 1.0


def seq_lengths(cfg: DictConfig) -> tuple[int, int]:
    """(max_seq_length, stride): data.* when set, else the task's defaults."""
    ml = cfg.data.get("max_seq_length") or cfg.task.get("max_seq_length") or 128
    st = cfg.data.get("stride")
    st = st if st is not None else cfg.task.get("stride", 32)
    return int(ml), int(st)


def build_model(cfg: DictConfig, labels, train_texts: list[str]):
    """Tokenizer + encoder + the task's heads, from a checkpoint or from scratch. Returns
    (model, tokenizer).

    `labels`: the entity types (a list), or the dict of the task's `labels`.
    """
    task = get_task(cfg.task.get("task"))
    mc = cfg.model
    attn = mc.get("attn_implementation") or None
    max_len, stride = seq_lengths(cfg)
    options = OmegaConf.to_container(cfg.task, resolve=True)
    spec = ModelSpec.from_dict({
        "task": task.name,
        "decoder": cfg.task.decoder,
        **(labels if isinstance(labels, dict) else {"labels": list(labels)}),
        "max_seq_length": max_len,
        "stride": stride,
        # new models leave SentencePiece's lone `▁` out of char-by-char input (lingshu.text.align);
        # a directory without this key was trained with it and is fed as it was trained
        "drop_lone_prefix": bool(cfg.model.get("drop_lone_prefix", True)),
        **{k: options[k] for k in task.config_keys if options.get(k) is not None},
    })
    try:
        task.check_spec(spec)
    except ValueError as e:  # a task option the task cannot build: a message, not a traceback
        raise SystemExit(f"error: {e}") from None
    if mc.name_or_path:
        tok = load_tokenizer(mc.tokenizer or mc.name_or_path)
        backbone, report = load_pretrained_backbone(mc.name_or_path, attn, keep_pooler=task.keeps_pooler and spec.pooler)
        config = backbone.config
        config.lingshu = spec.to_dict()
        if getattr(config, "use_cache", None):
            config.use_cache = False
        model = LingshuModel(config, backbone=backbone)
        head_keys = [k for k in model.state_dict() if not k.startswith("backbone.")]
        head_keys += [f"backbone.{k}" for k in report.get("new_pooler", [])]  # a checkpoint without pooler weights
        log.info(format_key_report(report, head_keys, mc.name_or_path))
    else:
        if mc.tokenizer:
            tok = load_tokenizer(mc.tokenizer)
        else:
            tok = build_char_tokenizer(train_texts)
            log.info("built a character vocabulary of %d entries from the training data", len(tok))
        config = scratch_config(mc.arch, OmegaConf.to_container(mc.config, resolve=True), tok, attn)
        config.lingshu = spec.to_dict()
        model = LingshuModel(config)
        log.info("built %s from scratch: %.1fM parameters", mc.arch, model.num_parameters() / 1e6)
    model.config.lingshu = task.finish_spec(model, spec).to_dict()
    if mc.get("freeze_backbone"):
        for p in model.backbone.parameters():
            p.requires_grad = False
    if mc.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()
    return model, tok


def make_featurizer(model, tok, cfg: DictConfig):
    """The featurizer of the model's task, with the model's sequence settings."""
    spec = model.spec
    pf = cfg.model.get("padding_free", "auto")
    padding_free = (model.config._attn_implementation == "flash_attention_2") if pf == "auto" else bool(pf)
    return get_task(spec.task).featurizer(spec, tok, padding_free=padding_free, cfg=cfg)


def run(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Train, evaluate and save. Returns the final dev report (or {} without dev data)."""
    run_dir = start_run(cfg, run_dir)
    tc = cfg.trainer
    resume = resume_target(tc, run_dir)  # before any work: a resume with nothing to resume from stops here
    if not cfg.data.train:
        raise SystemExit("no training data: pass data.train=PATH (or data=cluener / data=cmeee / data=demo)")
    task = get_task(cfg.task.get("task"))
    train_docs = task.train_documents(cfg, _read(cfg.data.train, cfg.data.format))
    known = task.labels(cfg, train_docs)
    # the dev reader's policy is `lingshu evaluate`'s: model selection scores what evaluate scores
    dev_docs = (_read(cfg.data.dev, cfg.data.format, labels=task.eval_allowed_labels(known["labels"]), role="dev")
                if cfg.data.dev else None)

    texts = [t for d in train_docs for t in (d.text, d.text_pair) if t]
    model, tok = build_model(cfg, known, texts)
    featurizer = make_featurizer(model, tok, cfg)
    if getattr(featurizer, "padding_free", False):
        log.info("padding-free batches: windows packed into one row (%s)", model.config._attn_implementation)
    out = featurizer.features(train_docs)
    train_feats, stats = out[0], out[-1]  # NER/RE also return encodings and windows
    log.info("train: %s", stats.summary())
    outside = getattr(stats, "outside_labels", None)
    if outside:
        log.warning("%s: %d gold entities have a type outside task.labels and are trained as not-an-entity: %s",
                    cfg.data.train, sum(outside.values()), dict(sorted(outside.items(), key=lambda x: -x[1])))
    if tc.get("init_priors", True):
        for k, v in model.init_priors(train_feats).items():
            log.info("%s starts at the training data's %s", k, v)

    eval_every = str(tc.eval_every)
    eval_kw = {"eval_strategy": "epoch", "save_strategy": "epoch"} if eval_every == "epoch" else {
        "eval_strategy": "steps", "save_strategy": "steps", "eval_steps": int(eval_every), "save_steps": int(eval_every)}
    if not dev_docs:
        eval_kw = {"eval_strategy": "no", "save_strategy": eval_kw["save_strategy"], **(
            {"save_steps": eval_kw["save_steps"]} if "save_steps" in eval_kw else {})}
    args = training_arguments(
        cfg, run_dir,
        load_best_model_at_end=bool(dev_docs),
        metric_for_best_model=task.main_metric if dev_docs else None,
        greater_is_better=True,
        train_sampling_strategy="group_by_length" if tc.group_by_length else "random",
        save_only_model=False,
        **eval_kw,
    )
    # what `lingshu.load` runs a CUDA forward in by default (lingshu.inference.pipeline.pick_precision)
    model.config.lingshu = model.spec.replace(train_precision="bf16" if args.bf16 else "fp32").to_dict()
    callbacks = [JsonlMetricsLogger(run_dir / "metrics.jsonl")]
    if dev_docs and tc.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(int(tc.early_stopping_patience)))
    train_dataset = featurizer.train_dataset(train_feats)
    if hasattr(train_dataset, "set_epoch"):
        callbacks.append(EpochSetter(train_dataset))
    trainer = TaskTrainer(
        model=model, args=args, train_dataset=train_dataset, data_collator=featurizer.collate,
        eval_dataset=dev_docs or None,  # only for Trainer's checks: evaluate() decodes dev_docs itself
        dev_docs=dev_docs, tokenizer=tok, task=task, callbacks=callbacks,
        head_lr_multiplier=head_lr_multiplier(cfg),
    )
    probe_docs = (dev_docs or train_docs)[:32]
    trainer.probe_texts = [d.text for d in probe_docs]
    trainer.check_health()  # the untrained encoder's token geometry, the reference for later checks
    result = trainer.train(resume_from_checkpoint=resume)
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
                       "peak_gpu_memory_mib": torch.cuda.max_memory_allocated() / 2**20
                       if torch.cuda.is_available() and args.device.type == "cuda" else None,
                       "train_windows": len(train_feats),
                       "train_tokens_one_pass": sum(len(f["input_ids"]) for f in train_feats)}
        if outside:
            train_stats["train_entities_outside_labels"] = outside
        train_stats["token_geometry_start"] = trainer.geometry_start
        train_stats["warnings"] = trainer.health_warnings  # every warning, with its step
        train_stats["warnings_at_end"] = trainer.health_current
        from lingshu.modelcard import task_card

        summary = {**train_stats, "dev": report}
        card = task_card(trainer.model.config.to_dict(), cfg, summary, task.format_report(report) if report else None,
                         folder_hint=str(run_dir))
        plots = save_run(trainer, tok, cfg, run_dir, summary, task.curve, card=card)
        if report:
            print("\nDev set, " + report["scheme"] + ":\n" + task.format_report(report))
        for w in trainer.health_current:
            print(f"\nWARNING: {w}")
        passed = [w for w in trainer.health_warnings if w not in trainer.health_current]
        if passed:
            print(f"\n(earlier in training, since recovered: {' / '.join(passed)})")
        print(f"\nSaved model to {run_dir}" + (f" (curves: {', '.join(p.name for p in plots)})" if plots else ""))
    return report
