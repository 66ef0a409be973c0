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


def _matches(pairs, keys, group: int, pred_keys=None):
    """Per group (the key's element `group`): true positives, predicted and gold counts over
    documents, comparing each prediction's set of keys (`pred_keys(doc)`, default `keys`) with
    its gold twin's (`keys(doc)`)."""
    tp, ng, np_ = Counter(), Counter(), Counter()
    for g, p in pairs:
        gk, pk = keys(g), (pred_keys or keys)(p)
        ng.update(k[group] for k in gk)
        np_.update(k[group] for k in pk)
        tp.update(k[group] for k in gk & pk)
    return tp, np_, ng


def _pairs(gold: list[Document], pred: list[Document]):
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold documents but {len(pred)} predictions")
    return list(zip(gold, pred))


def _micro(counts) -> dict[str, float]:
    tp, np_, ng = counts
    return prf(sum(tp.values()), sum(np_.values()), sum(ng.values()))


def span_metrics(gold: list[Document], pred: list[Document]) -> dict:
    """Micro and per-type strict span P/R/F1. Documents are paired by position."""
    tp, np_, ng = _matches(_pairs(gold, pred), lambda d: {e.key for e in d.entities}, 2)
    types = sorted(set(ng) | set(np_))
    return {
        "scheme": "strict span match on (start, end, type), micro-averaged",
        "micro": _micro((tp, np_, ng)),
        "per_type": {t: prf(tp[t], np_[t], ng[t]) for t in types},
        "documents": len(gold),
    }


def display_width(s: str) -> int:
    """Terminal columns of `s`: wide and full-width characters (CJK) take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def pad(s: str, width: int) -> str:
    """`s` left-aligned in `width` terminal columns (f-string padding counts characters)."""
    return s + " " * max(0, width - display_width(s))


def format_table(report: dict, key: str = "per_type", title: str = "type") -> str:
    """The per-type table, then the micro row; names padded by display width, so Chinese
    predicate names line up."""
    rows = [(t, m) for t, m in report[key].items()] + [("micro", report["micro"])]
    w = max(8, max(display_width(t) for t, _ in rows) + 1)
    out = [f"{pad(title, w)} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8} {'predicted':>9}"]
    for t, m in rows:
        if t == "micro":
            out.append("-" * len(out[0]))
        out.append(f"{pad(t, w)} {m['precision']:>9.4f} {m['recall']:>9.4f} {m['f1']:>9.4f} "
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


def re_metrics(gold: list[Document], pred: list[Document]) -> dict:
    """Strict SPO metrics, as the CMeIE leaderboard counts them, plus diagnostics.

    - ``micro``: exact (subject string, predicate, object string) triples, micro-averaged;
    - ``micro_typed``: the same, also requiring the subject and object types;
    - ``per_predicate``: ``micro`` per predicate;
    - ``mentions``: entity-level F1 of (string, type) mentions: every argument of a gold triple
      against every mention the model found (a diagnostic of the span and type heads).
    Triples are sets per text: a triple predicted twice counts once.
    """
    pairs = _pairs(gold, pred)
    tp, np_, ng = _matches(pairs, lambda d: {r.key for r in d.relations}, 1)
    typed = _matches(pairs, lambda d: {r.typed_key for r in d.relations}, 2)

    def arguments(d: Document) -> set:
        return {(a.text, a.type) for r in d.relations for a in (r.subject, r.object)}

    # gold mentions: the triples' arguments; predicted: every mention found, in a triple or not
    ment = _matches(pairs, arguments, 1, lambda d: arguments(d) | {(e.text, e.type) for e in d.entities})
    preds = sorted(set(ng) | set(np_))
    return {
        "scheme": "strict triple match on (subject, predicate, object) strings, micro-averaged",
        "micro": _micro((tp, np_, ng)),
        "micro_typed": _micro(typed),
        "per_predicate": {t: prf(tp[t], np_[t], ng[t]) for t in preds},
        "mentions": _micro(ment),
        "documents": len(gold),
    }


def pair_metrics(gold: list[Document], pred: list[Document]) -> dict:
    """Accuracy, macro-F1 and per-label P/R/F1 of sentence-pair labels (unlabelled gold skipped),
    computed by scikit-learn over the labels seen in gold or predictions."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold documents but {len(pred)} predictions")
    pairs = [(g.label, p.label) for g, p in zip(gold, pred) if g.label is not None]
    y_true, y_pred = [g for g, _ in pairs], [str(p) for _, p in pairs]
    labels = sorted(set(y_true) | set(y_pred))
    n = len(pairs)
    if n:
        P, R, F, S = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        per = {t: {"precision": float(P[i]), "recall": float(R[i]), "f1": float(F[i]), "support": int(S[i]),
                   "predicted": y_pred.count(t)} for i, t in enumerate(labels)}
        acc = float(accuracy_score(y_true, y_pred))
    else:
        per, acc = {}, 0.0
    correct = sum(g == p for g, p in zip(y_true, y_pred))
    return {
        "scheme": "accuracy and macro-F1 over labels (unweighted mean of per-label F1)",
        "accuracy": acc,
        "macro_f1": sum(m["f1"] for m in per.values()) / len(per) if per else 0.0,
        "per_label": per,
        "micro": prf(correct, n, n),  # micro P = R = F1 = accuracy, for uniform tables
        "documents": n,
        "unlabelled": len(gold) - n,
    }
