"""Sentence pairs -> `[CLS] text [SEP] text_pair [SEP]` features for a pair classifier."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lingshu.logs import quiet_tokenizer_length_warning
from lingshu.schema import Document


@dataclass
class PairFeatureStats:
    pairs: int = 0
    truncated: int = 0  # pairs longer than max_seq_length, cut (longest text first)
    unlabelled: int = 0

    def summary(self) -> str:
        s = f"{self.pairs} pairs"
        if self.truncated:
            s += f", {self.truncated} truncated to max_seq_length"
        if self.unlabelled:
            s += f", {self.unlabelled} without a label"
        return s


class PairFeaturizer:
    """Tokenizes (text, text_pair) with the tokenizer's own pair template."""

    def __init__(self, tokenizer, labels: list[str], max_seq_length: int = 128, token_type_ids: bool = True):
        self.tok = tokenizer
        self.labels = list(labels)
        self.label_index = {t: i for i, t in enumerate(self.labels)}
        self.max_seq_length = max_seq_length
        self.token_type_ids = token_type_ids  # BERT-style encoders have segment embeddings; ModernBERT has none
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def features(self, docs: list[Document], with_labels: bool = True):
        bad = [d for d in docs if d.text_pair is None]
        if bad:
            where = bad[0].source or bad[0].id or bad[0].text[:20]
            raise ValueError(f"{len(bad)} records have no second text (text_pair), e.g. {where}: "
                             "a pair model needs query1/query2 or text1/text2 records")
        st = PairFeatureStats(pairs=len(docs))
        with quiet_tokenizer_length_warning():
            enc = self.tok([d.text for d in docs], [d.text_pair for d in docs], return_token_type_ids=True)
            ids, tti = list(enc["input_ids"]), list(enc["token_type_ids"])
            long = [i for i, x in enumerate(ids) if len(x) > self.max_seq_length]
            if long:  # only the pairs that do not fit are tokenized again, cut longest text first
                cut = self.tok([docs[i].text for i in long], [docs[i].text_pair for i in long],
                               truncation="longest_first", max_length=self.max_seq_length, return_token_type_ids=True)
                for j, i in enumerate(long):
                    ids[i], tti[i] = cut["input_ids"][j], cut["token_type_ids"][j]
        st.truncated = len(long)
        feats = []
        for i, d in enumerate(docs):
            f = {"input_ids": ids[i]}
            if self.token_type_ids:
                f["token_type_ids"] = tti[i]
            if with_labels:
                if d.label is None:
                    st.unlabelled += 1
                    f["label"] = -100
                elif d.label not in self.label_index:
                    raise ValueError(f"{d.source or d.id}: label {d.label!r} is not one of the model's labels "
                                     f"{self.labels}")
                else:
                    f["label"] = self.label_index[d.label]
            feats.append(f)
        return feats, st

    def train_dataset(self, feats: list[dict]):
        return feats

    def collate(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        n, t = len(batch), max(len(f["input_ids"]) for f in batch)
        ids = torch.full((n, t), self.pad, dtype=torch.long)
        mask = torch.zeros((n, t), dtype=torch.long)
        tti = torch.zeros((n, t), dtype=torch.long)
        for i, f in enumerate(batch):
            k = len(f["input_ids"])
            ids[i, :k] = torch.tensor(f["input_ids"])
            mask[i, :k] = 1
            if "token_type_ids" in f:
                tti[i, :k] = torch.tensor(f["token_type_ids"])
        out = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in batch[0]:
            out["token_type_ids"] = tti
        if "label" in batch[0]:
            out["labels"] = torch.tensor([f["label"] for f in batch], dtype=torch.long)
        return out
