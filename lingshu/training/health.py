"""Signs that a training run has gone wrong although its loss looks fine.

Two failures seen on real pretrained encoders, both silent in the loss curve:

- **Collapsed token vectors.** The encoder maps every token to (nearly) the same vector: the mean
  pairwise cosine of token vectors goes to 1 and their per-dimension spread to 0. A head on top
  can then only learn the label prior (`O` everywhere). Measured on a fixed probe batch of texts,
  at the start of training and at every evaluation.
- **Predicting nothing.** A NER/RE model whose dev predictions hold no entity (or a pair model
  that always answers the same label) scores 0 and says nothing about why.

`token_geometry` is task-agnostic: it runs the encoder on raw text, so every task gets the check.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("lingshu")

COLLAPSE_COSINE = 0.99  # mean pairwise cosine above this: the token vectors have collapsed


@torch.no_grad()
def token_geometry(backbone, tokenizer, texts: list[str], max_length: int = 128) -> dict[str, float]:
    """Mean pairwise cosine and mean per-dimension std of the encoder's token vectors on `texts`
    (special and padding tokens left out). Runs in eval mode and restores the previous mode."""
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        return {"token_cosine": float("nan"), "token_std": float("nan")}
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt",
                    return_special_tokens_mask=True)
    device = next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.autocast(device.type, enabled=False):
            hidden = backbone(input_ids=enc["input_ids"].to(device),
                              attention_mask=enc["attention_mask"].to(device)).last_hidden_state.float()
    finally:
        backbone.train(was_training)
    keep = (enc["attention_mask"].bool() & ~enc["special_tokens_mask"].bool()).to(device)
    vecs = hidden[keep]
    if len(vecs) < 2:
        return {"token_cosine": float("nan"), "token_std": float("nan")}
    unit = torch.nn.functional.normalize(vecs, dim=-1)
    n = len(unit)
    cos = (unit.sum(0).pow(2).sum() - n) / (n * (n - 1))  # mean over pairs i != j
    return {"token_cosine": float(cos), "token_std": float(vecs.std(0).mean())}


def collapse_warning(now: dict[str, float], start: dict[str, float] | None, step: int | None = None) -> str | None:
    """A warning text when the token vectors have collapsed (and did not start that way)."""
    c = now.get("token_cosine")
    if c is None or c != c or c < COLLAPSE_COSINE:
        return None
    if start and start.get("token_cosine", 0.0) >= COLLAPSE_COSINE:
        return None  # an encoder that starts this way (e.g. random init) is not a training failure
    where = f" at step {step}" if step is not None else ""
    was = f" (at the start: {start['token_cosine']:.3f} and {start['token_std']:.4f})" if start else ""
    return (f"The encoder's token vectors have collapsed{where}: mean pairwise cosine {c:.4f}, per-dimension "
            f"std {now['token_std']:.4f}{was}. Every token looks the same to the head, so it can only learn "
            "the label prior. Seen with a head that starts without the label priors (trainer.init_priors=false), "
            "a head learning faster than the encoder (trainer.head_lr_multiplier > 1 on a pretrained encoder) "
            "and learning rates too high for the encoder; it can recover, so watch eval_token_cosine.")


def nothing_predicted_warning(report: dict, noun: str = "entity") -> str | None:
    """A plain sentence when a model predicted no `noun` (entity, triple) at all on evaluation
    data, else None. Each task picks its check (lingshu.tasks: `Task.prediction_warning`)."""
    micro = report.get("micro") or {}
    if micro.get("predicted", 1) == 0:
        return (f"The model predicted no {noun} at all on {report.get('documents', '?')} texts "
                f"(gold: {micro.get('support', 0)}): every score is 0 because nothing was predicted.")
    return None


def single_label_warning(report: dict) -> str | None:
    """A plain sentence when a classifier gave every input the same label, else None."""
    per = report.get("per_label") or {}
    used = [k for k, v in per.items() if v.get("predicted", 0)]
    if len(per) > 1 and len(used) == 1:
        return f"The model predicted the same label ({used[0]!r}) for all {report.get('documents', '?')} pairs."
    return None
