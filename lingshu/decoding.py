"""Decoding on numpy arrays: what turns a model's logits into spans, tags and triples.

Models return tensors only (lingshu.tasks.*: forward and the RE stages); everything
data-dependent happens here, after the forward, on numpy: CRF Viterbi, span thresholding, the
top-k choice of mentions and schema-constrained triple decoding. Any backend that produces the
same arrays (torch today, an exported graph later) decodes the same way.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf for very negative x: 1 / inf = 0, as wanted
        return 1.0 / (1.0 + np.exp(-x))


def viterbi(emissions: np.ndarray, start: np.ndarray, end: np.ndarray, transitions: np.ndarray) -> list[int]:
    """The best tag path of one sequence under a linear-chain CRF.

    emissions (L, T) for the L real units; start/end (T,) and transitions (T, T) (from tag i to
    tag j at [i, j]) as pytorch-crf's `CRF` stores them. Ties go to the lower tag index.
    """
    n = len(emissions)
    if n == 0:
        return []
    score = start + emissions[0]
    back = np.empty((n - 1, emissions.shape[1]), dtype=np.int64)
    for t in range(1, n):
        cand = score[:, None] + transitions + emissions[t][None, :]  # (prev, next)
        back[t - 1] = cand.argmax(0)
        score = cand.max(0)
    best = int((score + end).argmax())
    path = [best]
    for t in range(n - 2, -1, -1):
        best = int(back[t, best])
        path.append(best)
    return path[::-1]


FORBIDDEN = -1e9  # a transition a well-formed path never takes (finite: no inf - inf)


def bios_constraints(tags: list[str]) -> dict:
    """The well-formed BIOS paths as CRF arrays (0 allowed, FORBIDDEN not): `I-x` only right
    after `B-x` or `I-x`, and `B-x` always followed by `I-x` (a one-unit entity is `S-x`), so a
    path never starts with `I-x` nor ends with `B-x`. Viterbi with these over a softmax's log
    probabilities gives the most probable path that reads as spans without repair."""
    n = len(tags)
    role = [t.split("-", 1)[0] for t in tags]
    typ = [t.split("-", 1)[1] if "-" in t else None for t in tags]
    start = np.array([FORBIDDEN if r == "I" else 0.0 for r in role], dtype=np.float32)
    end = np.array([FORBIDDEN if r == "B" else 0.0 for r in role], dtype=np.float32)
    trans = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        for j in range(n):
            inside = role[j] == "I"
            if role[i] == "B" and not (inside and typ[j] == typ[i]):
                trans[i, j] = FORBIDDEN  # an open B-x continues as I-x
            elif inside and not (role[i] in ("B", "I") and typ[i] == typ[j]):
                trans[i, j] = FORBIDDEN  # I-x continues an x entity
    return {"start": start, "end": end, "transitions": trans}


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def tag_paths(emissions: np.ndarray, lengths: np.ndarray, crf: dict | None = None) -> list[list[int]]:
    """(B, L, T) emissions and (B,) real lengths -> one tag path per window: argmax per unit, or
    Viterbi with `crf` = {"start", "end", "transitions"}."""
    if crf is None:
        best = emissions.argmax(-1)
        return [best[b, : int(n)].tolist() for b, n in enumerate(lengths)]
    return [viterbi(emissions[b, : int(n)], crf["start"], crf["end"], crf["transitions"]) for b, n in enumerate(lengths)]


def spans_above(logits: np.ndarray, threshold: float = 0.0) -> list[list[tuple[int, int, int, float]]]:
    """(B, T, L, L) span logits -> per window [(start, end, type, score)] of every entry above
    `threshold`, in (type, start, end) order."""
    out: list[list[tuple[int, int, int, float]]] = [[] for _ in range(logits.shape[0])]
    for b, t, i, j in zip(*np.nonzero(logits > threshold)):
        out[b].append((int(i), int(j), int(t), float(logits[b, t, i, j])))
    return out


def top_spans(scores: np.ndarray, threshold: float, cap: int) -> list[tuple[int, int, float]]:
    """(L, L) span scores -> the at most `cap` best (i, j, score) above `threshold`, sorted by
    position."""
    flat = scores.reshape(-1)
    above = np.flatnonzero(flat > threshold)
    if len(above) == 0:
        return []
    if len(above) > cap:
        above = above[np.argsort(-flat[above], kind="stable")[:cap]]
    n = scores.shape[-1]
    return sorted((int(k // n), int(k % n), float(flat[k])) for k in above)


def all_pairs(n: int) -> list[tuple[int, int]]:
    """Every ordered pair of distinct indices below n."""
    return [(a, c) for a in range(n) for c in range(n) if a != c]


def decode_triples(
    mention_types: list[set[str]],
    pairs: list[tuple[int, int]],
    pattern_probs: np.ndarray,
    patterns: list[tuple[str, str, str]],
    threshold: float = 0.5,
) -> list[tuple[int, int, int, float]]:
    """Schema-constrained decoding for one window.

    Args:
        mention_types: for each predicted mention, the types the type head gave it.
        pairs: ordered (subject index, object index) pairs, aligned with `pattern_probs` rows.
        pattern_probs: (len(pairs), len(patterns)) probabilities.
        patterns: the schema, (subject_type, predicate, object_type) per column.
        threshold: a pattern holds when its probability is at least this.

    Returns (subject index, object index, pattern index, probability) for every pattern that is
    above the threshold and whose subject and object types are among the mentions' types. A
    pattern outside the schema cannot be emitted: only schema columns exist.
    """
    out = []
    if not pairs:
        return out
    probs = np.asarray(pattern_probs)
    for p, k in np.argwhere(probs >= threshold):
        si, oi = pairs[p]
        st, _, ot = patterns[k]
        if st in mention_types[si] and ot in mention_types[oi]:
            out.append((si, oi, int(k), float(probs[p, k])))
    return out
