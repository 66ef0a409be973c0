"""`LingshuModel`: any HF encoder + task heads, saved and loaded the save_pretrained way.

The encoder's own config.json is the model's config; the task lives in one extra field,
`config.lingshu` = {"task", "decoder", "labels", "max_seq_length", "stride", …}, so
`AutoConfig.from_pretrained(dir)` still reads it and `lingshu.load(dir)` needs nothing else.

Tasks (`config.lingshu["task"]`):
- ``ner``: one head, ``head`` (softmax / CRF over BIOS tags, or GlobalPointer spans);
- ``re``: ``span_classifier``, ``entity_type_classifier``, ``spo_pattern_classifier`` (see
  lingshu.modeling.re_heads); the SPO schema is stored as ``config.lingshu["patterns"]``;
  with ``decoder: gplinker`` (task=re-gplinker) instead ``entity_classifier`` (typed mention
  spans), ``head_classifier`` and ``tail_classifier`` (per pattern, subject-start x object-start
  and subject-end x object-end unit pairs; a triple needs both above 0), GPLinker-style;
- ``pair``: ``classifier`` over the first token ([CLS] q1 [SEP] q2 [SEP]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from lingshu.modeling.heads import GlobalPointer, TagHead, multilabel_ce
from lingshu.modeling.re_heads import (
    EntityTypeClassifier,
    SpoPatternClassifier,
    decode_triples,
    pair_tensors,
    span_vectors,
)
from lingshu.schema import bios_tags

DECODERS = ("softmax", "crf", "globalpointer")
TASKS = ("ner", "re", "pair")
RE_DECODERS = ("span-type-pattern", "gplinker")


@dataclass
class LingshuOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class LingshuModel(PreTrainedModel):
    """An encoder with the heads of one task (module docstring).

    Token-level heads (NER, RE) read one vector per unit (character), gathered from the
    encoder's tokens by `unit_index`; see lingshu.text.align.
    """

    config_class = PretrainedConfig  # any encoder's config; AutoConfig picks the class
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    def __init__(self, config: PretrainedConfig, backbone: nn.Module | None = None):
        super().__init__(config)
        spec = config.lingshu
        self.backbone = backbone if backbone is not None else AutoModel.from_config(config)
        if getattr(self.backbone, "pooler", None) is not None:
            self.backbone.pooler = None  # token tasks never use it; saves a matmul per step
        hidden = config.hidden_size
        dropout = float(spec.get("dropout", 0.1))
        self.task = spec.get("task", "ner")
        self.decoder = spec.get("decoder")
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if self.task == "re" and self.decoder not in RE_DECODERS:
            raise ValueError(f"unknown relation decoder {self.decoder!r}; choose one of {RE_DECODERS}")
        if self.task == "re" and self.decoder == "gplinker":
            hs, n_pat = int(spec.get("head_size", 64)), len(spec["patterns"])
            self.entity_classifier = GlobalPointer(hidden, len(spec["labels"]), hs, dropout)
            self.head_classifier = GlobalPointer(hidden, n_pat, hs, dropout, positions=False, spans_only=False)
            self.tail_classifier = GlobalPointer(hidden, n_pat, hs, dropout, positions=False, spans_only=False)
        elif self.task == "re":
            self.span_classifier = GlobalPointer(hidden, 1, int(spec.get("head_size", 64)), dropout)
            self.entity_type_classifier = EntityTypeClassifier(hidden, len(spec["labels"]), dropout)
            self.spo_pattern_classifier = SpoPatternClassifier(hidden, len(spec["patterns"]), dropout)
        elif self.task == "pair":
            self.classifier_dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(hidden, len(spec["labels"]))
        elif self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; choose one of {DECODERS}")
        elif self.decoder == "globalpointer":
            self.head = GlobalPointer(hidden, len(spec["labels"]), int(spec.get("head_size", 64)), dropout)
        else:
            self.head = TagHead(hidden, len(bios_tags(spec["labels"])), self.decoder == "crf", dropout)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        # only the heads' modules come here: the encoder (a PreTrainedModel) is initialised by its
        # own class, or keeps the checkpoint's weights
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(0.0, std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):  # the relation head's distance buckets
            module.weight.data.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()

    @torch.no_grad()
    def init_priors(self, features: list[dict]) -> dict:
        """Start the task head's output biases at the training data's log label priors.

        A fresh head with zero biases predicts uniform labels, while most units are `O` (most
        spans are not entities). With Adam a bias moves about one learning rate per step, so
        learning the prior through the bias takes thousands of steps; the encoder, with millions
        of weights moving together, learns it first, by mapping every token to the same vector.
        On a pretrained encoder (multilingual-e5-small at 2e-4) that collapse costs a third of an
        epoch, or the whole run with a fast head (benchmarks/RESULTS.md). Starting at the prior
        removes the reason for it. Returns what was set, for the log.
        """
        spec = self.spec
        if self.task == "pair":
            counts = torch.zeros(len(spec["labels"]))
            for f in features:
                counts[int(f["label"])] += 1
            self.classifier.bias.copy_(torch.log((counts + 1) / (counts.sum() + len(counts))))
            return {"classifier.bias": "log label frequencies"}
        if self.task != "ner":
            return {}
        if self.decoder == "globalpointer":
            n_types = len(spec["labels"])
            pos = torch.zeros(n_types)
            cand = 0
            for f in features:
                n = len(f["unit_index"])
                cand += n * (n + 1) // 2
                for _, _, t in f["spans"]:
                    pos[t] += 1
            logit = torch.log((pos + 1) / max(cand, 1))  # per type: P(span is an entity of type t)
            bias = self.head.bias.bias
            bias[0::2] = logit  # start and end halves: the span logit adds (start + end) / 2
            bias[1::2] = logit
            return {"head.bias.bias": f"log span priors ({float(logit.min()):.1f} .. {float(logit.max()):.1f})"}
        counts = torch.zeros(self.head.proj.out_features)
        for f in features:
            for t in f["labels"]:
                counts[t] += 1
        self.head.proj.bias.copy_(torch.log((counts + 1) / (counts.sum() + len(counts))))
        return {"head.proj.bias": "log tag frequencies"}

    @property
    def spec(self) -> dict:
        return self.config.lingshu

    def pattern_weights(self, device) -> torch.Tensor:
        """Per-pattern weight of a relation-bearing pair (config.lingshu["pattern_pos_weight"]).

        Read from the config, not kept as a buffer: transformers allocates non-persistent buffers
        empty when it loads a model, and a reloaded model must train on as it was configured.
        """
        w = self.spec.get("pattern_pos_weight") or [1.0] * len(self.spec["patterns"])
        return torch.tensor(w, dtype=torch.float, device=device)

    def units(self, input_ids, attention_mask, unit_index, position_ids=None, seq_lens=None):
        if seq_lens is not None:  # one packed row: unit_index points into it
            hidden = self.backbone(input_ids=input_ids, position_ids=position_ids,
                                   **packed_attention(self.config, seq_lens)).last_hidden_state
            return hidden[0][unit_index]
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        idx = unit_index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        return torch.gather(hidden, 1, idx)

    def forward(self, input_ids, unit_index=None, unit_mask=None, attention_mask=None, labels=None, spans=None,
                position_ids=None, seq_lens=None, token_type_ids=None, mentions=None, mention_types=None,
                pairs=None, pair_labels=None, heads=None, tails=None, **_):
        if self.task == "pair":
            return self._pair_forward(input_ids, attention_mask, token_type_ids, labels)
        units = self.units(input_ids, attention_mask, unit_index, position_ids, seq_lens)
        if self.task == "re" and self.decoder not in RE_DECODERS:
            raise ValueError(f"unknown relation decoder {self.decoder!r}; choose one of {RE_DECODERS}")
        if self.task == "re" and self.decoder == "gplinker":
            return self._gplinker_forward(units, unit_mask.bool(), spans, heads, tails)
        if self.task == "re":
            return self._re_forward(units, unit_mask.bool(), spans, mentions, mention_types, pairs, pair_labels)
        mask = unit_mask.bool()
        if self.decoder == "globalpointer":
            logits = self.head(units, mask)
            loss = GlobalPointer.loss(logits, spans) if spans is not None else None
        else:
            logits = self.head(units)
            loss = self.head.loss(logits, labels, mask) if labels is not None else None
        return LingshuOutput(loss=loss, logits=logits)

    def _pair_forward(self, input_ids, attention_mask, token_type_ids, labels):
        kw = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        first = self.backbone(**kw).last_hidden_state[:, 0]
        logits = self.classifier(self.classifier_dropout(first)).float()
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return LingshuOutput(loss=loss, logits=logits)

    def _re_forward(self, units, mask, spans, mentions, mention_types, pairs, pair_labels):
        """Training: all three losses on gold mentions and their pairs (teacher forcing)."""
        span_logits = self.span_classifier(units, mask)
        if spans is None:
            return LingshuOutput(logits=span_logits)
        spec = self.spec
        bce = nn.functional.binary_cross_entropy_with_logits
        loss = float(spec.get("span_loss_weight", 1.0)) * GlobalPointer.loss(span_logits, spans)
        valid = mentions[..., 0] >= 0
        if valid.any():
            vectors = span_vectors(units, mentions)
            type_logits = self.entity_type_classifier(vectors)
            loss = loss + float(spec.get("type_loss_weight", 1.0)) * bce(type_logits[valid], mention_types[valid].float())
            pvalid = pairs[..., 0] >= 0
            if pvalid.any():
                subj, obj, dist = pair_tensors(mentions, pairs, vectors)
                pl, target = self.spo_pattern_classifier(subj, obj, dist)[pvalid], pair_labels[pvalid].bool()
                weights = self.pattern_weights(pl.device)
                if spec.get("pattern_loss", "multilabel-ce") == "bce":
                    pair_loss = bce(pl, target.float(), pos_weight=weights)
                else:
                    # few pairs carry a relation and some predicates are rare: a pair with a
                    # relation weighs the weight of its (rarest) pattern, a pair without one 1
                    w = torch.where(target, weights, torch.zeros_like(pl)).amax(-1)
                    w = torch.where(target.any(-1), w, torch.ones_like(w))
                    pair_loss = (multilabel_ce(pl, target) * w).sum() / w.sum()
                loss = loss + float(spec.get("pattern_loss_weight", 1.0)) * pair_loss
        return LingshuOutput(loss=loss, logits=span_logits)

    def _gplinker_forward(self, units, mask, spans, heads, tails):
        """Typed mention spans, and per pattern subject-start x object-start and subject-end x
        object-end token pairs, each a multi-label cross-entropy over all unit pairs."""
        ent = self.entity_classifier(units, mask)
        if spans is None:
            return LingshuOutput(logits=ent)
        loss = GlobalPointer.loss(ent, spans)
        loss = loss + GlobalPointer.loss(self.head_classifier(units, mask), heads)
        loss = loss + GlobalPointer.loss(self.tail_classifier(units, mask), tails)
        return LingshuOutput(loss=loss, logits=ent)

    @staticmethod
    def top_spans(scores: torch.Tensor, threshold: float, cap: int) -> list[tuple[int, int, float]]:
        """(L, L) span scores -> the at most `cap` best (i, j, score) above `threshold`, sorted by
        position; selected on the device, then one transfer (no per-span synchronisation)."""
        flat = scores.reshape(-1)
        k = min(cap, int((flat > threshold).sum()))
        if k == 0:
            return []
        vals, idx = flat.topk(k)
        n = scores.shape[-1]
        return sorted((i // n, i % n, v) for i, v in zip(idx.tolist(), vals.tolist()))

    @staticmethod
    def all_pairs(n: int) -> list[tuple[int, int]]:
        return [(a, c) for a in range(n) for c in range(n) if a != c]

    def _gplinker_extract(self, units, mask):
        spec = self.spec
        types, patterns = spec["labels"], [tuple(p) for p in spec["patterns"]]
        ent = self.entity_classifier(units, mask).float()
        hd = self.head_classifier(units, mask).float()
        tl = self.tail_classifier(units, mask).float()
        thr, cap = float(spec.get("mention_threshold", 0.0)), int(spec.get("max_mentions", 48))
        best, best_type = ent.max(1)  # (B, L, L): a span's best type and its score
        out = []
        for b in range(ent.shape[0]):
            spans = self.top_spans(best[b], thr, cap)
            if spans:
                ii = torch.tensor([i for i, _, _ in spans], device=ent.device)
                jj = torch.tensor([j for _, j, _ in spans], device=ent.device)
                above = (ent[b][:, ii, jj] > thr).T.cpu().tolist()  # (mentions, types)
                top = best_type[b][ii, jj].tolist()
            mlist = [(i, j, sc, {types[t] for t, on in enumerate(above[m]) if on}, types[top[m]], None)
                     for m, (i, j, sc) in enumerate(spans)]
            pairs = self.all_pairs(len(mlist))
            if pairs:
                ix = torch.tensor([(mlist[a][0], mlist[c][0], mlist[a][1], mlist[c][1]) for a, c in pairs],
                                  device=hd.device)
                logit = torch.minimum(hd[b][:, ix[:, 0], ix[:, 1]], tl[b][:, ix[:, 2], ix[:, 3]]).T  # (pairs, patterns)
                probs = torch.sigmoid(logit).cpu()
            else:
                probs = torch.zeros(0, len(patterns))
            out.append((mlist, decode_triples([m[3] for m in mlist], pairs, probs, patterns,
                                              float(spec.get("pattern_threshold", 0.5)))))
        return out

    @torch.no_grad()
    def extract_relations(self, input_ids, unit_index, unit_mask, attention_mask=None, position_ids=None,
                          seq_lens=None, **_):
        """Inference for task "re": per window, (mentions, triples).

        mentions: [(start_unit, end_unit, span_score, {types}, best_type, type_probs)];
        triples: [(subject index, object index, pattern index, probability)], schema-constrained.
        """
        spec = self.spec
        types, patterns = spec["labels"], [tuple(p) for p in spec["patterns"]]
        units = self.units(input_ids, attention_mask, unit_index, position_ids, seq_lens)
        mask = unit_mask.bool()
        if self.decoder == "gplinker":
            return self._gplinker_extract(units, mask)
        span_logits = self.span_classifier(units, mask)[:, 0].float()
        thr, cap = float(spec.get("mention_threshold", 0.0)), int(spec.get("max_mentions", 48))
        found = [self.top_spans(span_logits[b], thr, cap) for b in range(span_logits.shape[0])]
        m = max(1, max(len(f) for f in found))
        ment = torch.full((len(found), m, 2), -1, dtype=torch.long, device=units.device)
        for b, f in enumerate(found):
            if f:
                ment[b, : len(f)] = torch.tensor([(i, j) for i, j, _ in f], device=units.device)
        vectors = span_vectors(units, ment)
        type_probs = torch.sigmoid(self.entity_type_classifier(vectors))
        tthr = float(spec.get("type_threshold", 0.5))
        out = []
        pair_lists = [self.all_pairs(len(f)) for f in found]
        p = max(1, max(len(x) for x in pair_lists))
        pairs = torch.full((len(found), p, 2), -1, dtype=torch.long, device=units.device)
        for b, pl in enumerate(pair_lists):
            if pl:
                pairs[b, : len(pl)] = torch.tensor(pl, device=units.device)
        subj, obj, dist = pair_tensors(ment, pairs, vectors)
        probs = torch.sigmoid(self.spo_pattern_classifier(subj, obj, dist)).cpu()
        type_probs = type_probs.cpu()
        for b, f in enumerate(found):
            mlist = []
            for k, (i, j, sc) in enumerate(f):
                tp = type_probs[b, k]
                best = int(tp.argmax())
                ts = {types[t] for t in (tp >= tthr).nonzero().flatten().tolist()} | {types[best]}
                mlist.append((i, j, sc, ts, types[best], tp))
            triples = decode_triples([x[3] for x in mlist], pair_lists[b], probs[b, : len(pair_lists[b])],
                                     patterns, float(spec.get("pattern_threshold", 0.5)))
            out.append((mlist, triples))
        return out

    @torch.no_grad()
    def decode(self, logits: torch.Tensor, unit_mask: torch.Tensor):
        """Logits -> per window a list of (start_unit, end_unit, type_index, score)."""
        labels = self.spec["labels"]
        if self.decoder == "globalpointer":
            return [[(i, j, labels[t], s) for i, j, t, s in row] for row in GlobalPointer.decode(logits)]
        from lingshu.text.tags import bios_to_spans

        tags = bios_tags(labels)
        paths = self.head.decode(logits, unit_mask.bool())
        return [[(s, e, t, None) for s, e, t in bios_to_spans([tags[i] for i in p])] for p in paths]

    def decode_tags(self, logits: torch.Tensor, unit_mask: torch.Tensor) -> list[list[str]]:
        tags = bios_tags(self.spec["labels"])
        return [[tags[i] for i in p] for p in self.head.decode(logits, unit_mask.bool())]


def packed_attention(config, seq_lens: torch.Tensor) -> dict:
    """Attention arguments for sequences packed into one row (padding-free batches).

    With flash-attention 2 (CUDA), transformers' varlen kernels take cumulative sequence
    lengths and never look across sequences. Any other implementation gets an explicit
    block-diagonal mask (and, for ModernBERT's sliding layers, the same blocks cut to the local
    window), which is exact but costs O(N^2) memory: a CPU fallback and a correctness check.
    """
    if config._attn_implementation == "flash_attention_2":
        cu = torch.nn.functional.pad(seq_lens.cumsum(0), (1, 0)).to(torch.int32)
        m = int(seq_lens.max())
        return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": m, "max_length_k": m}
    seg = torch.repeat_interleave(torch.arange(len(seq_lens), device=seq_lens.device), seq_lens)
    block = (seg[:, None] == seg[None, :])[None, None]
    if "sliding_attention" in (getattr(config, "layer_types", None) or []):
        pos = torch.arange(len(seg), device=seg.device)
        band = (pos[:, None] - pos[None, :]).abs() <= config.sliding_window
        return {"attention_mask": {"full_attention": block, "sliding_attention": block & band[None, None]}}
    return {"attention_mask": block}


def load_model(path: str) -> LingshuModel:
    """Load a model directory written by lingshu (config.json with a `lingshu` field)."""
    config = AutoConfig.from_pretrained(path)
    if not hasattr(config, "lingshu"):
        raise ValueError(f"{path}/config.json has no 'lingshu' field: not a lingshu task model "
                         "(an encoder checkpoint is passed as model.name_or_path to `lingshu train`)")
    return LingshuModel.from_pretrained(path, config=config)
