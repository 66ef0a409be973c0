"""Sentence-pair classification ([CLS] text1 [SEP] text2 [SEP] -> label), e.g. KUAKE-QQR.
Task config: pair.

    PairModel     encoder + `classifier` over the first token
    PairPipeline  nlp(text1, text2) -> Document with `label` and `label_scores`
    PairTask      labels from the data, accuracy and macro-F1 per label
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lingshu.inference.pipeline import Pipeline
from lingshu.modeling.model import LingshuModel, LingshuOutput
from lingshu.modeling.spec import ModelSpec
from lingshu.schema import Document
from lingshu.tasks.base import Task, register

log = __import__("logging").getLogger("lingshu")


class PairModel(LingshuModel):
    """`classifier` over [CLS] (default) or, with `pooler`, over the encoder's pooler output
    (dense + tanh over [CLS], as BertForSequenceClassification reads it)."""

    @property
    def reads_pooler(self) -> bool:
        return self.spec.pooler

    def build_heads(self, hidden: int) -> None:
        if self.spec.pooler and getattr(self.backbone, "pooler", None) is None:
            raise ValueError(f"task.pooler=true, but this encoder ({self.config.model_type}) has no pooler; "
                             "leave task.pooler=false to classify [CLS]")
        self.classifier_dropout = nn.Dropout(self.dropout_p)
        self.classifier = nn.Linear(hidden, len(self.spec.labels))

    @torch.no_grad()
    def init_priors(self, features: list[dict]) -> dict:
        counts = torch.zeros(len(self.spec.labels))
        for f in features:
            counts[int(f["label"])] += 1
        self.classifier.bias.copy_(self.log_priors(counts))
        return {"classifier.bias": "log label frequencies"}

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, **_):
        kw = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        out = self.backbone(**kw)
        first = out.pooler_output if self.spec.pooler else out.last_hidden_state[:, 0]
        logits = self.classifier(self.classifier_dropout(first)).float()
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return LingshuOutput(loss=loss, logits=logits)


class PairPipeline(Pipeline):
    """Sentence-pair classification: `nlp(text1, text2) -> Document` with `label`, `label_scores`.

    Example:
        >>> nlp = lingshu.load("runs/qqr")
        >>> d = nlp("糖尿病吃什么", "糖尿病的饮食")
        >>> d.label, d.label_scores
    """

    def __call__(self, text, text_pair=None, thresholds: dict | None = None):
        """nlp(text1, text2) -> a `Document`; nlp([(text1, text2), ...]) -> a list."""
        if isinstance(text, str):
            if text_pair is None:
                raise TypeError("a pair model takes two texts: nlp(text1, text2)")
            return self.predict([Document(text, text_pair=text_pair)], thresholds=thresholds)[0]
        return self.predict([self.as_document(x) for x in text], thresholds=thresholds)

    def as_document(self, x) -> Document:
        """A `Document` with `text_pair`, or a (text1, text2) tuple."""
        if isinstance(x, Document):
            return x
        if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(t, str) for t in x):
            return Document(x[0], text_pair=x[1])
        raise TypeError(f"a pair model takes (text1, text2) pairs or Documents with text_pair, got {x!r:.60}")

    @torch.no_grad()
    def predict(self, docs: list[Document], progress: bool = False, thresholds: dict | None = None) -> list[Document]:
        self.decoding_spec(thresholds)  # a pair model has none: refuses any
        if not docs:
            return []
        feats, _ = self.preprocess(docs)
        labels = self.labels
        out: list = [None] * len(docs)
        for idx, inputs in self.batches(feats, progress):
            logits = self.backend.run("logits", inputs)["logits"]
            e = np.exp(logits - logits.max(-1, keepdims=True))
            for i, p in zip(idx, e / e.sum(-1, keepdims=True)):
                d = docs[i]
                scores = {t: round(float(x), 4) for t, x in zip(labels, p)}
                out[i] = Document(d.text, id=d.id, meta=d.meta, source=d.source, text_pair=d.text_pair,
                                  label=labels[int(p.argmax())], label_scores=scores)
        return out


class PairTask(Task):
    name = "pair"
    labels_noun = "class labels"
    usage_example = 'doc = nlp("糖尿病吃什么", "糖尿病的饮食")\nprint(doc.label, doc.label_scores)'
    main_metric = "accuracy"
    output_layouts = ("pair",)
    eval_layouts = ("pair",)
    input_layouts = ("pair",)  # two texts per record: no other layout holds the second
    noun = "label"
    curve = {"metric": "eval_accuracy", "name": "dev_accuracy.png", "ylabel": "dev accuracy"}
    config_keys = ("dropout", "pooler")
    keeps_pooler = True  # read by training: load a checkpoint's pooler along with its encoder

    def train_documents(self, cfg, docs: list) -> list:
        n = sum(d.label is None for d in docs)
        if n:
            log.warning("%s: %d pairs without a label are left out of training", cfg.data.train, n)
        return [d for d in docs if d.label is not None]

    def labels(self, cfg, train_docs: list) -> dict:
        given = list(cfg.task.labels) if cfg.task.get("labels") else None
        labels = given or sorted({d.label for d in train_docs if d.label is not None})
        if len(labels) < 2:
            raise SystemExit(f"{cfg.data.train}: a pair classifier needs at least 2 labels, found {labels} "
                             "(records need text1/text2 or query1/query2 and a label)")
        return {"labels": labels}

    def finish_spec(self, model, spec: ModelSpec) -> ModelSpec:
        # segment ids only where the encoder has segment embeddings (not ModernBERT)
        return spec.replace(token_type_ids=int(getattr(model.config, "type_vocab_size", 0) or 0) > 1)

    def featurizer(self, spec: ModelSpec, tokenizer, padding_free: bool = False, cfg=None):
        from lingshu.text.pair_features import PairFeaturizer

        return PairFeaturizer(tokenizer, spec.labels, spec.max_seq_length,
                              token_type_ids=spec.token_type_ids)

    def model_class(self, spec: ModelSpec):
        return PairModel

    pipeline_class = PairPipeline

    def metrics(self, gold: list, pred: list) -> dict:
        from lingshu.training.metrics import pair_metrics

        return pair_metrics(gold, pred)

    def eval_metrics(self, report: dict, prefix: str = "eval") -> dict[str, float]:
        return {f"{prefix}_accuracy": report["accuracy"], f"{prefix}_macro_f1": report["macro_f1"]}

    def format_report(self, report: dict) -> str:
        from lingshu.training.metrics import format_table

        t = format_table(report, "per_label", "label")
        return t + f"\naccuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}"

    def eval_allowed_labels(self, labels: list[str], strict: bool = False, patterns=None):
        # a gold label outside the model's (KUAKE-QQR dev's "NA") is reported and its record skipped
        return set(labels)

    def prediction_warning(self, report: dict) -> str | None:
        from lingshu.training.health import single_label_warning

        return single_label_warning(report)

    def has_gold(self, docs: list) -> bool:
        return any(d.label is not None for d in docs)

    def count(self, doc) -> int:
        return int(doc.label is not None)


register(PairTask())
