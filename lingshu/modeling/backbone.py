"""Encoders and tokenizers: load by hub name or directory, or build from scratch from a config.

Architecture parameters always come from the checkpoint's config.json when one is given; the
yaml in conf/model/ only shapes models built from scratch.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

log = logging.getLogger("lingshu")

# weights a pretraining checkpoint carries that an encoder does not use: the MLM/NSP heads
# (BERT: cls.predictions.*, cls.seq_relationship.*; ModernBERT: head.dense/norm, decoder.*)
# and the BERT pooler, which token-level tasks drop.
EXPECTED_UNUSED = ("cls.", "head.", "decoder.", "lm_head.", "pooler.", "bert.pooler.", "generator_", "discriminator_")


class OfflineModelError(OSError):
    """A hub name was given but the model is not in the local cache (lingshu never downloads)."""


class ModelPathError(OSError):
    """A model path that names no usable model folder: missing, a file, no config.json, an
    unknown model_type."""


def _looks_like_path(name: str) -> bool:
    """A name meant as a folder, not a hub id: absolute, ./ ../ ~, a trailing slash, more than
    one slash, or a first component that is a folder here (`runs/x` when runs/ exists)."""
    if name.startswith(("/", "./", "../", "~", ".\\")) or name.endswith(("/", os.sep)) or name.count("/") > 1:
        return True
    return "/" in name and Path(name.split("/", 1)[0]).is_dir()


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "sentencepiece.bpe.model")


def _check_model_folder(path: Path, name: str, tokenizer_only: bool = False) -> None:
    if not path.is_dir():
        raise ModelPathError(f"{name} is a file, not a model folder (a folder with config.json)")
    if tokenizer_only and any((path / f).is_file() for f in TOKENIZER_FILES):
        return
    cfg = path / "config.json"
    if not cfg.is_file():
        held = sorted(p.name for p in path.iterdir())[:8]
        raise ModelPathError(f"{name} is not a model folder: it has no config.json"
                             + (f" (it holds {', '.join(held)}{' …' if len(held) == 8 else ''})" if held else
                                " (it is empty)"))
    try:
        model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        raise ModelPathError(f"{cfg} is not a JSON object ({type(e).__name__}: {e})") from e
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if not model_type:
        raise ModelPathError(f"{cfg} has no model_type, so no model class can be chosen for it")
    if model_type not in CONFIG_MAPPING:
        import transformers

        raise ModelPathError(f"{cfg}: model_type {model_type!r} is not one transformers {transformers.__version__} "
                             "knows (a newer transformers, or a checkpoint that needs trust_remote_code, "
                             "which lingshu does not run)")


def resolve_model(name_or_path: str | Path, tokenizer_only: bool = False) -> str:
    """The local folder of a model: `name_or_path` itself when it is a folder, else the Hugging
    Face cache's copy of a hub id (never the network). Raises ModelPathError for a folder that is
    missing or is not a model, OfflineModelError for a hub id that is not cached.
    `tokenizer_only`: a folder with only tokenizer files will do."""
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        _check_model_folder(path, name, tokenizer_only)
        return str(path)
    if _looks_like_path(name) or os.path.isabs(name):
        parent = path.parent
        near = []
        if parent.is_dir():
            import difflib

            near = difflib.get_close_matches(path.name, [p.name for p in parent.iterdir() if p.is_dir()], n=3)
        raise ModelPathError(f"no such folder: {name}"
                             + (f" (did you mean {' or '.join(str(parent / n) for n in near)}?)" if near else ""))
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        local = snapshot_download(name, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError) as e:  # ValueError: not a valid repo id
        raise _offline_hint(name, e) from e
    _check_model_folder(Path(local), name, tokenizer_only)
    return local


def _offline_hint(name: str, err: Exception) -> OfflineModelError:
    short = name.split("/")[-1]
    return OfflineModelError(
        f"'{name}' is not a folder here and not in the Hugging Face cache; lingshu does not download. "
        f"On a machine with network:  hf download {name} --local-dir models/{short}   then copy models/{short} "
        f"here and pass model.name_or_path=models/{short} (or that folder to the command)"
    )


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """Load a fast tokenizer and check it is usable (not a 5-token stub)."""
    tok = AutoTokenizer.from_pretrained(resolve_model(name_or_path, tokenizer_only=True))
    if not tok.is_fast:
        raise ValueError(f"{name_or_path}: lingshu needs a fast tokenizer (offset mappings); got {type(tok).__name__}")
    if len(tok) < 100:
        raise ValueError(
            f"{name_or_path}: the tokenizer has only {len(tok)} entries; its vocabulary was not loaded "
            "(a folder with only vocab.txt needs a tokenizer_config.json)"
        )
    return tok


def build_char_tokenizer(texts: Iterable[str], out_dir: str | Path | None = None,
                         min_freq: int = 1) -> PreTrainedTokenizerBase:
    """A WordPiece tokenizer whose vocabulary is the characters of `texts` (lowercased).

    For from-scratch models given no tokenizer. lingshu feeds text one character at a time, so
    a character vocabulary covers everything; `##x` continuations are added for non-CJK
    characters so that other uses of the tokenizer (whole words) still work. Without `out_dir`
    the vocabulary files live in a temporary folder only while the tokenizer loads (a training
    run saves the tokenizer with the model; under torchrun no rank writes into the run folder
    before rank 0 has checked it).
    """
    if out_dir is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="lingshu-vocab-") as tmp:
            return build_char_tokenizer(texts, tmp, min_freq)
    counts = Counter(ch for t in texts for ch in t.lower() if not ch.isspace())
    chars = sorted(c for c, n in counts.items() if n >= min_freq)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = special + chars + [f"##{c}" for c in chars if not ("\u4e00" <= c <= "\u9fff")]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (out / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}),
        encoding="utf-8",
    )
    tok = load_tokenizer(str(out))
    assert len(tok) == len(vocab), (len(tok), len(vocab))
    return tok


def special_token_ids(tok: PreTrainedTokenizerBase) -> dict[str, int]:
    """pad/cls/sep/mask/bos/eos ids from the tokenizer, for configs whose defaults assume
    another vocabulary (ModernBERT defaults pad=50283, cls=50281, sep=50282)."""
    cls = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
    sep = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
    ids = {"pad_token_id": tok.pad_token_id, "cls_token_id": cls, "sep_token_id": sep,
           "bos_token_id": cls, "eos_token_id": sep, "mask_token_id": tok.mask_token_id}
    return {k: v for k, v in ids.items() if v is not None}


def scratch_config(arch: str, params: dict[str, Any], tok: PreTrainedTokenizerBase, attn: str | None = None):
    """A config for a from-scratch encoder of type `arch` (bert, modernbert, roberta, …)."""
    params = dict(params or {})
    params.update(special_token_ids(tok))
    params["vocab_size"] = len(tok)
    cfg = AutoConfig.for_model(arch, **params)
    if attn:
        cfg._attn_implementation = attn
    return cfg


def _is_lingshu_dir(path: str) -> bool:
    p = Path(path) / "config.json"
    return p.exists() and "lingshu" in json.loads(p.read_text(encoding="utf-8"))


def load_pretrained_backbone(name_or_path: str, attn: str | None = None, keep_pooler: bool = False):
    """Load an encoder (no task head) and its loading report. `keep_pooler`: keep the encoder's
    pooler (a pair head reads it); `new_pooler` in the report lists its weights the checkpoint lacks.

    Returns (model, report) where report has `missing` (encoder weights the checkpoint lacks:
    they are randomly initialised, which is wrong for a pretrained model), `unused_expected`
    (pretraining heads) and `unused_other` (anything else the encoder did not take).
    """
    kwargs = {"attn_implementation": attn} if attn else {}
    if _is_lingshu_dir(name_or_path):
        # a lingshu task model: take its encoder, drop its task head
        from lingshu.modeling.model import LingshuModel

        full = LingshuModel.from_pretrained(name_or_path)
        head_keys = [k for k in full.state_dict() if not k.startswith("backbone.")]
        return full.backbone, {"missing": [], "unused_expected": head_keys, "unused_other": []}
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # we print our own, clearer key report
    try:
        model, info = AutoModel.from_pretrained(resolve_model(name_or_path), output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    new_pooler = sorted(k for k in info.get("missing_keys", []) if k.startswith("pooler."))
    if getattr(model, "pooler", None) is not None and not keep_pooler:
        model.pooler = None  # token tasks drop it, so a checkpoint without one lacks nothing
        new_pooler = []
    unexpected = sorted(info.get("unexpected_keys", []))
    exp = [k for k in unexpected if k.startswith(EXPECTED_UNUSED) or ".pooler." in k]
    other = [k for k in unexpected if k not in exp]
    missing = sorted(k for k in info.get("missing_keys", []) if not k.startswith("pooler."))
    mismatched = [str(m) for m in info.get("mismatched_keys", [])]
    return model, {"missing": missing, "unused_expected": exp, "unused_other": other + mismatched,
                   "new_pooler": new_pooler}


def format_key_report(report: dict[str, list[str]], new_head_keys: list[str], source: str) -> str:
    """A readable load report; the unexpected categories are shouted."""

    def short(keys: list[str], n: int = 8) -> str:
        return ", ".join(keys[:n]) + (f", … (+{len(keys) - n})" if len(keys) > n else "")

    lines = [f"Loaded encoder weights from {source}"]
    heads: dict[str, int] = {}
    for k in new_head_keys:
        heads[k.split(".")[0]] = heads.get(k.split(".")[0], 0) + 1
    lines.append(f"  new task-head weights (expected, randomly initialised): {len(new_head_keys)}"
                 + (" in " + ", ".join(f"{h} ({n})" for h, n in heads.items()) if heads else "")
                 + (f": {short(new_head_keys)}" if new_head_keys else ""))
    lines.append(f"  pretraining weights not used (expected: MLM/pooler heads): {len(report['unused_expected'])}"
                 + (f": {short(report['unused_expected'])}" if report["unused_expected"] else ""))
    if report["missing"]:
        lines.append(f"  !!! ENCODER WEIGHTS MISSING FROM THE CHECKPOINT (randomly initialised): "
                     f"{len(report['missing'])}: {short(report['missing'])}")
    if report["unused_other"]:
        lines.append(f"  !!! UNEXPECTED WEIGHTS NOT USED: {len(report['unused_other'])}: {short(report['unused_other'])}")
    return "\n".join(lines)
