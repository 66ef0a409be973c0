"""Pipelines: a trained model directory -> a callable.

- `NerPipeline`:  `nlp(text) -> Document` with entities;
- `RePipeline`:   `nlp(text) -> Document` with relations (and the mentions found);
- `PairPipeline`: `nlp(text1, text2) -> Document` with `label` and `label_scores`.

`load_pipeline(dir)` picks the one the model's task needs. Texts of any length: windows are
predicted in length-sorted batches (little padding) and merged back per text.
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


PRECISIONS = ("fp32", "bf16")


def pick_precision(precision: str | None, device: torch.device, spec: dict) -> str:
    """What the forward pass runs in: `precision` when given; else fp32 on CPU, and on CUDA what the
    model was trained with (config.json's `train_precision`; a directory written before lingshu
    stored it keeps the old behaviour, bf16 where the GPU has it)."""
    if precision is not None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        return precision
    if device.type != "cuda":
        return "fp32"
    trained = spec.get("train_precision")
    if trained is None:
        trained = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return trained


class NerPipeline:
    """Entity extraction with a lingshu model.

    Example:
        >>> nlp = lingshu.load("runs/cmeee-gp")
        >>> doc = nlp("患者出现发热、咳嗽。")
        >>> [(e.text, e.type) for e in doc.ents]
    """

    def __init__(self, model, tokenizer, device: str | None = None, batch_size: int = 64,
                 precision: str | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.device = pick_device(device)
        self.precision = pick_precision(precision, self.device, model.config.lingshu)
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        self.featurizer = self.make_featurizer(model.config.lingshu,
                                               model.config._attn_implementation == "flash_attention_2")

    def make_featurizer(self, spec: dict, padding_free: bool):
        self.nested = spec["decoder"] == "globalpointer"
        return Featurizer(self.tokenizer, spec["labels"], spec["decoder"], spec.get("max_seq_length", 128),
                          spec.get("stride", 32), padding_free=padding_free,
                          drop_lone_prefix=bool(spec.get("drop_lone_prefix", False)))

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, batch_size: int = 64,
                        precision: str | None = None):
        """The pipeline for the directory's task (NER, RE or pair), whichever class it is called on."""
        return load_pipeline(path, device, batch_size, precision)

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
        window_spans: list = [None] * len(feats)
        for idx, batch in self._run(feats, progress):
            decoded = self.model.decode(batch["out"].logits.float(), batch["unit_mask"])
            for i, spans in zip(idx, decoded):
                window_spans[i] = spans
        return self.featurizer.to_documents(docs, encs, wins, window_spans, self.nested)

    def _run(self, feats, progress: bool = False, method=None):
        """Yield (indices, batch with the model's output under "out") over length-sorted batches
        (little padding), in eval mode, in `self.precision` (bf16: autocast)."""
        order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
        batches: Iterable = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="predict", unit="batch")
        was_training = self.model.training
        self.model.eval()
        use_bf16 = self.precision == "bf16"
        # the class's forward, not the instance's: during training accelerate replaces
        # `model.forward` with an autocast wrapper, and dev scores must be computed the way
        # `lingshu evaluate` computes them later
        fn = method or type(self.model).forward
        try:
            for idx in batches:
                batch = self.featurizer.collate([feats[i] for i in idx])
                batch = {k: v.to(self.device) for k, v in batch.items()}
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    batch["out"] = fn(self.model, **batch)
                yield idx, batch
        finally:
            if was_training:
                self.model.train()


class RePipeline(NerPipeline):
    """Joint entity + relation extraction: `nlp(text) -> Document` with `relations`.

    Example:
        >>> nlp = lingshu.load("runs/cmeie")
        >>> doc = nlp("糖尿病患者常出现多饮、多尿。")
        >>> [r.key for r in doc.relations]       # (subject, predicate, object) strings
    """

    def make_featurizer(self, spec: dict, padding_free: bool):
        from lingshu.text.re_features import ReFeaturizer

        return ReFeaturizer(self.tokenizer, spec["labels"], spec["patterns"], spec.get("max_seq_length", 256),
                            spec.get("stride", 64), padding_free=padding_free, decoder=spec["decoder"],
                            drop_lone_prefix=bool(spec.get("drop_lone_prefix", False)))

    @property
    def patterns(self) -> list[tuple[str, str, str]]:
        return [tuple(p) for p in self.model.config.lingshu["patterns"]]

    @torch.no_grad()
    def predict(self, docs: list[Document], progress: bool = False) -> list[Document]:
        """Predict mentions and triples (gold annotations, if any, are ignored)."""
        if not docs:
            return []
        feats, encs, wins, _ = self.featurizer.features(docs, with_labels=False)
        results: list = [None] * len(feats)
        for idx, batch in self._run(feats, progress, type(self.model).extract_relations):
            for i, r in zip(idx, batch["out"]):
                results[i] = r
        return self.featurizer.to_re_documents(docs, encs, wins, results)


class PairPipeline(NerPipeline):
    """Sentence-pair classification: `nlp(text1, text2) -> Document` with `label`, `label_scores`.

    Example:
        >>> nlp = lingshu.load("runs/qqr")
        >>> d = nlp("糖尿病吃什么", "糖尿病的饮食")
        >>> d.label, d.label_scores
    """

    def make_featurizer(self, spec: dict, padding_free: bool):
        from lingshu.text.pair_features import PairFeaturizer

        return PairFeaturizer(self.tokenizer, spec["labels"], spec.get("max_seq_length", 128),
                              token_type_ids=bool(spec.get("token_type_ids", True)))

    def __call__(self, text, text_pair=None):
        if isinstance(text, str):
            if text_pair is None:
                raise TypeError("a pair model takes two texts: nlp(text1, text2)")
            return self.predict([Document(text, text_pair=text_pair)])[0]
        return self.predict([Document(a, text_pair=b) for a, b in text])

    @torch.no_grad()
    def predict(self, docs: list[Document], progress: bool = False) -> list[Document]:
        if not docs:
            return []
        feats, _ = self.featurizer.features(docs, with_labels=False)
        labels = self.labels
        out: list = [None] * len(docs)
        for idx, batch in self._run(feats, progress):
            probs = torch.softmax(batch["out"].logits.float(), -1).cpu()
            for i, p in zip(idx, probs):
                d = docs[i]
                scores = {t: round(float(x), 4) for t, x in zip(labels, p)}
                out[i] = Document(d.text, id=d.id, meta=d.meta, source=d.source, text_pair=d.text_pair,
                                  label=labels[int(p.argmax())], label_scores=scores)
        return out


PIPELINES = {"ner": NerPipeline, "re": RePipeline, "pair": PairPipeline}


def pipeline_for(model, tokenizer, device: str | None = None, batch_size: int = 64, precision: str | None = None):
    """The pipeline class the model's task needs, around an in-memory model."""
    return PIPELINES[model.config.lingshu.get("task", "ner")](model, tokenizer, device, batch_size, precision)


def load_pipeline(path: str | Path, device: str | None = None, batch_size: int = 64, precision: str | None = None):
    """A trained lingshu model directory -> its task's pipeline."""
    from transformers.utils import logging as hf_logging

    from lingshu.modeling.backbone import load_tokenizer
    from lingshu.modeling.model import load_model

    hf_logging.disable_progress_bar()  # "Loading weights" bars on every load are noise here
    return pipeline_for(load_model(str(path)), load_tokenizer(str(path)), device, batch_size, precision)
