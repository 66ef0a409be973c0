"""Named entities: a softmax or CRF over BIOS tags (flat entities), or GlobalPointer spans
(nested entities, e.g. CMeEE). Task configs: ner-softmax, ner-crf, ner-globalpointer.

    NerModel     encoder + `head` (TagHead or GlobalPointer); forward -> loss and logits
    NerPipeline  nlp(text) -> Document with entities (char offsets), windows merged per text
    NerTask      labels from the data, strict span F1 per type, seqeval for tag decoders
"""

from __future__ import annotations

import numpy as np
import torch

from lingshu.decoding import bios_constraints, log_softmax, spans_above, tag_paths
from lingshu.inference.pipeline import Pipeline
from lingshu.modeling.heads import GlobalPointer, TagHead
from lingshu.modeling.model import LingshuModel, LingshuOutput
from lingshu.modeling.spec import ModelSpec
from lingshu.schema import Document, LabelSet, bios_tags
from lingshu.tasks.base import Task, register
from lingshu.text.tags import bios_to_spans

DECODERS = ("softmax", "crf", "globalpointer")
TAG_DECODINGS = ("argmax", "constrained")  # softmax: per-unit argmax, or the best well-formed BIOS path
SPAN_DECODER = "globalpointer"


class NerModel(LingshuModel):
    """Entities: `head` is a GlobalPointer (decoder globalpointer) or a TagHead over BIOS tags
    (softmax, or crf with a CRF layer)."""

    @property
    def spans(self) -> bool:
        return self.spec.decoder == SPAN_DECODER

    def build_heads(self, hidden: int) -> None:
        spec = self.spec
        NerTask.check_spec(None, spec)
        if self.spans:
            self.head = GlobalPointer(hidden, len(spec.labels), spec.head_size, self.dropout_p)
        else:
            self.head = TagHead(hidden, len(bios_tags(spec.labels)), spec.decoder == "crf", self.dropout_p)

    @torch.no_grad()
    def init_priors(self, features: list[dict]) -> dict:
        if self.spans:
            pos = torch.zeros(len(self.spec.labels))
            cand = 0
            for f in features:
                n = len(f["unit_index"])
                cand += n * (n + 1) // 2
                for _, _, t in f["spans"]:
                    pos[t] += 1
            logit = torch.log((pos + 1) / max(cand, 1))  # per type: P(span is an entity of type t)
            bias = self.head.bias.bias
            bias[0::2] = logit  # start and end halves: the span logit adds (start + end) / 2
            bias[1::2] = logit
            return {"head.bias.bias": f"log span priors ({float(logit.min()):.1f} .. {float(logit.max()):.1f})"}
        counts = torch.zeros(self.head.proj.out_features)
        for f in features:
            for t in f["labels"]:
                counts[t] += 1
        self.head.proj.bias.copy_(self.log_priors(counts))
        return {"head.proj.bias": "log tag frequencies"}

    def forward(self, input_ids, unit_index=None, unit_mask=None, attention_mask=None, labels=None, spans=None,
                position_ids=None, seq_lens=None, **_):
        units = self.units(input_ids, attention_mask, unit_index, position_ids, seq_lens)
        mask = unit_mask.bool()
        if self.spans:
            logits = self.head(units, mask)
            loss = GlobalPointer.loss(logits, spans) if spans is not None else None
        else:
            logits = self.head(units)
            loss = self.head.loss(logits, labels, mask) if labels is not None else None
        return LingshuOutput(loss=loss, logits=logits)

    def crf_arrays(self) -> dict | None:
        """The CRF's parameters as numpy arrays, for Viterbi after the forward (None: softmax
        or spans)."""
        crf = None if self.spans else self.head.crf
        if crf is None:
            return None
        return {"start": crf.start_transitions.detach().float().cpu().numpy(),
                "end": crf.end_transitions.detach().float().cpu().numpy(),
                "transitions": crf.transitions.detach().float().cpu().numpy()}


class NerPipeline(Pipeline):
    """Entity extraction with a lingshu model.

    Example:
        >>> nlp = lingshu.load("runs/cmeee-gp")
        >>> doc = nlp("患者出现发热、咳嗽。")
        >>> [(e.text, e.type) for e in doc.ents]
    """

    @property
    def threshold_keys(self) -> tuple[str, ...]:
        if self.featurizer.spans:
            return ("span_threshold",)
        return ("tag_decoding",) if self.model.crf_arrays() is None else ()

    @torch.no_grad()
    def predict(self, docs: list[Document], progress: bool = False, thresholds: dict | None = None) -> list[Document]:
        """Predict entities for documents (their gold entities, if any, are ignored)."""
        spec = self.decoding_spec(thresholds)
        if not docs:
            return []
        feats, encs, wins, _ = self.preprocess(docs)
        window_spans: list = [None] * len(feats)
        for idx, inputs in self.batches(feats, progress):
            logits = self.backend.run("logits", inputs)["logits"]
            lengths = inputs["unit_mask"].sum(1)
            for i, spans in zip(idx, self.postprocess(logits, lengths, spec.span_threshold, spec.tag_decoding)):
                window_spans[i] = spans
        return self.featurizer.to_documents(docs, encs, wins, window_spans, self.featurizer.spans)

    def postprocess(self, logits: np.ndarray, lengths: np.ndarray, threshold: float = 0.0,
                    tag_decoding: str = "argmax") -> list[list]:
        """Logits of a batch of windows -> per window [(start_unit, end_unit, type, score)]:
        spans above `threshold` (GlobalPointer), else the tag path read as BIOS spans (score
        None): CRF Viterbi, or for a softmax the per-unit argmax (`tag_decoding` "argmax") or
        the best well-formed path ("constrained")."""
        labels = self.spec.labels
        if self.featurizer.spans:
            return [[(i, j, labels[t], s) for i, j, t, s in row] for row in spans_above(logits, threshold)]
        tags = bios_tags(labels)
        crf = self.model.crf_arrays()
        if crf is None and tag_decoding == "constrained":
            crf, logits = bios_constraints(tags), log_softmax(logits.astype(np.float32))
        return [[(s, e, t, None) for s, e, t in bios_to_spans([tags[k] for k in path])]
                for path in tag_paths(logits, lengths, crf)]


class NerTask(Task):
    name = "ner"
    output_layouts = ("spans", "cluener", "cmeee", "conll")
    eval_layouts = ("cluener", "cmeee", "spans", "conll")
    config_keys = ("head_size", "dropout", "tag_decoding")

    def check_spec(self, spec: ModelSpec) -> None:
        if spec.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {spec.decoder!r}; choose one of {DECODERS}")
        if spec.tag_decoding not in TAG_DECODINGS:
            raise ValueError(f"tag_decoding={spec.tag_decoding!r}: choose one of {', '.join(TAG_DECODINGS)}")

    def labels(self, cfg, train_docs: list) -> dict:
        labels = list(cfg.task.labels) if cfg.task.get("labels") else LabelSet.from_documents(train_docs).labels
        if not labels:
            raise SystemExit(f"{cfg.data.train}: no entity found, so there are no labels to learn")
        return {"labels": labels}

    def featurizer(self, spec: ModelSpec, tokenizer, padding_free: bool = False, cfg=None):
        from lingshu.text.features import Featurizer

        return Featurizer(tokenizer, spec.labels, spec.decoder == SPAN_DECODER, spec.max_seq_length,
                          spec.stride, padding_free=padding_free,
                          drop_lone_prefix=spec.drop_lone_prefix)

    def model_class(self, spec: ModelSpec):
        self.check_spec(spec)
        return NerModel

    pipeline_class = NerPipeline

    def has_gold(self, docs: list) -> bool:
        return any(d.entities for d in docs)

    def metrics(self, gold: list, pred: list) -> dict:
        from lingshu.training.metrics import span_metrics

        return span_metrics(gold, pred)

    def extra_reports(self, gold: list, pred: list, spec: ModelSpec, tokenizer) -> dict[str, tuple[str, str]]:
        if spec.decoder == SPAN_DECODER:  # nested spans are not tags
            return {}
        from lingshu.training.metrics import seqeval_report

        return {"seqeval": ("IOBES, strict mode (seqeval)", seqeval_report(gold, pred, tokenizer))}


register(NerTask())
