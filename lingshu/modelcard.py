"""Model cards: the README.md every model folder lingshu writes carries, as HuggingFace model
repositories do. What the model is (task, head, labels or schema, backbone), how it was made
(data, configuration, steps, time), how well it does (dev scores per type), and how to load,
predict with and export it. Written by `lingshu train`, `lingshu adapt` and `lingshu export`."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CARD = "README.md"


def _backbone(config: dict, cfg: DictConfig | None) -> str:
    name = None
    if cfg is not None:
        name = OmegaConf.select(cfg, "model.name_or_path", default=None)
    shape = ", ".join(f"{k.replace('num_hidden_layers', 'layers').replace('hidden_size', 'hidden')} "
                      f"{config[k]}" for k in ("num_hidden_layers", "hidden_size", "vocab_size") if k in config)
    origin = f"fine-tuned from `{name}`" if name else "built from scratch"
    return f"{config.get('model_type', '?')} ({shape}), {origin}"


def _settings(cfg: DictConfig | None, keys: list[str]) -> list[str]:
    if cfg is None:
        return []
    out = []
    for k in keys:
        v = OmegaConf.select(cfg, k, default=None)
        if v is None or v == "" or (k.endswith("max_steps") and not v):
            continue
        out.append(f"| `{k}` | `{v}` |")
    return out


def _usage(folder_hint: str, spec: dict) -> str:
    from lingshu.tasks import task_of

    call = task_of(spec).usage_example
    return ("## Use\n\n```python\nimport lingshu\n"
            f'nlp = lingshu.load("{folder_hint}")\n{call}\n```\n\n```bash\n'
            f"lingshu predict {folder_hint} INPUT -o OUTPUT        # a file of any size, streamed\n"
            f"lingshu evaluate {folder_hint} DEV_FILE              # strict scores per type\n"
            f"lingshu export onnx {folder_hint} {folder_hint}-onnx # for CPU serving (--int8)\n```\n")


def task_card(config: dict, cfg: DictConfig | None, summary: dict, report_text: str | None,
              folder_hint: str = "MODEL_DIR") -> str:
    """The card of a task model (`lingshu train`)."""
    from lingshu.tasks import task_of

    spec = config.get("lingshu", {})
    task, decoder = spec.get("task", "ner"), spec.get("decoder")
    labels = spec.get("labels", [])
    lines = [f"# lingshu {task} model{f' ({decoder})' if decoder else ''}", "",
             "| | |", "|---|---|",
             f"| task | {task}{f', head `{decoder}`' if decoder else ''} |",
             f"| {task_of(spec).labels_noun} | {len(labels)}: "
             f"{', '.join(map(str, labels))} |"]
    if spec.get("patterns"):
        preds = sorted({p[1] for p in spec["patterns"]})
        lines.append(f"| schema | {len(spec['patterns'])} (subject type, predicate, object type) patterns, "
                     f"{len(preds)} predicates |")
    lines += [f"| backbone | {_backbone(config, cfg)} |",
              f"| window | {spec.get('max_seq_length')} tokens, stride {spec.get('stride')} |",
              f"| trained in | {spec.get('train_precision') or '?'} |", ""]
    lines += ["## Training", "", "| setting | value |", "|---|---|"]
    lines += _settings(cfg, ["data.train", "data.dev", "data.format", "data.schema", "trainer.epochs",
                             "trainer.max_steps", "trainer.batch_size", "trainer.learning_rate",
                             "trainer.head_lr_multiplier", "trainer.warmup", "trainer.weight_decay",
                             "trainer.seed"])
    if cfg is not None and OmegaConf.select(cfg, "trainer.learning_rate", default=None) is None:
        try:
            from lingshu.training.harness import learning_rate

            lines.append(f"| learning rate (the model config's default) | `{learning_rate(cfg):g}` |")
        except Exception:  # noqa: BLE001 - a card without this line is still a card
            pass
    for k, name in (("global_step", "steps"), ("train_runtime_s", "train time (s)"),
                    ("train_tokens_per_s", "train tokens/s")):
        if summary.get(k) is not None:
            v = summary[k]
            lines.append(f"| {name} | {v:,.0f} |" if isinstance(v, (int, float)) else f"| {name} | {v} |")
    lines.append("")
    dev = summary.get("dev") or {}
    if report_text:
        lines += ["## Dev scores", "", f"{dev.get('scheme', 'strict')}, on `{OmegaConf.select(cfg, 'data.dev')}`"
                  if cfg is not None else "", "", "```", report_text.rstrip(), "```", ""]
    else:
        lines += ["## Dev scores", "", "No dev set was given (`data.dev`); score it with `lingshu evaluate`.", ""]
    if summary.get("warnings_at_end"):
        lines += ["## Warnings at the end of training", ""] + [f"- {w}" for w in summary["warnings_at_end"]] + [""]
    lines.append(_usage(folder_hint, spec))
    lines.append("The resolved configuration is `lingshu_config.yaml`; `train_summary.json` and "
                 "`metrics.jsonl` hold every figure above.\n")
    return "\n".join(lines)


def mlm_card(config: dict, cfg: DictConfig | None, summary: dict, folder_hint: str = "MODEL_DIR") -> str:
    """The card of a domain-adapted encoder (`lingshu adapt`)."""
    m = summary.get("masking", {})
    held = summary.get("heldout", {})
    lines = ["# lingshu domain-adapted encoder (masked-LM)", "",
             "| | |", "|---|---|", f"| backbone | {_backbone(config, cfg)} |",
             f"| masking | {m.get('strategy', '?')}, lexicon `{m.get('lexicon')}` |"]
    if held:
        lines.append(f"| held-out masked-token accuracy | {held.get('eval_masked_accuracy', float('nan')):.4f} |")
        if "eval_perplexity" in held:
            lines.append(f"| held-out perplexity | {held['eval_perplexity']:.2f} |")
    lines += ["", "## Training", "", "| setting | value |", "|---|---|"]
    lines += _settings(cfg, ["data.train", "trainer.max_steps", "trainer.epochs", "trainer.batch_size",
                             "trainer.learning_rate", "trainer.seed"])
    if summary.get("global_step") is not None:
        lines.append(f"| steps | {summary['global_step']:,} |")
    lines += ["", "## Use", "", "```bash", f'lingshu fill-mask {folder_hint} "患者出现[MASK][MASK]等症状"',
              f"lingshu train task=ner-globalpointer model=pretrained model.name_or_path={folder_hint} data=cmeee",
              "```", ""]
    return "\n".join(lines)


def export_card(model_dir: Path, out_dir: Path, manifest: dict) -> str:
    """The source model's card with a section on the export on top of its usage."""
    src = model_dir / CARD
    body = src.read_text(encoding="utf-8") if src.is_file() else f"# lingshu model exported from {model_dir}\n"
    stages = "\n".join(f"- `{s}`: {', '.join(v['inputs'])} -> {', '.join(v['outputs'])} (`onnx/{v['file']}`)"
                       for s, v in manifest["stages"].items())
    section = ("\n## This folder: an ONNX export\n\n"
               f"Exported from `{model_dir}` by `lingshu export onnx`{' with int8 weights' if manifest['int8'] else ''} "
               f"(opset {manifest['opset']}); no torch weights. Stages:\n\n{stages}\n\n"
               + (f"Largest difference from torch on an example batch: {manifest['check_max_abs_diff']:.3g}.\n"
                  if "check_max_abs_diff" in manifest else "")
               + f"`lingshu.load(\"{out_dir}\")` runs it on onnxruntime.\n")
    return body.rstrip() + "\n" + section


def write(folder: Path, text: str) -> Path:
    from lingshu.io import atomic_open

    path = Path(folder) / CARD
    with atomic_open(path) as f:
        f.write(text)
    return path


def read_config(folder: Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
