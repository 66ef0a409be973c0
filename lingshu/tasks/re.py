"""Joint entity + relation (SPO triple) extraction, e.g. CMeIE. Task configs: re (the three-head
model, decoder span-type-pattern) and re-gplinker (decoder gplinker).

    SpanTypePatternModel  span_classifier (mentions), entity_type_classifier, spo_pattern_classifier
                          over (subject, object) mention pairs (lingshu.modeling.re_heads)
    GPLinkerModel         entity_classifier (typed mention spans), head_classifier and
                          tail_classifier (per pattern, subject-start x object-start and
                          subject-end x object-end unit pairs; a triple needs both above 0)
    RePipeline            nlp(text) -> Document with relations (and the mentions found)
    ReTask                the SPO schema (data.schema or the training data), strict triple F1

The SPO schema is stored as `config.lingshu["patterns"]`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torch import nn

from lingshu.decoding import all_pairs, decode_triples, sigmoid, top_spans
from lingshu.inference.pipeline import Pipeline
from lingshu.modeling.heads import GlobalPointer, multilabel_ce
from lingshu.modeling.model import LingshuModel, LingshuOutput
from lingshu.modeling.spec import ModelSpec
from lingshu.modeling.re_heads import EntityTypeClassifier, SpoPatternClassifier, pair_tensors, span_vectors
from lingshu.schema import Document
from lingshu.tasks.base import Task, register

log = __import__("logging").getLogger("lingshu")

THREE_HEAD, GPLINKER = "span-type-pattern", "gplinker"
DECODERS = (THREE_HEAD, GPLINKER)


class ReModel(LingshuModel):
    """What both relation models share: the schema, the thresholds of decoding, and `decode`
    (numpy outputs of the inference stages -> per window (mentions, triples)).

    mentions: [(start_unit, end_unit, span_score, {types}, best_type, type_probs)];
    triples: [(subject index, object index, pattern index, probability)], schema-constrained.
    """

    @property
    def patterns(self) -> list[tuple[str, str, str]]:
        return [tuple(p) for p in self.spec.patterns]

    def thresholds(self, spec: ModelSpec | None = None) -> tuple[float, int, float]:
        """(mention threshold, most mentions, pattern threshold) of `spec` (default: the model's)."""
        spec = spec or self.spec
        return spec.mention_threshold, spec.max_mentions, spec.pattern_threshold

    def decode(self, out: dict, spec: ModelSpec | None = None) -> list:
        """`spec`: the decoding settings (default: the model's own)."""
        raise NotImplementedError


class SpanTypePatternModel(ReModel):
    """Inference in two tensor stages with the mention choice between them, on numpy:
    `mention_stage` (encoder + span head), `choose_mentions`, `relation_stage` (type and
    pattern heads over the chosen mentions and their pairs), then `decode`."""

    stages = {"mentions": ("mention_stage", ("units", "span_logits")),
              "relations": ("relation_stage", ("type_logits", "pattern_logits"))}

    def build_heads(self, hidden: int) -> None:
        spec, p = self.spec, self.dropout_p
        self.span_classifier = GlobalPointer(hidden, 1, spec.head_size, p)
        self.entity_type_classifier = EntityTypeClassifier(hidden, len(spec.labels), p)
        self.spo_pattern_classifier = SpoPatternClassifier(hidden, len(spec.patterns), p)

    def pattern_weights(self, device) -> torch.Tensor:
        """Per-pattern weight of a relation-bearing pair (config.lingshu["pattern_pos_weight"]).

        Read from the config, not kept as a buffer: transformers allocates non-persistent buffers
        empty when it loads a model, and a reloaded model must train on as it was configured.
        """
        w = self.spec.pattern_pos_weight or [1.0] * len(self.spec.patterns)
        return torch.tensor(w, dtype=torch.float, device=device)

    def forward(self, input_ids, unit_index=None, unit_mask=None, attention_mask=None, spans=None,
                position_ids=None, seq_lens=None, mentions=None, mention_types=None, pairs=None, pair_labels=None,
                **_):
        """Training: all three losses on gold mentions and their pairs (teacher forcing)."""
        units = self.units(input_ids, attention_mask, unit_index, position_ids, seq_lens)
        span_logits = self.span_classifier(units, unit_mask.bool())
        if spans is None:
            return LingshuOutput(logits=span_logits)
        spec = self.spec
        bce = nn.functional.binary_cross_entropy_with_logits
        loss = spec.span_loss_weight * GlobalPointer.loss(span_logits, spans)
        valid = mentions[..., 0] >= 0
        if valid.any():
            vectors = span_vectors(units, mentions)
            type_logits = self.entity_type_classifier(vectors)
            loss = loss + spec.type_loss_weight * bce(type_logits[valid], mention_types[valid].float())
            pvalid = pairs[..., 0] >= 0
            if pvalid.any():
                subj, obj, dist = pair_tensors(mentions, pairs, vectors)
                pl, target = self.spo_pattern_classifier(subj, obj, dist)[pvalid], pair_labels[pvalid].bool()
                weights = self.pattern_weights(pl.device)
                if spec.pattern_loss == "bce":
                    pair_loss = bce(pl, target.float(), pos_weight=weights)
                else:
                    # few pairs carry a relation and some predicates are rare: a pair with a
                    # relation weighs the weight of its (rarest) pattern, a pair without one 1
                    w = torch.where(target, weights, torch.zeros_like(pl)).amax(-1)
                    w = torch.where(target.any(-1), w, torch.ones_like(w))
                    pair_loss = (multilabel_ce(pl, target) * w).sum() / w.sum()
                loss = loss + spec.pattern_loss_weight * pair_loss
        return LingshuOutput(loss=loss, logits=span_logits)

    def mention_stage(self, input_ids, unit_index, unit_mask, attention_mask=None, position_ids=None,
                      seq_lens=None, **_):
        """Inference, stage 1 (encoder + span head): (units (B, L, H), span logits (B, L, L))."""
        units = self.units(input_ids, attention_mask, unit_index, position_ids, seq_lens)
        return units, self.span_classifier(units, unit_mask.bool())[:, 0].float()

    def relation_stage(self, units, mentions, pairs):
        """Inference, stage 2 (type + pattern heads over the chosen mentions): (B, M, 2) inclusive
        unit spans and (B, P, 2) mention-index pairs, both padded with -1 -> (type logits
        (B, M, types), pattern logits (B, P, patterns))."""
        vectors = span_vectors(units, mentions)
        subj, obj, dist = pair_tensors(mentions, pairs, vectors)
        return self.entity_type_classifier(vectors), self.spo_pattern_classifier(subj, obj, dist)

    def choose_mentions(self, span_logits: np.ndarray, spec: ModelSpec | None = None):
        """Per window the best spans above the mention threshold (at most max_mentions) and all
        their ordered pairs, and both as -1-padded index arrays for `relation_stage`."""
        thr, cap, _ = self.thresholds(spec)
        found = [top_spans(span_logits[b], thr, cap) for b in range(span_logits.shape[0])]
        pair_lists = [all_pairs(len(f)) for f in found]
        ment = np.full((len(found), max(1, max(len(f) for f in found)), 2), -1, dtype=np.int64)
        pairs = np.full((len(found), max(1, max(len(x) for x in pair_lists)), 2), -1, dtype=np.int64)
        for b, (f, pl) in enumerate(zip(found, pair_lists)):
            if f:
                ment[b, : len(f)] = [(i, j) for i, j, _ in f]
            if pl:
                pairs[b, : len(pl)] = pl
        return found, pair_lists, ment, pairs

    def decode(self, out: dict, spec: ModelSpec | None = None) -> list:
        """`out`: "found" and "pair_lists" (`choose_mentions`), "type_logits", "pattern_logits"."""
        spec = spec or self.spec
        types, patterns = spec.labels, self.patterns
        _, _, pthr = self.thresholds(spec)
        tthr = spec.type_threshold
        type_probs, probs = sigmoid(out["type_logits"]), sigmoid(out["pattern_logits"])
        result = []
        for b, f in enumerate(out["found"]):
            mlist = []
            for k, (i, j, sc) in enumerate(f):
                tp = type_probs[b, k]
                best = int(tp.argmax())
                ts = {types[t] for t in np.flatnonzero(tp >= tthr)} | {types[best]}
                mlist.append((i, j, sc, ts, types[best], tp))
            pl = out["pair_lists"][b]
            result.append((mlist, decode_triples([x[3] for x in mlist], pl, probs[b, : len(pl)], patterns, pthr)))
        return result


class GPLinkerModel(ReModel):
    stages = {"links": ("link_stage", ("entity", "head", "tail"))}

    def build_heads(self, hidden: int) -> None:
        spec, p = self.spec, self.dropout_p
        hs, n_pat = spec.head_size, len(spec.patterns)
        self.entity_classifier = GlobalPointer(hidden, len(spec.labels), hs, p)
        self.head_classifier = GlobalPointer(hidden, n_pat, hs, p, positions=False, spans_only=False)
        self.tail_classifier = GlobalPointer(hidden, n_pat, hs, p, positions=False, spans_only=False)

    def forward(self, input_ids, unit_index=None, unit_mask=None, attention_mask=None, spans=None,
                position_ids=None, seq_lens=None, heads=None, tails=None, **_):
        """Typed mention spans, and per pattern subject-start x object-start and subject-end x
        object-end token pairs, each a multi-label cross-entropy over all unit pairs."""
        units = self.units(input_ids, attention_mask, unit_index, position_ids, seq_lens)
        mask = unit_mask.bool()
        ent = self.entity_classifier(units, mask)
        if spans is None:
            return LingshuOutput(logits=ent)
        loss = GlobalPointer.loss(ent, spans)
        loss = loss + GlobalPointer.loss(self.head_classifier(units, mask), heads)
        loss = loss + GlobalPointer.loss(self.tail_classifier(units, mask), tails)
        return LingshuOutput(loss=loss, logits=ent)

    def link_stage(self, input_ids, unit_index, unit_mask, attention_mask=None, position_ids=None, seq_lens=None,
                   **_):
        """Inference, one tensor stage: entity logits (B, types, L, L), head and tail logits
        (B, patterns, L, L)."""
        units = self.units(input_ids, attention_mask, unit_index, position_ids, seq_lens)
        mask = unit_mask.bool()
        return (self.entity_classifier(units, mask).float(), self.head_classifier(units, mask).float(),
                self.tail_classifier(units, mask).float())

    def decode(self, out: dict, spec: ModelSpec | None = None) -> list:
        """`out`: "entity", "head", "tail" logits (`link_stage`, as numpy)."""
        spec = spec or self.spec
        types, patterns = spec.labels, self.patterns
        thr, cap, pthr = self.thresholds(spec)
        ent, hd, tl = out["entity"], out["head"], out["tail"]
        best, best_type = ent.max(1), ent.argmax(1)  # (B, L, L): a span's best type and its score
        result = []
        for b in range(ent.shape[0]):
            spans = top_spans(best[b], thr, cap)
            ii = np.array([i for i, _, _ in spans], dtype=np.int64)
            jj = np.array([j for _, j, _ in spans], dtype=np.int64)
            above = ent[b][:, ii, jj].T > thr  # (mentions, types)
            top = best_type[b][ii, jj]
            mlist = [(i, j, sc, {types[t] for t in np.flatnonzero(above[m])}, types[int(top[m])], None)
                     for m, (i, j, sc) in enumerate(spans)]
            pairs = all_pairs(len(mlist))
            if pairs:
                ix = np.array([(mlist[a][0], mlist[c][0], mlist[a][1], mlist[c][1]) for a, c in pairs], dtype=np.int64)
                logit = np.minimum(hd[b][:, ix[:, 0], ix[:, 1]], tl[b][:, ix[:, 2], ix[:, 3]]).T  # (pairs, patterns)
                probs = sigmoid(logit)
            else:
                probs = np.zeros((0, len(patterns)), dtype=np.float32)
            result.append((mlist, decode_triples([m[3] for m in mlist], pairs, probs, patterns, pthr)))
        return result


class RePipeline(Pipeline):
    """Joint entity + relation extraction: `nlp(text) -> Document` with `relations`.

    Example:
        >>> nlp = lingshu.load("runs/cmeie")
        >>> doc = nlp("糖尿病患者常出现多饮、多尿。")
        >>> [r.key for r in doc.relations]       # (subject, predicate, object) strings
    """

    @property
    def patterns(self) -> list[tuple[str, str, str]]:
        return [tuple(p) for p in self.spec.patterns]

    threshold_keys = ("mention_threshold", "type_threshold", "pattern_threshold", "max_mentions")

    @torch.no_grad()
    def predict(self, docs: list[Document], progress: bool = False, thresholds: dict | None = None) -> list[Document]:
        """Predict mentions and triples (gold annotations, if any, are ignored)."""
        spec = self.decoding_spec(thresholds)
        if not docs:
            return []
        feats, encs, wins, _ = self.preprocess(docs)
        results: list = [None] * len(feats)
        model = self.model
        for idx, inputs in self.batches(feats, progress):
            if "mentions" in model.stages:  # two stages, the mention choice between them
                first = self.backend.run("mentions", inputs)
                found, pair_lists, ment, pairs = model.choose_mentions(first["span_logits"], spec)
                out = {"found": found, "pair_lists": pair_lists,
                       **self.backend.run("relations", {"units": first["units"], "mentions": ment, "pairs": pairs})}
            else:
                out = self.backend.run("links", inputs)
            for i, r in zip(idx, model.decode(out, spec)):
                results[i] = r
        return self.featurizer.to_re_documents(docs, encs, wins, results)


class ReTask(Task):
    name = "re"
    output_layouts = ("cmeie",)
    usage_example = 'doc = nlp("糖尿病患者常出现多饮、多尿。")\nprint([r.key for r in doc.relations])'
    eval_layouts = ("cmeie",)
    noun = "triple"
    curve = {"ylabel": "dev F1 (strict triples)"}
    config_keys = ("head_size", "pattern_loss", "dropout", "mention_threshold", "type_threshold",
                   "pattern_threshold", "max_mentions", "span_loss_weight", "type_loss_weight", "pattern_loss_weight")

    def check_spec(self, spec: ModelSpec) -> None:
        if spec.decoder not in DECODERS:
            raise ValueError(f"unknown relation decoder {spec.decoder!r}; choose one of {DECODERS}")

    def model_class(self, spec: ModelSpec):
        self.check_spec(spec)
        return GPLinkerModel if spec.decoder == GPLINKER else SpanTypePatternModel

    pipeline_class = RePipeline

    def labels(self, cfg, train_docs: list) -> dict:
        """Entity types, the SPO patterns (data.schema, else those of the training data) and
        each pattern's positive weight."""
        from lingshu.data.spo_schema import load_spo_schema

        seen = Counter((r.subject.type, r.predicate, r.object.type) for d in train_docs for r in d.relations)
        if not seen:
            raise SystemExit(f"{cfg.data.train}: no SPO triple found (expected CMeIE records with spo_list)")
        schema = cfg.data.get("schema")
        patterns = load_spo_schema(schema) if schema else sorted(seen)
        if not schema:
            log.info("no data.schema: %d SPO patterns taken from the training data", len(patterns))
        known = set(patterns)
        outside = sum(n for p, n in seen.items() if p not in known)
        if outside:
            log.warning("%d training triples have a (subject_type, predicate, object_type) outside the schema; "
                        "they are not learned", outside)
        given = list(cfg.task.labels) if cfg.task.get("labels") else None
        types = given or sorted({t for s, _, o in patterns for t in (s, o)}
                                | {e.type for d in train_docs for e in d.entities})
        # positives are few among all mention pairs and some predicates are rare: weight the
        # positive term of each pattern's loss by positive_weight * (median count / count)^balance
        counts = [max(seen.get(tuple(p), 0), 1) for p in patterns]
        med = sorted(counts)[len(counts) // 2]
        pw, bal = float(cfg.task.get("positive_weight", 1.0)), float(cfg.task.get("class_balance", 0.0))
        weights = [round(min(pw * (med / c) ** bal, 50.0), 4) for c in counts]
        return {"labels": types, "patterns": [list(p) for p in patterns], "pattern_pos_weight": weights}

    def featurizer(self, spec: ModelSpec, tokenizer, padding_free: bool = False, cfg=None):
        from lingshu.text.re_features import ReFeaturizer

        train = {} if cfg is None else {"max_pairs": int(cfg.task.get("max_pairs", 512)),
                                        "seed": int(cfg.trainer.seed)}
        return ReFeaturizer(tokenizer, spec.labels, spec.patterns, spec.max_seq_length,
                            spec.stride, padding_free=padding_free, token_pairs=spec.decoder == GPLINKER,
                            drop_lone_prefix=spec.drop_lone_prefix, **train)

    def metrics(self, gold: list, pred: list) -> dict:
        from lingshu.training.metrics import re_metrics

        return re_metrics(gold, pred)

    def eval_metrics(self, report: dict, prefix: str = "eval") -> dict[str, float]:
        return {**super().eval_metrics(report, prefix), f"{prefix}_f1_typed": report["micro_typed"]["f1"],
                f"{prefix}_mention_f1": report["mentions"]["f1"]}

    def format_report(self, report: dict) -> str:
        from lingshu.training.metrics import format_table

        t = format_table(report, "per_predicate", "predicate")
        m, ty = report["micro_typed"], report["mentions"]
        return (t + f"\nmicro, types too: P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f}"
                + f"\nmentions (string, type): P {ty['precision']:.4f} R {ty['recall']:.4f} F1 {ty['f1']:.4f}")

    def eval_allowed_labels(self, labels: list[str], strict: bool = False, patterns=None):
        return {p[1] for p in patterns} if strict else None  # strict: records with unknown predicates skipped

    def has_gold(self, docs: list) -> bool:
        return any(d.relations for d in docs)

    def count(self, doc) -> int:
        return len(doc.relations)


register(ReTask())
