"""`ModelSpec`: what a lingshu model is, beyond its encoder, with every default in one place.

It is stored as a plain dict in the `lingshu` field of the model directory's config.json (so
`AutoConfig.from_pretrained(dir)` still reads the directory and one call loads it) and read back
with `ModelSpec.from_dict`; a field missing from an older directory takes the default below,
which is what that directory was trained with. Keys no field knows (a task registered from
outside the package may store its own) are kept in `extra` and written back unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class ModelSpec:
    task: str = "ner"  # a registered task (lingshu.tasks); directories written before tasks had names are NER
    decoder: str | None = None  # the task's head: softmax / crf / globalpointer; span-type-pattern / gplinker; cls
    labels: list[str] = field(default_factory=list)  # entity types, or class labels for pairs
    patterns: list[list[str]] | None = None  # RE: the SPO schema, (subject_type, predicate, object_type)
    pattern_pos_weight: list[float] | None = None  # RE: per-pattern weight of a relation-bearing pair
    max_seq_length: int = 128  # tokens per window, [CLS] and [SEP] included
    stride: int = 32  # units shared by neighbouring windows
    dropout: float = 0.1
    head_size: int = 64  # GlobalPointer q/k size
    drop_lone_prefix: bool = False  # SentencePiece's lone `▁` left out of char-by-char input (new models: True)
    token_type_ids: bool = True  # pairs: feed segment ids (False for encoders without segment embeddings)
    pooler: bool = False  # pairs: classify the encoder's pooler output (BertForSequenceClassification) instead of [CLS]
    train_precision: str | None = None  # "bf16" / "fp32"; None: written before lingshu stored it
    span_threshold: float = 0.0  # NER GlobalPointer: span score above which a span is an entity
    tag_decoding: str = "argmax"  # NER softmax: "argmax" per unit (stray I-x repaired into spans), or
    # "constrained": the most probable well-formed BIOS path (Viterbi over the log probabilities).
    # New models get the task config's "constrained"; "argmax" here keeps models stored before
    # the key existed decoding as they did when written.
    # RE decoding
    mention_threshold: float = 0.0  # span score above which a span is a mention
    type_threshold: float = 0.5  # probability above which a mention has a type (the best type always counts)
    pattern_threshold: float = 0.5  # probability above which an SPO pattern holds for a pair
    max_mentions: int = 48  # most mentions per window kept for pairing
    # RE training
    pattern_loss: str = "multilabel-ce"  # or "bce"
    span_loss_weight: float = 1.0
    type_loss_weight: float = 1.0
    pattern_loss_weight: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)} - {"extra"}

    @classmethod
    def from_dict(cls, d: dict | ModelSpec | None) -> ModelSpec:
        if isinstance(d, ModelSpec):
            return d
        d = dict(d or {})
        known = cls.field_names()
        kw = {k: v for k, v in d.items() if k in known and v is not None}
        return cls(**kw, extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        return {**{k: v for k, v in d.items() if v is not None}, **extra}

    def replace(self, **changes) -> ModelSpec:
        known = self.field_names()
        extra = {**self.extra, **{k: v for k, v in changes.items() if k not in known}}
        kw = {**{f: getattr(self, f) for f in known}, **{k: v for k, v in changes.items() if k in known}}
        return ModelSpec(**kw, extra=extra)
