"""Entity-aware whole-word masking for masked-language-model pretraining.

Masks are drawn when a batch is built, never stored: every epoch sees a different masking of the
same text (RoBERTa's dynamic masking), and a pre-masked copy of the corpus is never written.

Pipeline::

    seg = Segmenter(lexicon_terms=terms)                      # lingshu.pretrain.lexicon
    examples = encode_for_mlm(tokenizer, seg, texts, max_length=128)
    collator = EntityAwareWWMCollator(tokenizer, lexicon_terms=terms, seed=42)
    batch = collator(examples[:32])   # input_ids, attention_mask, labels (-100 = not predicted)

With the HF Trainer, pass ``data_collator=collator`` and ``remove_unused_columns=False`` in the
TrainingArguments: the Trainer otherwise drops ``word_ids`` and ``entity_words`` because the
model's ``forward`` does not take them.

Strategies:

* ``"char"`` — every non-special token is chosen independently with ``mlm_probability``
  (original BERT).
* ``"wwm"`` — whole words are chosen (all their tokens together) until about
  ``mlm_probability`` of the non-special tokens of the row are chosen (Chinese BERT-wwm).
* ``"entity-wwm"`` — as ``"wwm"``, but a lexicon entity is ``entity_weight`` times as likely to be
  drawn as an ordinary word, and before masking each entity mention may be replaced by another
  lexicon term, deleted, or masked whole, each with its own probability.

Every chosen token becomes [MASK] with probability 0.8, a random non-special token with 0.1 and
stays unchanged with 0.1; its label is its id before that change. Special tokens ([CLS], [SEP],
[PAD], [MASK]) are never chosen; [UNK] is part of the text and is masked with its word.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from lingshu.logs import quiet_tokenizer_length_warning

__all__ = ["STRATEGIES", "EntityAwareWWMCollator", "encode_for_mlm"]

STRATEGIES = ("entity-wwm", "wwm", "char")



def _char_words(segmenter, text: str) -> tuple[np.ndarray, list[bool]]:
    """For each character, the index of its whole word; and which words are entities."""
    spans, is_entity = segmenter.segment(text)
    lengths = [e - s for s, e in spans]
    return np.repeat(np.arange(len(spans)), lengths), is_entity


def encode_for_mlm(tokenizer, segmenter, texts: Sequence[str], max_length: int = 128,
                   split_long: bool = True, batch_size: int = 1000) -> list[dict]:
    """Tokenize texts and attach whole-word and entity information for the masking collator.

    Words come from ``segmenter.segment`` (jieba words, with lexicon entities as whole words).
    A token belongs to the word that contains its first non-space character, read from the fast
    tokenizer's ``offset_mapping``; this holds for WordPiece, BPE (byte-level BPE puts the
    preceding space into the token's offsets) and SentencePiece (whose lone ``▁`` shares its
    offsets with the next piece, so both land in the same word).

    Args:
        tokenizer: any HF fast tokenizer (offsets are needed).
        segmenter: a :class:`lingshu.pretrain.lexicon.Segmenter`.
        texts: the texts.
        max_length: tokens per example, special tokens included.
        split_long: cut a text longer than ``max_length`` into several examples instead of
            dropping its tail (no corpus text is wasted).
        batch_size: texts per tokenizer call.

    Returns:
        One dict per example: ``input_ids`` (with special tokens), ``word_ids`` (per token, the
        index of its whole word, numbered 0, 1, ... within the example, or None for special
        tokens) and ``entity_words`` (sorted indices of the words that are lexicon entities).
        Texts that yield no token are skipped.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("encode_for_mlm needs a fast tokenizer (offset mappings)")
    out: list[dict] = []
    for b in range(0, len(texts), batch_size):
        chunk = list(texts[b:b + batch_size])
        with quiet_tokenizer_length_warning():  # long texts are split on purpose
            enc = tokenizer(chunk, add_special_tokens=True, truncation=True, max_length=max_length,
                            return_offsets_mapping=True, return_special_tokens_mask=True,
                            return_overflowing_tokens=split_long)
        sample_of = enc["overflow_to_sample_mapping"] if split_long else range(len(chunk))
        cached_t, char_word, is_entity = -1, None, None
        for k, ids in enumerate(enc["input_ids"]):
            t = sample_of[k]
            text = chunk[t]
            if t != cached_t:  # overflow pieces of one text are consecutive: segment it once
                cached_t = t
                char_word, is_entity = _char_words(segmenter, text)
            n = len(text)
            word_ids: list[int | None] = []
            renumber: dict[int, int] = {}
            entities = []
            for (s, e), special in zip(enc["offset_mapping"][k], enc["special_tokens_mask"][k]):
                if special or n == 0:
                    word_ids.append(None)
                    continue
                c = s
                while c < e - 1 and text[c].isspace():
                    c += 1
                w = int(char_word[min(c, n - 1)])
                local = renumber.get(w)
                if local is None:
                    local = renumber[w] = len(renumber)
                    if is_entity[w]:
                        entities.append(local)
                word_ids.append(local)
            if renumber:
                out.append({"input_ids": list(ids), "word_ids": word_ids, "entity_words": entities})
    return out


class EntityAwareWWMCollator:
    """Data collator for MLM with entity-aware whole-word masking, re-sampled at every call.

    Input examples are dicts with ``input_ids`` (special tokens included, not padded),
    ``word_ids`` (word index per token, None or a negative number for special tokens) and
    ``entity_words`` (indices of words that are lexicon entities), as made by
    :func:`encode_for_mlm`. ``"char"`` needs only ``input_ids``.

    Entity operations (strategy ``"entity-wwm"`` only) act on each entity mention independently,
    before masking, and are mutually exclusive: with probability ``replace_prob`` the mention is
    replaced by a random lexicon term, with ``delete_prob`` it is deleted, with
    ``entity_mask_prob`` all of its tokens are chosen for prediction.

    * A replacement is data augmentation: the sentence now contains the new term, which stays an
      entity word and is masked like any other; where its tokens are chosen, their labels are
      the new term's own ids. The original tokens cannot be the targets because the new term
      generally has a different number of tokens, so there is nothing to align them with.
    * Whole-masked mentions count towards the ``mlm_probability`` budget; other words are drawn
      only while budget remains.
    * Replacements and deletions change lengths. A row longer than the cap after replacement
      loses content tokens at its end (its trailing [SEP] is kept). The cap is ``max_length``,
      or, when None, the longest input row of the batch, so the padded shape never grows.

    Word selection: words are put in a random order by weighted sampling without replacement
    (Efraimidis–Spirakis keys ``Exp(1) / weight``; weight ``entity_weight`` for entities, 1
    otherwise) and taken in that order while at least half of the next word still fits in the
    budget ``mlm_probability × (non-special tokens of the row)``. The half-fits rule makes the
    expected number of chosen tokens equal to the budget instead of overshooting by half a word
    on average. Every row with tokens gets at least one chosen word, so no row is without a
    target (as in HF's whole-word-mask collator).

    Args:
        tokenizer: the HF tokenizer (mask, pad and special ids, vocabulary size; it also
            tokenizes replacement terms).
        mlm_probability: share of non-special tokens chosen for prediction.
        entity_weight: sampling weight of an entity word relative to an ordinary word.
        replace_prob: per entity mention, probability of replacing it by another lexicon term.
        delete_prob: per entity mention, probability of deleting it.
        entity_mask_prob: per entity mention, probability of choosing all of its tokens.
        lexicon_terms: terms to draw replacements from (needed when ``replace_prob > 0``).
        strategy: ``"entity-wwm"``, ``"wwm"`` or ``"char"``.
        seed: seed of the masking random generator; None draws one from the OS. Inside a
            DataLoader worker the generator is re-seeded from the worker's seed (which changes
            every epoch unless workers persist) and the distributed rank, so workers and ranks
            never repeat each other's masks.
        max_length: longest row allowed after entity operations (see above).
        pad_to_multiple_of: pad the batch length to a multiple of this (8 helps tensor cores).
        mask_replace_prob: share of chosen tokens replaced by [MASK].
        random_replace_prob: share of chosen tokens replaced by a random token.

    Attributes:
        stats: running counts of entity ``mentions`` seen and mentions ``replaced``,
            ``deleted`` and ``masked_whole``.
    """

    def __init__(self, tokenizer, mlm_probability: float = 0.15, entity_weight: float = 3.0,
                 replace_prob: float = 0.0, delete_prob: float = 0.0,
                 entity_mask_prob: float = 0.0, lexicon_terms: Iterable[str] | None = None,
                 strategy: str = "entity-wwm", seed: int | None = None,
                 max_length: int | None = None, pad_to_multiple_of: int | None = None,
                 mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if not 0.0 < mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
        if entity_weight <= 0:
            raise ValueError(f"entity_weight must be > 0, got {entity_weight}")
        ops = {"replace_prob": replace_prob, "delete_prob": delete_prob,
               "entity_mask_prob": entity_mask_prob}
        for name, p in ops.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if sum(ops.values()) > 1.0 + 1e-9:
            raise ValueError(f"replace_prob + delete_prob + entity_mask_prob must be <= 1 "
                             f"(the operations exclude each other), got {sum(ops.values())}")
        if strategy != "entity-wwm" and any(ops.values()):
            raise ValueError(f"entity operations need strategy='entity-wwm', got {strategy!r}")
        if mask_replace_prob < 0 or random_replace_prob < 0 or \
                mask_replace_prob + random_replace_prob > 1.0 + 1e-9:
            raise ValueError("mask_replace_prob and random_replace_prob must be >= 0 with sum <= 1")
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a mask token and a pad token for MLM")
        self.lexicon = [t for t in (lexicon_terms or ()) if t]
        if replace_prob > 0 and not self.lexicon:
            raise ValueError("replace_prob > 0 needs lexicon_terms to draw replacements from")

        self.tokenizer = tokenizer
        self.strategy = strategy
        self.mlm_probability = mlm_probability
        self.entity_weight = float(entity_weight)
        self.replace_prob = replace_prob
        self.delete_prob = delete_prob
        self.entity_mask_prob = entity_mask_prob
        self.seed = seed
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.mask_id = int(tokenizer.mask_token_id)
        self.pad_id = int(tokenizer.pad_token_id)
        special = set(tokenizer.all_special_ids)
        # [UNK] stands for a character of the text, so it belongs to its word and is masked with
        # it (as in Google's create_pretraining_data); only structural tokens are never chosen
        self.special_ids = np.array(sorted(special - {tokenizer.unk_token_id}), dtype=np.int64)
        # random replacements come from the real vocabulary: no [CLS]/[SEP]/[PAD]/[MASK]/[UNK]
        self.random_ids = np.setdiff1d(np.arange(len(tokenizer), dtype=np.int64),
                                       np.array(sorted(special), dtype=np.int64))
        # lookup table: a fancy index per row is several times cheaper than np.isin
        self._never_mask = np.zeros(max(len(tokenizer), int(self.special_ids.max(initial=0)) + 1),
                                    dtype=bool)
        self._never_mask[self.special_ids] = True
        self._term_ids: dict[str, np.ndarray] = {}  # replacement terms tokenized so far
        self._rng: np.random.Generator | None = None
        self._rng_key = None
        self.stats: Counter = Counter()

    # ------------------------------------------------------------------ random generator
    def _generator(self) -> np.random.Generator:
        """The generator for this process; re-seeded once in each DataLoader worker.

        Forked workers inherit a copy of the parent's generator, so without this every worker
        would draw the very same masks."""
        info = torch.utils.data.get_worker_info()
        key = (os.getpid(), None if info is None else info.id)
        if key != self._rng_key:
            rank = torch.distributed.get_rank() if (
                torch.distributed.is_available() and torch.distributed.is_initialized()) else 0
            worker_seed = 0 if info is None else info.seed
            if self.seed is None:
                self._rng = np.random.default_rng()
            else:
                self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, worker_seed, rank]))
            self._rng_key = key
        return self._rng

    def rng_state(self) -> dict:
        """This process's generator state (JSON-serialisable), saved with each checkpoint so that a
        resumed run draws the masks the uninterrupted one would have drawn."""
        return {"seed": self.seed, "bit_generator": self._generator().bit_generator.state}

    def set_rng_state(self, state: dict) -> None:
        """Continue from a state `rng_state` returned (in this process; workers re-seed anyway)."""
        self._generator().bit_generator.state = state["bit_generator"]

    # ------------------------------------------------------------------ inputs
    def _row(self, ex: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, word ids with -1 for special tokens, entity word indices) of one example."""
        ids = np.asarray(ex["input_ids"], dtype=np.int64).reshape(-1)
        wl = ex.get("word_ids")
        if wl is None:
            if self.strategy != "char":
                raise KeyError(f"strategy {self.strategy!r} needs 'word_ids' in every example; "
                               f"build examples with lingshu.pretrain.masking.encode_for_mlm")
            words = np.arange(len(ids), dtype=np.int64)  # each token its own "word"
        elif isinstance(wl, (np.ndarray, torch.Tensor)):
            words = np.asarray(wl, dtype=np.int64).reshape(-1).copy()
        else:
            words = np.array([-1 if w is None else w for w in wl], dtype=np.int64)
        if len(words) != len(ids):
            raise ValueError(f"word_ids has {len(words)} entries for {len(ids)} input_ids")
        # special tokens are never masked, whatever word_ids says about them
        words[self._never_mask[ids]] = -1
        ents = ex.get("entity_words")
        ents = np.zeros(0, dtype=np.int64) if ents is None else \
            np.asarray(list(ents) if isinstance(ents, (set, frozenset)) else ents, dtype=np.int64).reshape(-1)
        return ids, words, ents

    # ------------------------------------------------------------------ entity operations
    def _tokenized_terms(self, terms: list[str]) -> list[np.ndarray]:
        """Token ids of replacement terms, tokenizing each term once (lazily: tokenizing all
        116k CMeKG terms up front takes seconds, while a batch needs a few dozen)."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        for t in terms:
            if t not in self._term_ids:
                # one term at a time through the Rust tokenizer: a batch call for a few dozen
                # short terms costs more in thread-pool hand-offs than in tokenizing
                ids = backend.encode(t, add_special_tokens=False).ids if backend is not None \
                    else self.tokenizer(t, add_special_tokens=False)["input_ids"]
                self._term_ids[t] = np.asarray(ids, dtype=np.int64)
        return [self._term_ids[t] for t in terms]

    def _entity_ops(self, rows, rng: np.random.Generator):
        """Replace / delete / whole-mask entity mentions; returns new rows and forced words."""
        r_end = self.replace_prob
        d_end = r_end + self.delete_prob
        m_end = d_end + self.entity_mask_prob
        plans = []  # per row: list of (start, end, word, op)
        n_replace = 0
        for ids, words, ents in rows:
            plan = []
            if len(ents):
                has = np.zeros(int(words.max(initial=-1)) + 1, dtype=bool)
                has[words[words >= 0]] = True
                present = ents[(ents >= 0) & (ents < len(has))]
                present = present[has[present]]
                u = rng.random(len(present))
                self.stats["mentions"] += len(present)
                hit = u < m_end  # most mentions are left alone: loop only over the others
                for w, x in zip(present[hit].tolist(), u[hit].tolist()):
                    op = "replace" if x < r_end else "delete" if x < d_end else "mask"
                    pos = np.flatnonzero(words == w)
                    plan.append((int(pos[0]), int(pos[-1]) + 1, w, op))
                    n_replace += op == "replace"
            plans.append(sorted(plan))
        picks = rng.integers(len(self.lexicon), size=n_replace) if n_replace else []
        new_ids = iter(self._tokenized_terms([self.lexicon[i] for i in picks]))

        cap = self.max_length or max(len(ids) for ids, _, _ in rows)
        out, forced = [], []
        for (ids, words, ents), plan in zip(rows, plans):
            row_forced = []
            if plan:
                id_parts, word_parts, pos = [], [], 0
                for s, e, w, op in plan:
                    if op == "mask":
                        row_forced.append(w)
                        self.stats["masked_whole"] += 1
                        continue
                    id_parts.append(ids[pos:s])
                    word_parts.append(words[pos:s])
                    if op == "replace":
                        term = next(new_ids)
                        if len(term) == 0:  # a term the tokenizer drops entirely: leave as is
                            id_parts.append(ids[s:e])
                            word_parts.append(words[s:e])
                        else:
                            id_parts.append(term)
                            word_parts.append(np.full(len(term), w, dtype=np.int64))
                            self.stats["replaced"] += 1
                    else:
                        self.stats["deleted"] += 1
                    pos = e
                id_parts.append(ids[pos:])
                word_parts.append(words[pos:])
                ids, words = np.concatenate(id_parts), np.concatenate(word_parts)
            if len(ids) > cap:
                ids, words = self._truncate(ids, words, cap)
            out.append((ids, words, ents))
            forced.append(row_forced)
        return out, forced

    @staticmethod
    def _truncate(ids: np.ndarray, words: np.ndarray, cap: int):
        """Cut content tokens at the end of the row, keeping the trailing special tokens."""
        content = np.flatnonzero(words >= 0)
        tail = len(ids) - (content[-1] + 1) if len(content) else 0
        if not tail:
            return ids[:cap], words[:cap]
        return (np.concatenate([ids[:cap - tail], ids[len(ids) - tail:]]),
                np.concatenate([words[:cap - tail], words[len(words) - tail:]]))

    # ------------------------------------------------------------------ masking
    def _choose_words(self, words, valid, rows, forced, rng) -> np.ndarray:
        """Whole-word selection for the whole batch at once; returns the chosen-token mask."""
        B = words.shape[0]
        n_words = np.maximum(words.max(axis=1) + 1, 0)  # word ids are 0..n-1 per row (gaps ok)
        base = np.concatenate([[0], np.cumsum(n_words)[:-1]])
        W = int(n_words.sum())
        gw = np.where(valid, words + base[:, None], 0)  # batch-unique word ids
        counts = np.bincount(gw[valid], minlength=W)
        if W == 0:  # no row has a maskable token
            return np.zeros_like(valid)
        word_row = np.repeat(np.arange(B), n_words)

        weights = np.ones(W)
        if self.strategy == "entity-wwm" and self.entity_weight != 1.0:
            ent = [e[(e >= 0) & (e < n)] + b for (_, _, e), n, b in zip(rows, n_words, base)]
            ent = np.concatenate(ent) if ent else np.zeros(0, dtype=np.int64)
            weights[ent] = self.entity_weight
        keys = rng.exponential(size=W) / weights
        keys[counts == 0] = np.inf  # ids without tokens (gaps, deleted words) go last
        if forced is not None:
            # a forced (whole-entity) word can lie past the row's last kept token after
            # truncation: keep only the word ids the row still has
            fw = [f[(f >= 0) & (f < n)] + b for f, n, b in
                  ((np.asarray(f, dtype=np.int64), n, b) for f, n, b in zip(forced, n_words, base) if f)]
            if fw:
                fw = np.concatenate(fw)
                keys[fw[counts[fw] > 0]] = -np.inf

        order = np.lexsort((keys, word_row))
        c_sorted = counts[order]
        r_sorted = word_row[order]
        cum = np.cumsum(c_sorted)
        before = cum - c_sorted
        first = np.searchsorted(r_sorted, np.arange(B))  # where each row starts in sorted order
        before = before - before[first[r_sorted]]
        budget = self.mlm_probability * valid.sum(axis=1)
        take = before + c_sorted / 2.0 < budget[r_sorted]
        has = n_words > 0
        take[first[has]] = True  # at least one word per row with tokens
        take |= np.isneginf(keys[order])
        take &= c_sorted > 0
        chosen_word = np.zeros(W, dtype=bool)
        chosen_word[order] = take
        return valid & chosen_word[gw]

    def __call__(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        """Pad a list of examples and draw a fresh masking.

        Args:
            examples: dicts with ``input_ids``, ``word_ids`` and ``entity_words``.

        Returns:
            ``input_ids``, ``attention_mask`` and ``labels`` as int64 tensors of shape
            (batch, length); labels are -100 where no prediction is asked.
        """
        rng = self._generator()
        rows = [self._row(ex) for ex in examples]
        forced = None
        if self.strategy == "entity-wwm" and (self.replace_prob or self.delete_prob
                                              or self.entity_mask_prob):
            rows, forced = self._entity_ops(rows, rng)
        elif self.max_length:
            rows = [(*self._truncate(i, w, self.max_length), e) if len(i) > self.max_length
                    else (i, w, e) for i, w, e in rows]

        lengths = np.array([len(r[0]) for r in rows])
        L = int(lengths.max()) if len(rows) else 0
        if self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        B = len(rows)
        ids = np.full((B, L), self.pad_id, dtype=np.int64)
        words = np.full((B, L), -1, dtype=np.int64)
        for i, (r_ids, r_words, _) in enumerate(rows):
            ids[i, :len(r_ids)] = r_ids
            words[i, :len(r_words)] = r_words
        valid = words >= 0

        if self.strategy == "char":
            chosen = valid & (rng.random((B, L)) < self.mlm_probability)
        else:
            chosen = self._choose_words(words, valid, rows, forced, rng)

        labels = np.where(chosen, ids, -100)
        u = rng.random((B, L))
        # ours, not DataCollatorForLanguageModeling's 80/10/10: that one draws its own positions (we
        # choose weighted whole words and entities) and takes random tokens from the whole vocabulary,
        # [CLS]/[SEP]/[PAD]/[MASK] included
        to_mask = chosen & (u < self.mask_replace_prob)
        to_random = chosen & (u >= self.mask_replace_prob) & \
            (u < self.mask_replace_prob + self.random_replace_prob)
        inputs = ids.copy()
        inputs[to_mask] = self.mask_id
        inputs[to_random] = self.random_ids[rng.integers(len(self.random_ids), size=int(to_random.sum()))]
        attention = (np.arange(L)[None, :] < lengths[:, None]).astype(np.int64)
        return {"input_ids": torch.from_numpy(inputs), "attention_mask": torch.from_numpy(attention),
                "labels": torch.from_numpy(labels)}
