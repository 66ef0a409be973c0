"""Character <-> token alignment and long-text windows, for any HF fast tokenizer.

Every text is fed to the tokenizer one character per "word" (`is_split_into_words=True`), so no
token ever spans two characters and every entity boundary is representable, whatever the
tokenizer: WordPiece (bert-base-chinese), SentencePiece (XLM-R; its lone `▁` token is never a
head, so its overlapping offset does no harm) or BPE. Characters that produce no token
(spaces, zero-width characters the tokenizer drops) are skipped; characters that become [UNK]
keep their own token, so predictions always map back to exact offsets of the original text.

The models label *units*: one unit per character that has a token, represented by its last
token (for `▁ 患` that is `患`). Heads (softmax, CRF, GlobalPointer) run over units, so a CRF
sees a contiguous sequence and a span (i, j) of units is a span of characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from lingshu.logs import quiet_tokenizer_length_warning
from lingshu.schema import Entity


@dataclass
class EncodedText:
    """One text, tokenized without special tokens.

    Attributes:
        input_ids: token ids.
        unit_char: for each unit, the index of its character in the original text.
        unit_first: for each unit, its first token index.
        unit_last: for each unit, its last token index (the head the models read).
    """

    input_ids: list[int]
    unit_char: list[int]
    unit_first: list[int]
    unit_last: list[int]

    @property
    def n_units(self) -> int:
        return len(self.unit_char)

    def char_to_unit(self) -> dict[int, int]:
        return {c: u for u, c in enumerate(self.unit_char)}


@dataclass
class Window:
    """A slice [u0, u1) of a text's units that fits in the model's max_seq_length."""

    doc_index: int
    u0: int
    u1: int
    is_first: bool
    is_last: bool


def lone_prefix_id(tokenizer) -> int | None:
    """The id of SentencePiece's word-boundary piece `▁` standing alone, or None (WordPiece, BPE)."""
    tid = tokenizer.convert_tokens_to_ids("\u2581")
    return None if tid is None or tid == tokenizer.unk_token_id else int(tid)


def encode_texts(tokenizer, texts: list[str], batch_size: int = 2048, drop_lone_prefix: bool = False
                 ) -> list[EncodedText]:
    """Tokenize texts character by character and record the unit <-> character maps.

    `drop_lone_prefix`: a SentencePiece tokenizer (XLM-R) fed one character per word starts most
    characters with a lone `▁` piece (`▁ 患`): about 45% of all tokens, which no head reads. With
    this on, a lone `▁` that is followed by another piece of the same character is left out, so
    the character is just `患`, as inside a word of running text. A character whose only piece is
    `▁` keeps it, so every character keeps its unit and the alignment stays exact.
    """
    prefix = lone_prefix_id(tokenizer) if drop_lone_prefix else None
    out: list[EncodedText] = []
    for b in range(0, len(texts), batch_size):
        chunk = [list(t) for t in texts[b : b + batch_size]]
        # an empty word list is rejected by the tokenizer; a text of only spaces has no units
        safe = [c if c else [" "] for c in chunk]
        with quiet_tokenizer_length_warning():  # we cut windows ourselves
            enc = tokenizer(safe, is_split_into_words=True, add_special_tokens=False)
        for i in range(len(chunk)):
            ids = enc["input_ids"][i] if chunk[i] else []
            word_ids = enc.word_ids(i) if chunk[i] else []
            if prefix is not None and ids:
                keep = [t for t in range(len(ids)) if not (
                    ids[t] == prefix and word_ids[t] is not None and t + 1 < len(ids)
                    and word_ids[t + 1] == word_ids[t] and (t == 0 or word_ids[t - 1] != word_ids[t]))]
                ids, word_ids = [ids[t] for t in keep], [word_ids[t] for t in keep]
            unit_char: list[int] = []
            unit_first: list[int] = []
            unit_last: list[int] = []
            prev = None
            for t, w in enumerate(word_ids):
                if w is None:
                    continue
                if w != prev:
                    unit_char.append(w)
                    unit_first.append(t)
                    unit_last.append(t)
                    prev = w
                else:
                    unit_last[-1] = t
            out.append(EncodedText(list(ids), unit_char, unit_first, unit_last))
    return out


def make_windows(doc_index: int, enc: EncodedText, max_tokens: int, stride: int) -> list[Window]:
    """Cut a text into windows of at most `max_tokens` tokens that overlap by `stride` units.

    Windows never split a character's tokens. An entity of at most `stride` characters is
    wholly inside, and away from the cut edges of, at least one window.
    """
    n = enc.n_units
    if n == 0:
        return [Window(doc_index, 0, 0, True, True)]
    if enc.unit_last[-1] + 1 <= max_tokens:
        return [Window(doc_index, 0, n, True, True)]
    windows = []
    u0 = 0
    while True:
        u1 = u0
        while u1 < n and enc.unit_last[u1] - enc.unit_first[u0] + 1 <= max_tokens:
            u1 += 1
        if u1 == u0:  # a single character longer than the window: take it alone
            u1 = u0 + 1
        windows.append(Window(doc_index, u0, u1, u0 == 0, u1 == n))
        if u1 >= n:
            return windows
        u0 = max(u1 - stride, u0 + 1)


def entities_to_units(
    entities: list[Entity], enc: EncodedText
) -> tuple[list[tuple[int, int, str]], list[Entity]]:
    """Map entities to inclusive unit spans (us, ue, type).

    Returns the spans and the entities that cannot be represented (a boundary character that
    has no token, e.g. an entity that starts on a space).
    """
    c2u = enc.char_to_unit()
    spans, lost = [], []
    for e in entities:
        us, ue = c2u.get(e.start), c2u.get(e.end - 1)
        if us is None or ue is None or ue < us:
            lost.append(e)
        else:
            spans.append((us, ue, e.type))
    return spans, lost


def units_to_entity(text: str, enc: EncodedText, us: int, ue: int, type_: str, score=None) -> Entity:
    """Inclusive unit span -> Entity in character offsets of the original text."""
    s, e = enc.unit_char[us], enc.unit_char[ue] + 1
    return Entity(s, e, type_, text[s:e], score)


def merge_window_spans(
    per_window: list[tuple[Window, list[tuple[int, int, str, float]]]], n_units: int, nested: bool
) -> list[tuple[int, int, str, float]]:
    """Merge unit spans (absolute unit offsets) predicted in the windows of one text.

    A span touching a window's cut edge may be cut short. If it reaches back past the
    neighbour's start and the neighbour has a span of the same type starting exactly at its own
    cut edge, the two are stitched into one (so entities longer than the overlap survive);
    otherwise it is dropped, because the overlapping neighbour sees it whole. Spans are then
    ranked by their distance to their window's edges and added greedily: duplicates are
    removed and, for flat decoders, a span overlapping an already kept one is dropped.
    """
    if len(per_window) == 1:
        return sorted(set(per_window[0][1]))
    per_window = sorted(per_window, key=lambda x: x[0].u0)
    far = float(n_units)  # stitched spans are seen by two windows: rank them first
    cands: list[tuple[float, tuple[int, int, str, float]]] = []
    open_spans: list[tuple[int, int, str, float]] = []  # touching the previous window's right cut
    for w, spans in per_window:
        nxt_open = []
        for us, ue, t, score in spans:
            left_cut = us == w.u0 and not w.is_first
            right_cut = ue == w.u1 - 1 and not w.is_last
            if left_cut:
                prev = [p for p in open_spans if p[2] == t and p[0] <= w.u0 <= p[1]]
                if not prev:
                    continue
                p = min(prev, key=lambda x: x[0])
                sc = None if score is None or p[3] is None else min(score, p[3])
                us, score = p[0], sc
                if right_cut:
                    nxt_open.append((us, ue, t, score))
                else:
                    cands.append((far, (us, ue, t, score)))
                continue
            if right_cut:
                nxt_open.append((us, ue, t, score))
                continue
            cands.append((min(us - w.u0, w.u1 - 1 - ue), (us, ue, t, score)))
        open_spans = nxt_open
    cands.sort(key=lambda x: -x[0])
    kept: list[tuple[int, int, str, float]] = []
    seen = set()
    for _, (us, ue, t, score) in cands:
        if (us, ue, t) in seen:
            continue
        if not nested and any(not (ue < k[0] or us > k[1]) for k in kept):
            continue
        seen.add((us, ue, t))
        kept.append((us, ue, t, score))
    return sorted(kept, key=lambda x: (x[0], x[1], x[2]))
