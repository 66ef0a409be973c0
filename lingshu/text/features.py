"""Documents -> model features (windows of token ids with per-unit labels) and back.

One `Featurizer` serves training, evaluation and prediction, so what the model learns from and
what it is judged on go through the same alignment code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lingshu.schema import Document, Entity, bios_tags
from lingshu.text.align import (
    EncodedText,
    Window,
    encode_texts,
    entities_to_units,
    make_windows,
    merge_window_spans,
    units_to_entity,
)
from lingshu.text.tags import spans_to_bios


@dataclass
class FeatureStats:
    """What could not be represented while building features (reported, never silent)."""

    documents: int = 0
    windows: int = 0
    entities: int = 0
    unrepresentable: list[tuple[int, Entity]] = field(default_factory=list)  # (doc index, entity)
    nested_dropped: int = 0  # BIOS only: overlapping entities tags cannot express
    clipped: int = 0  # entities cut by a window edge in training windows
    # gold entities of a type outside the model's labels (task.labels narrower than the data):
    # trained as `O` (tags) or as no span (GlobalPointer), counted per type
    outside_labels: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        s = (f"{self.documents} documents -> {self.windows} windows, {self.entities} entities; "
             f"{len(self.unrepresentable)} not representable")
        if self.nested_dropped:
            s += f", {self.nested_dropped} nested entities dropped by the BIOS tag scheme"
        if self.clipped:
            s += f", {self.clipped} clipped at window edges"
        if self.outside_labels:
            by_type = ", ".join(f"{t} {n}" for t, n in sorted(self.outside_labels.items(), key=lambda x: -x[1]))
            s += (f", {sum(self.outside_labels.values())} of types outside the model's labels, trained as "
                  f"not-an-entity ({by_type})")
        return s


class Featurizer:
    """Turns documents into windows of features for one tokenizer and one label set."""

    def __init__(self, tokenizer, labels: list[str], spans: bool, max_seq_length: int = 128, stride: int = 32,
                 padding_free: bool = False, drop_lone_prefix: bool = False):
        """`spans`: label windows with typed unit spans (a span head; nested entities kept);
        else with one BIOS tag per unit (a tag head; overlapping entities cannot be tags)."""
        self.tok = tokenizer
        self.drop_lone_prefix = drop_lone_prefix  # see lingshu.text.align.encode_texts
        self.labels = list(labels)
        self.spans = bool(spans)
        self.max_seq_length = max_seq_length
        self.stride = stride
        self.padding_free = padding_free  # pack windows into one row (flash-attention varlen)
        self.tag_index = {t: i for i, t in enumerate(bios_tags(self.labels))}
        self.type_index = {t: i for i, t in enumerate(self.labels)}
        self.cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        self.sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def encode(self, docs: list[Document]) -> list[EncodedText]:
        return encode_texts(self.tok, [d.text for d in docs], drop_lone_prefix=self.drop_lone_prefix)

    def windows(self, encs: list[EncodedText]) -> list[Window]:
        body = self.max_seq_length - 2
        return [w for i, e in enumerate(encs) for w in make_windows(i, e, body, self.stride)]

    def window_inputs(self, enc: EncodedText, w: Window) -> dict:
        t0 = enc.unit_first[w.u0] if w.u1 > w.u0 else 0
        t1 = enc.unit_last[w.u1 - 1] + 1 if w.u1 > w.u0 else 0
        ids = [self.cls] + enc.input_ids[t0:t1] + [self.sep]
        unit_index = [enc.unit_last[u] - t0 + 1 for u in range(w.u0, w.u1)]
        return {"input_ids": ids, "unit_index": unit_index}

    def features(self, docs: list[Document], with_labels: bool = True):
        """Features for every window of every document, plus the encodings, windows and stats."""
        encs = self.encode(docs)
        wins = self.windows(encs)
        stats = FeatureStats(documents=len(docs), windows=len(wins))
        doc_spans = []
        for i, (d, e) in enumerate(zip(docs, encs)):
            spans, lost = entities_to_units(d.entities, e) if with_labels else ([], [])
            stats.entities += len(d.entities) if with_labels else 0
            for x in d.entities if with_labels else ():
                if x.type not in self.type_index:
                    stats.outside_labels[x.type] = stats.outside_labels.get(x.type, 0) + 1
            stats.unrepresentable += [(i, x) for x in lost]
            if with_labels and not self.spans:  # counted per text, not per window
                stats.nested_dropped += len(spans_to_bios(e.n_units, [x for x in spans if x[2] in self.type_index])[1])
            doc_spans.append(spans)
        feats = []
        for w in wins:
            f = self.window_inputs(encs[w.doc_index], w)
            if with_labels:
                spans = []
                for s, e, t in doc_spans[w.doc_index]:
                    if e < w.u0 or s >= w.u1:
                        continue
                    if s < w.u0 or e >= w.u1:
                        stats.clipped += 1
                    spans.append((max(s, w.u0) - w.u0, min(e, w.u1 - 1) - w.u0, t))
                if self.spans:
                    f["spans"] = [(s, e, self.type_index[t]) for s, e, t in spans if t in self.type_index]
                else:
                    tags, _ = spans_to_bios(w.u1 - w.u0, [x for x in spans if x[2] in self.type_index])
                    f["labels"] = [self.tag_index[t] for t in tags]
            feats.append(f)
        return feats, encs, wins, stats

    def train_dataset(self, feats: list[dict]):
        """What the Trainer iterates over (a featurizer that re-samples per epoch returns a
        dataset with `set_epoch`)."""
        return feats

    def collate(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        """Dynamic padding to the longest window in the batch (or one packed row, see `pack`)."""
        if self.padding_free:
            return self.pack(batch)
        n = len(batch)
        t = max(len(f["input_ids"]) for f in batch)
        u = max(1, max(len(f["unit_index"]) for f in batch))
        input_ids = torch.full((n, t), self.pad, dtype=torch.long)
        attention = torch.zeros((n, t), dtype=torch.long)
        unit_index = torch.zeros((n, u), dtype=torch.long)
        unit_mask = torch.zeros((n, u), dtype=torch.long)
        for i, f in enumerate(batch):
            input_ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
            attention[i, : len(f["input_ids"])] = 1
            k = len(f["unit_index"])
            unit_index[i, :k] = torch.tensor(f["unit_index"], dtype=torch.long)
            unit_mask[i, :k] = 1
        out = {"input_ids": input_ids, "attention_mask": attention, "unit_index": unit_index, "unit_mask": unit_mask}
        out.update(self._labels(batch, u))
        return out

    def pack(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        """Padding-free batch: all windows in one row with per-window position ids and lengths.

        `unit_index` then points into the packed row; labels are laid out as in `collate`.
        Ours, not transformers' DataCollatorWithFlattening: that one flattens input_ids and
        token labels only, and has no per-unit gather index or span labels to shift into the row.
        """
        n = len(batch)
        u = max(1, max(len(f["unit_index"]) for f in batch))
        lens = [len(f["input_ids"]) for f in batch]
        offsets = [0]
        for k in lens[:-1]:
            offsets.append(offsets[-1] + k)
        input_ids = torch.tensor([t for f in batch for t in f["input_ids"]], dtype=torch.long)[None]
        position_ids = torch.cat([torch.arange(k) for k in lens])[None]
        unit_index = torch.zeros((n, u), dtype=torch.long)
        unit_mask = torch.zeros((n, u), dtype=torch.long)
        for i, f in enumerate(batch):
            k = len(f["unit_index"])
            unit_index[i, :k] = torch.tensor(f["unit_index"], dtype=torch.long) + offsets[i]
            unit_mask[i, :k] = 1
        out = {"input_ids": input_ids, "position_ids": position_ids, "seq_lens": torch.tensor(lens),
               "unit_index": unit_index, "unit_mask": unit_mask}
        out.update(self._labels(batch, u))
        return out

    @staticmethod
    def _labels(batch: list[dict], u: int) -> dict[str, torch.Tensor]:
        n, out = len(batch), {}
        if "labels" in batch[0]:
            labels = torch.zeros((n, u), dtype=torch.long)
            for i, f in enumerate(batch):
                labels[i, : len(f["labels"])] = torch.tensor(f["labels"], dtype=torch.long)
            out["labels"] = labels
        if "spans" in batch[0]:
            e = max(1, max(len(f["spans"]) for f in batch))
            spans = torch.full((n, e, 3), -1, dtype=torch.long)
            for i, f in enumerate(batch):
                if f["spans"]:
                    spans[i, : len(f["spans"])] = torch.tensor(f["spans"], dtype=torch.long)
            out["spans"] = spans
        return out

    def to_documents(self, docs: list[Document], encs, wins, window_spans, nested: bool) -> list[Document]:
        """Merge per-window unit spans into entities of new `Document`s (char offsets)."""
        by_doc: dict[int, list] = {}
        for w, spans in zip(wins, window_spans):
            shifted = [(s + w.u0, e + w.u0, t, sc) for s, e, t, sc in spans]
            by_doc.setdefault(w.doc_index, []).append((w, shifted))
        out = []
        for i, d in enumerate(docs):
            merged = merge_window_spans(by_doc.get(i, []), encs[i].n_units, nested) if i in by_doc else []
            ents = [units_to_entity(d.text, encs[i], s, e, t, sc) for s, e, t, sc in merged]
            out.append(Document(d.text, ents, id=d.id, meta=d.meta, source=d.source))
        return out
