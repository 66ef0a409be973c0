"""Strict NER metrics: span-level micro P/R/F1 on exact (start, end, type), per type.

Scheme: a predicted entity counts as correct only when its start, end (character offsets) and
type all equal a gold entity's; micro-averaged over all entities of all documents (the
CLUENER2020 and CBLUE CMeEE leaderboards' rule). For tag decoders we add seqeval's strict
classification report, computed on IOBES tags derived from the same entities.
"""

from __future__ import annotations

from collections import Counter

from lingshu.schema import Document


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "support": n_gold, "predicted": n_pred}


def span_metrics(gold: list[Document], pred: list[Document]) -> dict:
    """Micro and per-type strict span P/R/F1. Documents are paired by position."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold documents but {len(pred)} predictions")
    tp, ng, np_ = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        gk = {e.key for e in g.entities}
        pk = {e.key for e in p.entities}
        for k in gk:
            ng[k[2]] += 1
        for k in pk:
            np_[k[2]] += 1
        for k in gk & pk:
            tp[k[2]] += 1
    types = sorted(set(ng) | set(np_))
    return {
        "scheme": "strict span match on (start, end, type), micro-averaged",
        "micro": prf(sum(tp.values()), sum(np_.values()), sum(ng.values())),
        "per_type": {t: prf(tp[t], np_[t], ng[t]) for t in types},
        "documents": len(gold),
    }


def format_table(report: dict, key: str = "per_type", title: str = "type") -> str:
    """The per-type table, then the micro row."""
    rows = [(t, m) for t, m in report[key].items()] + [("micro", report["micro"])]
    w = max(8, max(len(t) for t, _ in rows) + 1)
    out = [f"{title:<{w}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8} {'predicted':>9}"]
    for t, m in rows:
        if t == "micro":
            out.append("-" * len(out[0]))
        out.append(f"{t:<{w}} {m['precision']:>9.4f} {m['recall']:>9.4f} {m['f1']:>9.4f} "
                   f"{m['support']:>8d} {m['predicted']:>9d}")
    return "\n".join(out)


def seqeval_report(gold: list[Document], pred: list[Document], tokenizer) -> str:
    """seqeval's strict (IOBES) classification report over per-character tags.

    Nested gold entities cannot be tags; as in training, the longer one is kept.
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOBES

    from lingshu.text.align import encode_texts, entities_to_units
    from lingshu.text.tags import bios_to_iobes, spans_to_bios

    encs = encode_texts(tokenizer, [d.text for d in gold])
    yt, yp = [], []
    for g, p, e in zip(gold, pred, encs):
        gs, _ = entities_to_units(g.entities, e)
        ps, _ = entities_to_units(p.entities, e)
        yt.append(bios_to_iobes(spans_to_bios(e.n_units, gs)[0]))
        yp.append(bios_to_iobes(spans_to_bios(e.n_units, ps)[0]))
    return classification_report(yt, yp, mode="strict", scheme=IOBES, digits=4, zero_division=0)
