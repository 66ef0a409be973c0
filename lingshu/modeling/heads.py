"""Task heads that run over units (one vector per character, see lingshu.text.align).

- `TagHead`: BIOS token classification, softmax or CRF (pytorch-crf's `CRF` for the loss;
  decoding after the forward, on numpy: lingshu.decoding.viterbi).
- `GlobalPointer`: a span head for nested entities. For every entity type it scores each
  (start, end) pair of units with rotary-position-aware dot products; a span is predicted
  when its score is > 0 (lingshu.decoding.spans_above). We use the "efficient" variant: one shared (q, k) projection plus a
  per-type start/end bias, which has far fewer parameters than one projection per type and
  trains as well on CMeEE-sized data.
"""

from __future__ import annotations

import math

import torch
from torch import nn

NEG = -1e4  # large enough to zero a sigmoid/softmax term, small enough for bf16/fp16


class TagHead(nn.Module):
    """Per-unit tag scores with a softmax or a CRF on top."""

    def __init__(self, hidden: int, n_tags: int, crf: bool, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden, n_tags)
        self.crf = None
        if crf:
            from torchcrf import CRF

            self.crf = CRF(n_tags, batch_first=True)

    def forward(self, units: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(units)).float()

    def loss(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.crf is None:
            return nn.functional.cross_entropy(emissions[mask], tags[mask])
        # pytorch-crf wants the first step of every sequence on; an empty window has no unit
        keep = mask[:, 0]
        if not keep.any():
            return emissions.sum() * 0.0
        # the CRF's forward algorithm is a Python loop of small fp32 ops: under autocast each op
        # pays the dispatcher's cast checks for nothing, so it runs with autocast off
        with torch.autocast(emissions.device.type, enabled=False):
            return -self.crf(emissions[keep], tags[keep].clamp(min=0), mask[keep], reduction="token_mean")


def multilabel_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-label categorical cross-entropy per row: every positive class above 0, every
    negative below 0, in one softmax-like term each (so thousands of negatives do not drown a
    few positives, unlike independent sigmoids). (N, K) logits and bool targets -> (N,) losses.
    """
    logits = logits.float()
    pos = torch.where(target, -logits, torch.full_like(logits, NEG))
    neg = torch.where(target, torch.full_like(logits, NEG), logits)
    zero = torch.zeros_like(logits[:, :1])
    return torch.logsumexp(torch.cat([pos, zero], 1), 1) + torch.logsumexp(torch.cat([neg, zero], 1), 1)


def rotary(x: torch.Tensor) -> torch.Tensor:
    """Apply rotary position embeddings over dim 1 of (batch, length, dim)."""
    _, length, dim = x.shape
    pos = torch.arange(length, device=x.device, dtype=torch.float32)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim)
    ang = pos * freq  # (length, dim/2)
    # dim 1, not -1: the ONNX exporter's repeat_interleave rewrites a -1 dim in place, and the
    # traced graph shares that constant with the encoder's view(..., -1, head_dim)
    sin, cos = ang.sin().repeat_interleave(2, 1), ang.cos().repeat_interleave(2, 1)
    x = x.float()
    rot = torch.stack([-x[..., 1::2], x[..., ::2]], -1).reshape_as(x)
    return x * cos + rot * sin


class GlobalPointer(nn.Module):
    """Span scores (batch, types, units, units); entry [b, t, i, j] scores units i..j as type t."""

    def __init__(self, hidden: int, n_types: int, head_size: int = 64, dropout: float = 0.1,
                 positions: bool = True, spans_only: bool = True):
        """`positions`: rotary position embeddings on q and k (for spans, where distance matters);
        `spans_only`: score only i <= j (a span). Both off for pair heads that link the start
        (or end) of one mention to that of another, in either order (GPLinker)."""
        super().__init__()
        self.n_types, self.head_size = n_types, head_size
        self.positions, self.spans_only = positions, spans_only
        self.dropout = nn.Dropout(dropout)
        self.qk = nn.Linear(hidden, 2 * head_size)
        self.bias = nn.Linear(2 * head_size, 2 * n_types)

    def forward(self, units: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.qk(self.dropout(units))  # (B, L, 2d)
        # span scores in fp32 even under bf16 autocast: a span is predicted when its score is
        # above 0, and bf16's 8-bit mantissa would decide borderline spans by rounding
        with torch.autocast(h.device.type, enabled=False):
            h = h.float()
            q, k = h[..., ::2], h[..., 1::2]
            if self.positions:
                q, k = rotary(q), rotary(k)
            scores = torch.einsum("bid,bjd->bij", q, k) / math.sqrt(self.head_size)
            bias = self.bias(h).transpose(1, 2) / 2  # (B, 2T, L)
        logits = scores[:, None] + bias[:, ::2, :, None] + bias[:, 1::2, None, :]
        valid = mask[:, None, :, None] & mask[:, None, None, :]
        if self.spans_only:
            valid = valid & torch.ones(logits.shape[-2:], dtype=torch.bool, device=logits.device).triu()
        return logits.masked_fill(~valid, NEG)

    @staticmethod
    def loss(logits: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """Multi-label categorical cross-entropy (positives above 0, negatives below).

        `spans` is (B, E, 3) of (start, end, type) unit indices, padded with -1.
        """
        b, t, n, _ = logits.shape
        target = torch.zeros_like(logits, dtype=torch.bool)
        bi, ei = (spans[..., 0] >= 0).nonzero(as_tuple=True)
        s = spans[bi, ei]
        target[bi, s[:, 2], s[:, 0], s[:, 1]] = True
        return multilabel_ce(logits.reshape(b * t, n * n), target.reshape(b * t, n * n)).mean()
