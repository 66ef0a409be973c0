"""Pipelines: a trained model directory -> a callable.

`Pipeline` is what every task's pipeline shares: the task's featurizer, length-sorted batches
(`batches`) and the backend that runs the model's stages on them (lingshu.inference.backends:
numpy in, numpy out; torch today). Each task's subclass (in lingshu/tasks/) is
preprocess (featurize) -> backend stages -> postprocess (lingshu.decoding, then `Document`s):

- `lingshu.tasks.ner.NerPipeline`:   `nlp(text) -> Document` with entities;
- `lingshu.tasks.re.RePipeline`:     `nlp(text) -> Document` with relations (and the mentions found);
- `lingshu.tasks.pair.PairPipeline`: `nlp(text1, text2) -> Document` with `label` and `label_scores`.

`load_pipeline(dir)` picks the one the model's task names. Texts of any length: windows are
predicted in length-sorted batches (little padding) and merged back per text.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from lingshu.data.source import LONE_SURROGATE
from lingshu.inference.backends import make_backend
from lingshu.modeling.spec import ModelSpec
from lingshu.schema import Document


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PRECISIONS = ("fp32", "bf16")


def pick_precision(precision: str | None, device: torch.device, spec) -> str:
    """What the forward pass runs in: `precision` when given; else fp32 on CPU, and on CUDA what the
    model was trained with (config.json's `train_precision`; a directory written before lingshu
    stored it keeps the old behaviour, bf16 where the GPU has it)."""
    if precision is not None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        return precision
    if device.type != "cuda":
        return "fp32"
    trained = ModelSpec.from_dict(spec).train_precision
    if trained is None:
        trained = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return trained


class Pipeline:
    """The shared part of every task's pipeline (module docstring)."""

    def __init__(self, model, tokenizer, device: str | None = None, batch_size: int = 64,
                 precision: str | None = None, backend: str = "torch"):
        from lingshu.tasks import task_of

        self.model = model
        self.tokenizer = tokenizer
        self.task = task_of(model.spec)
        self.device = pick_device(device)
        self.precision = pick_precision(precision, self.device, model.spec)
        self.backend = make_backend(backend, model, self.device, self.precision)
        self.batch_size = batch_size
        self.featurizer = self.task.featurizer(model.spec, tokenizer,
                                               padding_free=model.config._attn_implementation == "flash_attention_2")
        self._memo = None  # (documents, their features): see `remember`

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | None = None, batch_size: int = 64,
                        precision: str | None = None, backend: str | None = None):
        """The pipeline for the directory's task, whichever class it is called on."""
        return load_pipeline(path, device, batch_size, precision, backend)

    @property
    def spec(self) -> ModelSpec:
        """The model's `ModelSpec` (lingshu.modeling.spec)."""
        return self.model.spec

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels)

    threshold_keys: tuple[str, ...] = ()  # decoding thresholds a call may set (`decoding_spec`)

    def __call__(self, text, thresholds: dict | None = None):
        """One text -> its `Document`; a list of texts -> a list of `Document`s. `thresholds`:
        decoding thresholds for this call only (`threshold_keys`), e.g. {"span_threshold": 1.0}."""
        kw = {"thresholds": thresholds} if thresholds else {}  # a task's pipeline may take none
        if isinstance(text, str):
            return self.predict([self._input(text)], **kw)[0]
        return self.predict([self._input(t) for t in text], **kw)

    def decoding_spec(self, thresholds: dict | None = None) -> ModelSpec:
        """The model's spec with this call's thresholds in place of the stored ones."""
        if not thresholds:
            return self.spec
        bad = sorted(set(thresholds) - set(self.threshold_keys))
        if bad:
            takes = ", ".join(self.threshold_keys) or "none"
            raise ValueError(f"unknown decoding threshold(s) {', '.join(bad)} for this {self.task.name} model; "
                             f"it takes: {takes}")
        spec = self.spec.replace(**thresholds)
        for key, value in thresholds.items():
            want = type(getattr(ModelSpec(), key))
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = (number and math.isfinite(value) if want is float else
                  number and isinstance(value, int) if want is int else isinstance(value, want))
            if not ok:
                kind = {float: "a finite number", int: "an integer"}.get(want, f"a {want.__name__}")
                raise ValueError(f"decoding option {key}={value!r}: expected {kind}")
        self.task.check_spec(spec)  # e.g. a tag_decoding the decoder does not know
        return spec

    def as_document(self, x) -> Document:
        """What `pipe` and `__call__` accept as one input: a `Document` or a text."""
        if isinstance(x, Document):
            return x
        if isinstance(x, str):
            return Document(x)
        raise TypeError(f"expected a text or a Document, got {type(x).__name__}")

    def _input(self, x) -> Document:
        doc = self.as_document(x)
        for name, t in (("text", doc.text), ("text_pair", doc.text_pair)):
            m = LONE_SURROGATE.search(t) if isinstance(t, str) else None
            if m is not None:
                raise ValueError(f"{doc.source or 'input'}: the {name} holds a lone surrogate U+{ord(m.group()):04X} "
                                 f"at character {m.start()}, which is not valid Unicode and cannot be tokenized")
        return doc

    def predict(self, docs: list[Document], progress: bool = False, thresholds: dict | None = None) -> list[Document]:
        """Predictions for documents (their gold annotations, if any, are ignored), in order;
        `thresholds` as in `__call__`."""
        raise NotImplementedError

    def preprocess(self, docs: list[Document]):
        """The featurizer's output for `docs` (without labels); the remembered one when `docs`
        is the list given to `remember`."""
        if self._memo is not None and self._memo[0] is docs:
            return self._memo[1]
        return self.featurizer.features(docs, with_labels=False)

    def remember(self, docs: list[Document]) -> None:
        """Featurize `docs` once and reuse the features whenever this same list is predicted
        again (training scores the same dev list after every evaluation)."""
        self._memo = (docs, self.featurizer.features(docs, with_labels=False))

    def pipe(self, inputs: Iterable, batch_size: int | None = None, buffer_size: int | None = None,
             progress: bool = False, thresholds: dict | None = None) -> Iterator[Document]:
        """Stream predictions for an iterable of texts or `Document`s, in input order, with
        bounded memory: `buffer_size` inputs (default 16 batches, at least 256) are read,
        predicted in length-sorted batches of `batch_size` windows, and yielded before the next
        are read. `progress`: a bar counting texts (texts/s); `thresholds` as in `__call__`."""
        kw = {"thresholds": thresholds} if thresholds else {}
        if thresholds:
            self.decoding_spec(thresholds)  # refuse unknown names before reading anything
        bs = batch_size or self.batch_size
        buf = self.buffer_size(bs, buffer_size)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(desc="predict", unit="text")
        saved, self.batch_size = self.batch_size, bs
        try:
            chunk: list[Document] = []
            for x in inputs:
                chunk.append(self._input(x))
                if len(chunk) >= buf:
                    yield from self._chunk(chunk, bar, kw)
                    chunk = []
            if chunk:
                yield from self._chunk(chunk, bar, kw)
        finally:
            self.batch_size = saved
            if bar is not None:
                bar.close()

    def buffer_size(self, batch_size: int | None = None, buffer_size: int | None = None) -> int:
        """How many inputs `pipe` reads and predicts at a time (default: 16 batches, at least 256)."""
        return max(1, buffer_size or max(16 * (batch_size or self.batch_size), 256))

    def _chunk(self, chunk: list[Document], bar, kw: dict) -> Iterator[Document]:
        out = self.predict(chunk, **kw)
        if bar is not None:
            bar.update(len(chunk))
        yield from out

    def batches(self, feats: list[dict], progress: bool = False) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        """Yield (feature indices, the backend's inputs as numpy arrays) over length-sorted
        batches of `batch_size` (little padding)."""
        order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
        groups: Iterable = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if progress:
            from tqdm.auto import tqdm

            groups = tqdm(groups, desc="predict", unit="batch")
        for idx in groups:
            yield idx, {k: v.numpy() for k, v in self.featurizer.collate([feats[i] for i in idx]).items()}


def pipeline_for(model, tokenizer, device: str | None = None, batch_size: int = 64, precision: str | None = None,
                 backend="torch"):
    """The pipeline class the model's task needs, around an in-memory model."""
    from lingshu.tasks import task_of

    return task_of(model.spec).pipeline_class(model, tokenizer, device, batch_size, precision, backend)


def load_pipeline(path: str | Path, device: str | None = None, batch_size: int = 64, precision: str | None = None,
                  backend: str | None = None, threads: int | None = None):
    """A trained lingshu model directory -> its task's pipeline. `backend`: "torch" (a model
    `lingshu train` wrote), "onnx" (a folder `lingshu export onnx` wrote); None: the one the
    folder holds. `threads`: CPU threads per forward pass (see `lingshu.load`)."""
    from transformers.utils import logging as hf_logging

    from lingshu.inference.onnx import OnnxBackend, exported_model, is_exported
    from lingshu.modeling.backbone import load_tokenizer
    from lingshu.modeling.model import load_model

    hf_logging.disable_progress_bar()  # "Loading weights" bars on every load are noise here
    exported = is_exported(path)
    backend = backend or ("onnx" if exported else "torch")
    if backend == "onnx":
        if not exported:
            raise ValueError(f"{path} is not an ONNX export; make one with `lingshu export onnx {path} OUT`, "
                             "then load OUT")
        dev = pick_device(device)
        return pipeline_for(exported_model(path), load_tokenizer(str(path)), "cpu", batch_size, "fp32",
                            OnnxBackend(path, device=dev.type, threads=threads))
    if exported:
        raise ValueError(f"{path} is an ONNX export: it holds no torch weights (load it with backend='onnx', "
                         "or load the model directory it was exported from)")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    return pipeline_for(load_model(str(path)), load_tokenizer(str(path)), device, batch_size, precision, backend)
