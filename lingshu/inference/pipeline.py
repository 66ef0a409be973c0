"""`NerPipeline`: a trained model directory -> `nlp(text) -> Document`.

Texts of any length: windows are predicted in length-sorted batches (little padding) and merged
back per text (lingshu.text.align.merge_window_spans).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, overload

import torch

from lingshu.schema import Document
from lingshu.text.features import Featurizer


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class NerPipeline:
    """Entity extraction with a lingshu model.

    Example:
        >>> nlp = lingshu.load("runs/cmeee-gp")
        >>> doc = nlp("患者出现发热、咳嗽。")
        >>> [(e.text, e.type) for e in doc.ents]
    """

    def __init__(self, model, tokenizer, device: str | None = None, batch_size: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.device = pick_device(device)
        self.model.to(self.device).eval()
        spec = model.config.lingshu
        self.featurizer = Featurizer(tokenizer, spec["labels"], spec["decoder"],
                                     spec.get("max_seq_length", 128), spec.get("stride", 32),
                                     padding_free=model.config._attn_implementation == "flash_attention_2")
        self.batch_size = batch_size
        self.nested = spec["decoder"] == "globalpointer"

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, batch_size: int = 64) -> "NerPipeline":
        from transformers.utils import logging as hf_logging

        from lingshu.modeling.backbone import load_tokenizer
        from lingshu.modeling.model import load_model

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every load are noise here
        return cls(load_model(str(path)), load_tokenizer(str(path)), device, batch_size)

    @property
    def labels(self) -> list[str]:
        return list(self.model.config.lingshu["labels"])

    @overload
    def __call__(self, text: str) -> Document: ...
    @overload
    def __call__(self, text: list[str]) -> list[Document]: ...

    def __call__(self, text):
        if isinstance(text, str):
            return self.predict([Document(text)])[0]
        return self.predict([Document(t) for t in text])

    @torch.no_grad()
    def predict(self, docs: list[Document], progress: bool = False) -> list[Document]:
        """Predict entities for documents (their gold entities, if any, are ignored)."""
        if not docs:
            return []
        feats, encs, wins, _ = self.featurizer.features(docs, with_labels=False)
        order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
        window_spans: list = [None] * len(feats)
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        it: Iterable = batches
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(batches, desc="predict", unit="batch")
        was_training = self.model.training
        self.model.eval()
        use_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        for idx in it:
            batch = self.featurizer.collate([feats[i] for i in idx])
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                # the class's forward, not the instance's: during training accelerate replaces
                # `model.forward` with an autocast wrapper, and dev scores must be computed the
                # way `lingshu evaluate` computes them later
                out = type(self.model).forward(self.model, **batch)
            decoded = self.model.decode(out.logits.float(), batch["unit_mask"])
            for i, spans in zip(idx, decoded):
                window_spans[i] = spans
        if was_training:
            self.model.train()
        return self.featurizer.to_documents(docs, encs, wins, window_spans, self.nested)
