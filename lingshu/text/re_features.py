"""Documents with SPO triples -> windows of relation-model features, and predictions back.

Two decoders read these features. ``span-type-pattern`` (the three-head model) is supervised,
per text, as follows; ``gplinker`` (token-pair heads, see lingshu.tasks.re) gets the same
mentions as typed spans and, per SPO pattern, the (subject start, object start) and (subject end,
object end) unit pairs of each located triple.

Supervision of the three-head model, per text:
- **mentions** (``span_classifier``, ``entity_type_classifier``): every occurrence of every
  argument string of a located triple is a mention, with every type that string has in the
  text's triples (a string is an entity wherever it occurs);
- **pairs** (``spo_pattern_classifier``): the located (subject, object) occurrence pair of each
  triple (lingshu.data.cmeie's placement policy) is positive for its pattern. Other occurrence
  pairs of the same two strings are left out of training: the metric compares strings, so one
  occurrence pair found is enough, and calling the others "no relation" would contradict it. All
  remaining ordered pairs of mentions in a window are negatives (at most `max_pairs` per window;
  beyond that the negatives are sampled, again every epoch: `NegativeResampler`, seeded by the
  run's seed, the epoch and the window, so a resumed run draws what the uninterrupted one did).

Windows: a text longer than `max_seq_length` is cut into windows overlapping by `stride` units
(lingshu.text.align.make_windows). A pair is classified only inside a window that holds both
mentions whole. A gold triple whose mentions never share a window cannot be learned or
predicted; `ReFeatureStats.cross_window` counts them so the loss is visible. At prediction a
mention that touches a window's cut edge (it may be part of a longer one) is dropped with its
triples; a neighbouring window, overlapping by `stride`, sees it whole. The triples of all
windows are merged by their strings and types (the highest-scoring occurrence is kept), so a
triple seen by two overlapping windows is reported once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from lingshu.data.cmeie import occurrences
from lingshu.schema import Document, Entity, Relation
from lingshu.text.align import EncodedText, Window, entities_to_units, units_to_entity
from lingshu.text.features import Featurizer


@dataclass
class ReFeatureStats:
    documents: int = 0
    windows: int = 0
    triples: int = 0
    unlocated: int = 0  # an argument string is not in the text
    outside_schema: int = 0  # (subject_type, predicate, object_type) is not a pattern, or a type is not a label
    unrepresentable: int = 0  # a mention boundary has no token
    cross_window: int = 0  # both mentions never fall whole in one window
    same_span: int = 0  # subject and object are the same characters
    mentions: int = 0
    positive_pairs: int = 0
    negative_pairs: int = 0
    negatives_dropped: int = 0  # beyond max_pairs per window

    def summary(self) -> str:
        s = (f"{self.documents} documents -> {self.windows} windows; {self.triples} triples, {self.mentions} "
             f"mention occurrences, {self.positive_pairs} positive / {self.negative_pairs} negative pairs")
        lost = [(self.unlocated, "with an argument not in the text"), (self.outside_schema, "outside the schema or task.labels"),
                (self.unrepresentable, "with a mention that has no token"),
                (self.cross_window, "whose mentions share no window (raise data.max_seq_length)"),
                (self.same_span, "whose subject and object are the same span")]
        lost = [f"{n} {why}" for n, why in lost if n]
        if lost:
            s += "; triples not learnable: " + ", ".join(lost)
        if self.negatives_dropped:
            s += f"; {self.negatives_dropped} negative pairs sampled away (task.max_pairs)"
        return s


def sample_negatives(pool: list, room: int, seed: int, epoch: int, index: int) -> list:
    """`room` of the window's negative pairs, drawn from a generator seeded by (seed, epoch, window)."""
    if len(pool) <= room:
        return list(pool)
    rng = random.Random(f"{seed}/{epoch}/{index}")
    return sorted(rng.sample(pool, room))


class NegativeResampler(torch.utils.data.Dataset):
    """Training windows whose negative pairs are drawn again every epoch (`set_epoch`, called by
    `lingshu.training.callbacks.EpochSetter`), from all of the window's negatives."""

    def __init__(self, feats: list[dict], max_pairs: int, seed: int):
        self.feats, self.max_pairs, self.seed, self.epoch = feats, max_pairs, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.feats)

    def __getitem__(self, i: int) -> dict:
        f = self.feats[i]
        if "negative_pool" not in f:  # every negative fits: nothing to draw
            return f
        k = f["positives"]
        neg = sample_negatives(f["negative_pool"], max(self.max_pairs - k, 0), self.seed, self.epoch, i)
        return {**f, "pairs": f["pairs"][:k] + neg, "pair_labels": f["pair_labels"][:k] + [[] for _ in neg]}


class ReFeaturizer(Featurizer):
    """Windows with mentions, their types and labelled mention pairs, for one schema."""

    def __init__(self, tokenizer, types: list[str], patterns: list, max_seq_length: int = 256, stride: int = 64,
                 padding_free: bool = False, max_pairs: int = 512, seed: int = 0, token_pairs: bool = False,
                 drop_lone_prefix: bool = False):
        super().__init__(tokenizer, types, True, max_seq_length, stride, padding_free, drop_lone_prefix)
        # token_pairs: GPLinker's subject/object start and end pair labels; else the three-head
        # model's mention pairs
        self.token_pairs = token_pairs
        self.patterns = [tuple(p) for p in patterns]
        self.pattern_index = {p: k for k, p in enumerate(self.patterns)}
        self.max_pairs = max_pairs
        self.seed = seed

    def _doc_labels(self, doc: Document, enc: EncodedText, st: ReFeatureStats):
        """Mentions {(us, ue): types} and pair labels {((us, ue), (us, ue)): {pattern}} in units,
        plus the occurrence pairs to leave out."""
        types: dict[str, set[str]] = {}
        for r in doc.relations:
            for arg in (r.subject, r.object):
                if arg.start >= 0:
                    types.setdefault(arg.text, set()).add(arg.type)
        for e in doc.entities:
            types.setdefault(e.text, set()).add(e.type)
        occ: dict[str, list[Entity]] = {}
        for s, ts in types.items():
            occ[s] = [Entity(i, i + len(s), t, s) for i in occurrences(doc.text, s) for t in sorted(ts)]
        mentions: dict[tuple[int, int], set[int]] = {}
        unit_of: dict[tuple[int, int], tuple[int, int]] = {}
        for ents in occ.values():
            spans, lost = entities_to_units([e for e in ents if e.type in self.type_index], enc)
            for e, (us, ue, t) in zip([x for x in ents if x.type in self.type_index and x not in lost], spans):
                mentions.setdefault((us, ue), set()).add(self.type_index[t])
                unit_of[(e.start, e.end)] = (us, ue)
        positives: dict[tuple, set[int]] = {}
        skip: set[tuple] = set()
        for r in doc.relations:
            st.triples += 1
            if not r.located:
                st.unlocated += 1
                continue
            k = self.pattern_index.get((r.subject.type, r.predicate, r.object.type))
            if k is None or r.subject.type not in self.type_index or r.object.type not in self.type_index:
                st.outside_schema += 1  # not a pattern, or a type left out of task.labels
                continue
            su, ou = unit_of.get((r.subject.start, r.subject.end)), unit_of.get((r.object.start, r.object.end))
            if su is None or ou is None:
                st.unrepresentable += 1
                continue
            if su == ou:  # subject and object are one span: no pair of two mentions expresses it
                st.same_span += 1
                continue
            positives.setdefault((su, ou), set()).add(k)
            for a in occ[r.subject.text]:
                for b in occ[r.object.text]:
                    ua, ub = unit_of.get((a.start, a.end)), unit_of.get((b.start, b.end))
                    if ua and ub:
                        skip.add((ua, ub))
        return mentions, positives, skip - set(positives)

    def features(self, docs: list[Document], with_labels: bool = True):
        encs = self.encode(docs)
        wins = self.windows(encs)
        st = ReFeatureStats(documents=len(docs), windows=len(wins))
        labels = [self._doc_labels(d, e, st) if with_labels else None for d, e in zip(docs, encs)]
        seen: dict[int, set] = {}  # doc -> positive pairs that fell whole in some window
        feats = []
        for w in wins:
            f = self.window_inputs(encs[w.doc_index], w)
            if with_labels:
                mentions, positives, skip = labels[w.doc_index]
                local = sorted(m for m in mentions if m[0] >= w.u0 and m[1] < w.u1)
                index = {m: i for i, m in enumerate(local)}
                if self.token_pairs:
                    self._gplinker_labels(f, w, local, mentions, positives, seen.setdefault(w.doc_index, set()), st)
                    feats.append(f)
                    continue
                f["spans"] = [(s - w.u0, e - w.u0, 0) for s, e in local]
                f["mentions"] = [(s - w.u0, e - w.u0) for s, e in local]
                f["mention_types"] = [sorted(mentions[m]) for m in local]
                pos, neg = [], []
                for a in local:
                    for b in local:
                        if a == b or (a, b) in skip:
                            continue
                        if (a, b) in positives:
                            pos.append((index[a], index[b], sorted(positives[(a, b)])))
                            seen.setdefault(w.doc_index, set()).add((a, b))
                        else:
                            neg.append((index[a], index[b], []))
                room = max(self.max_pairs - len(pos), 0)
                pool = [(i, j) for i, j, _ in neg]
                if len(pool) > room:
                    st.negatives_dropped += len(pool) - room
                    f["negative_pool"], f["positives"] = pool, len(pos)  # NegativeResampler draws again per epoch
                    pool = sample_negatives(pool, room, self.seed, 0, len(feats))  # epoch 0's draw
                st.mentions += len(local)  # per window: overlapping windows count a mention twice
                st.positive_pairs += len(pos)
                st.negative_pairs += len(pool)
                f["pairs"] = [(i, j) for i, j, _ in pos] + pool
                f["pair_labels"] = [ks for _, _, ks in pos] + [[] for _ in pool]
            feats.append(f)
        if with_labels:
            for i, lab in enumerate(labels):
                st.cross_window += sum(len(ks) for p, ks in lab[1].items() if p not in seen.get(i, set()))
        return feats, encs, wins, st

    @staticmethod
    def _gplinker_labels(f: dict, w: Window, local, mentions, positives, seen: set, st: ReFeatureStats) -> None:
        """Typed mention spans, and per pattern the (subject start, object start) and (subject end,
        object end) unit pairs of every triple whose mentions are both in the window."""
        f["spans"] = [(s - w.u0, e - w.u0, t) for s, e in local for t in sorted(mentions[(s, e)])]
        inside = set(local)
        heads, tails = [], []
        for (a, b), ks in positives.items():
            if a in inside and b in inside:
                seen.add((a, b))
                heads += [(a[0] - w.u0, b[0] - w.u0, k) for k in sorted(ks)]
                tails += [(a[1] - w.u0, b[1] - w.u0, k) for k in sorted(ks)]
        f["heads"], f["tails"] = heads, tails
        st.mentions += len(local)
        st.positive_pairs += len(heads)

    def train_dataset(self, feats: list[dict]) -> NegativeResampler:
        """The training windows, with negatives drawn again every epoch."""
        return NegativeResampler(feats, self.max_pairs, self.seed)

    def collate(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        out = super().collate(batch)
        if "heads" in batch[0]:
            for key in ("heads", "tails"):
                e = max(1, max(len(f[key]) for f in batch))
                t = torch.full((len(batch), e, 3), -1, dtype=torch.long)
                for i, f in enumerate(batch):
                    if f[key]:
                        t[i, : len(f[key])] = torch.tensor(f[key], dtype=torch.long)
                out[key] = t
            return out
        if "mentions" not in batch[0]:
            return out
        n, t, k = len(batch), len(self.labels), len(self.patterns)
        m = max(1, max(len(f["mentions"]) for f in batch))
        p = max(1, max(len(f["pairs"]) for f in batch))
        mentions = torch.full((n, m, 2), -1, dtype=torch.long)
        mtypes = torch.zeros((n, m, t), dtype=torch.uint8)
        pairs = torch.full((n, p, 2), -1, dtype=torch.long)
        plabels = torch.zeros((n, p, k), dtype=torch.uint8)
        for i, f in enumerate(batch):
            for j, ((s, e), ts) in enumerate(zip(f["mentions"], f["mention_types"])):
                mentions[i, j, 0], mentions[i, j, 1] = s, e
                mtypes[i, j, ts] = 1
            for j, ((a, b), ks) in enumerate(zip(f["pairs"], f["pair_labels"])):
                pairs[i, j, 0], pairs[i, j, 1] = a, b
                plabels[i, j, ks] = 1
        out.update({"mentions": mentions, "mention_types": mtypes, "pairs": pairs, "pair_labels": plabels})
        return out

    def to_re_documents(self, docs: list[Document], encs, wins: list[Window], results) -> list[Document]:
        """Merge per-window (mentions, triples) from the RE model's `extract_relations` into Documents."""
        ents: list[dict] = [{} for _ in docs]
        rels: list[dict] = [{} for _ in docs]
        for w, (mentions, triples) in zip(wins, results):
            d, enc = docs[w.doc_index], encs[w.doc_index]
            last = w.u1 - w.u0 - 1
            spans: list[Entity | None] = []
            for i, j, sc, _, best, _ in mentions:
                if (i == 0 and not w.is_first) or (j == last and not w.is_last):
                    spans.append(None)  # touches a cut edge: maybe part of a longer mention
                    continue
                e = units_to_entity(d.text, enc, i + w.u0, j + w.u0, best, sc)
                spans.append(e)
                old = ents[w.doc_index].get((e.start, e.end))
                if old is None or (e.score or 0) > (old.score or 0):
                    ents[w.doc_index][(e.start, e.end)] = e
            for si, oi, k, prob in triples:
                st, pred, ot = self.patterns[k]
                s, o = spans[si], spans[oi]
                if s is None or o is None:
                    continue
                r = Relation(Entity(s.start, s.end, st, s.text), pred, Entity(o.start, o.end, ot, o.text), score=prob)
                old = rels[w.doc_index].get(r.typed_key)
                if old is None or prob > old.score:
                    rels[w.doc_index][r.typed_key] = r
        out = []
        for d, es, rs in zip(docs, ents, rels):
            out.append(Document(d.text, sorted(es.values()), id=d.id, meta=d.meta, source=d.source,
                                relations=sorted(rs.values(), key=lambda r: (r.subject.start, r.object.start, r.predicate))))
        return out
