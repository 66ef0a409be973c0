"""Heads for joint entity + relation (SPO) extraction, and schema-constrained decoding.

The relation model reads units (one vector per character, see lingshu.text.align) and has three
heads, named as its checkpoints name them:

- ``span_classifier``: which spans are entity mentions: a one-class `GlobalPointer`
  (every (start, end) pair of units scored; > 0 is a mention).
- ``entity_type_classifier``: the type(s) of each mention, from its boundary vectors
  (multi-label: the same string can be, say, both 疾病 and 社会学 in CMeIE).
- ``spo_pattern_classifier``: for an ordered (subject mention, object mention) pair, which of
  the schema's SPO patterns (subject_type, predicate, object_type) hold; none above the
  threshold means no relation. Multi-label, because one pair can carry two predicates.

Decoding emits a triple only when its pattern is in the schema *and* agrees with the types the
type head gave both mentions (lingshu.decoding.decode_triples, after the forward).
"""

from __future__ import annotations

import torch
from torch import nn


def span_vectors(units: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """(B, L, H) units, (B, M, 2) inclusive unit spans (padding -1) -> (B, M, 2H) [start; end]."""
    idx = spans.clamp(min=0)
    h = units.shape[-1]
    start = torch.gather(units, 1, idx[..., :1].expand(-1, -1, h))
    end = torch.gather(units, 1, idx[..., 1:].expand(-1, -1, h))
    return torch.cat([start, end], -1)


class EntityTypeClassifier(nn.Module):
    """Mention [start; end] vectors -> one logit per entity type."""

    def __init__(self, hidden: int, n_types: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(2 * hidden, hidden)
        self.act = nn.GELU()
        self.out = nn.Linear(hidden, n_types)

    def forward(self, mention_vectors: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.dense(self.dropout(mention_vectors)))).float()


class SpoPatternClassifier(nn.Module):
    """(subject, object) mention vectors -> one logit per schema pattern.

    Subject and object are projected separately (the relation is directed), added, and a
    distance bucket embedding tells near pairs from far ones.
    """

    N_BUCKETS = 16

    def __init__(self, hidden: int, n_patterns: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.subject = nn.Linear(2 * hidden, hidden)
        self.object = nn.Linear(2 * hidden, hidden, bias=False)
        self.distance = nn.Embedding(2 * self.N_BUCKETS + 1, hidden)
        self.act = nn.GELU()
        self.out = nn.Linear(hidden, n_patterns)

    @classmethod
    def bucket(cls, distance: torch.Tensor) -> torch.Tensor:
        """Signed log-spaced buckets of (object start - subject start), in [0, 2 * N_BUCKETS]."""
        mag = torch.log2(distance.abs().float() + 1).long().clamp(max=cls.N_BUCKETS)
        return torch.where(distance >= 0, mag, -mag) + cls.N_BUCKETS

    def forward(self, subj: torch.Tensor, obj: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
        z = self.subject(self.dropout(subj)) + self.object(self.dropout(obj)) + self.distance(self.bucket(distance))
        return self.out(self.act(z)).float()


def pair_tensors(mentions: torch.Tensor, pairs: torch.Tensor, vectors: torch.Tensor):
    """Gather subject/object vectors and start distances for (B, P, 2) mention-index pairs."""
    d = vectors.shape[-1]
    idx = pairs.clamp(min=0)
    subj = torch.gather(vectors, 1, idx[..., :1].expand(-1, -1, d))
    obj = torch.gather(vectors, 1, idx[..., 1:].expand(-1, -1, d))
    starts = mentions[..., 0].clamp(min=0)
    dist = torch.gather(starts, 1, idx[..., 1]) - torch.gather(starts, 1, idx[..., 0])
    return subj, obj, dist
