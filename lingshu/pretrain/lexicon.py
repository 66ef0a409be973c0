"""Medical lexicon: loading term lists, reading pickled lexicons safely, word segmentation.

The lexicon (CMeKG terms, one a line) drives two things during domain-adaptive pretraining:

* **words** — jieba segments text into whole words; lexicon and keyword terms are added to a
  private ``jieba.Tokenizer`` with a high frequency so that jieba keeps them in one piece.
* **entities** — lexicon terms found in a text by forward maximum matching over a prefix table
  (see :meth:`Segmenter.entities`). We match ourselves instead of intersecting jieba's output with
  the lexicon because jieba splits its input at every character outside
  ``[\\u4E00-\\u9FD5a-zA-Z0-9+#&._%-]`` before looking words up, so terms such as
  ``香附（制）`` or ``1 年内更换性伴侣`` (about 6% of CMeKG) could never come out whole.

:meth:`Segmenter.segment` merges the two: entity spans become words of their own and jieba words
are cut around them, so every entity is exactly one whole word — what entity-aware whole-word
masking needs.

Example::

    terms = load_lexicon("../shared/data/lexicon/cmekg_terms.txt")
    seg = Segmenter(lexicon_terms=terms)
    seg.words("患者出现发热咳嗽")      # [(0, 2), (2, 4), (4, 6), (6, 8)]
    seg.entities("患者出现发热咳嗽")   # spans of lexicon terms, e.g. [(4, 6), (6, 8)]
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable
from pathlib import Path

from lingshu.logs import quieter

__all__ = ["RestrictedUnpickler", "Segmenter", "load_lexicon", "safe_load_pickle"]


def load_lexicon(path: str | Path) -> list[str]:
    """Read a term list: one term a line, UTF-8.

    Lines are stripped; empty lines and repeated terms are dropped (the first occurrence keeps
    its place, so the order of the file is preserved). Keyword files use the same format.

    Args:
        path: the text file.

    Returns:
        The distinct terms in file order.
    """
    seen: set[str] = set()
    terms: list[str] = []
    # utf-8-sig: a BOM written by Windows editors would otherwise glue itself to the first term
    with open(path, encoding="utf-8-sig") as fh:
        for line in fh:
            term = line.strip()
            if term and term not in seen:
                seen.add(term)
                terms.append(term)
    return terms


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that loads plain data only.

    Pickle can call any importable callable while loading (``os.system`` through ``__reduce__``),
    so a pickle from the internet is code, not data. dict, list, tuple, str, int, float, bool
    and None have their own opcodes and need no global at all (bytes too from protocol 3 on;
    older protocols spell bytes as a call to ``_codecs.encode``, which is refused); ``set`` and
    ``frozenset`` need ``builtins.set`` / ``builtins.frozenset`` under protocols 0-3, so exactly
    those two are allowed. Every other global is refused before it is imported, so it is never
    called.
    """

    # protocols 0-2 written by Python 3 name the module "__builtin__" (Python 2 spelling)
    _ALLOWED = frozenset({("builtins", "set"), ("builtins", "frozenset"),
                          ("__builtin__", "set"), ("__builtin__", "frozenset")})

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return set if name == "set" else frozenset
        raise pickle.UnpicklingError(
            f"refused to load global {module}.{name}: only plain data (dict, list, tuple, str, "
            f"numbers, set) may be unpickled")


def safe_load_pickle(path: str | Path):
    """Load a pickle that holds plain data, refusing anything that could run code.

    Args:
        path: the pickle file.

    Returns:
        The unpickled object (dicts, lists, tuples, sets, strings, numbers, None).

    Raises:
        pickle.UnpicklingError: the pickle references a global other than set/frozenset; the
            message names it.
    """
    with open(path, "rb") as fh:
        return RestrictedUnpickler(fh).load()


def _quiet_jieba():
    """jieba logs 'Building prefix dict ...' at DEBUG through its own stderr handler on every
    initialisation; quiet it while we build, leaving what the user configured afterwards."""
    import jieba

    return quieter(jieba.default_logger, logging.WARNING)


class Segmenter:
    """jieba word segmentation with user dictionaries, plus lexicon entity matching.

    The segmenter owns its ``jieba.Tokenizer``: the global ``jieba`` dictionary, shared with
    whatever else runs in the process, is never touched.

    Args:
        lexicon_terms: medical terms. They are added to jieba (kept whole) and matched by
            :meth:`entities`.
        keyword_terms: extra words to keep whole (added to jieba) that are not entities.
        term_freq: the jieba frequency given to added terms (a term already in jieba's dictionary
            with a higher frequency keeps its own). jieba keeps a word whole when its frequency
            beats the product of its pieces' probabilities; 100,000 is above that threshold for
            practically every split, and above most ordinary words, so a lexicon term wins an
            overlap with a general word — the preference we want for medical text.
        min_entity_len: terms shorter than this (in characters) are never reported as entities.
        hmm: let jieba guess words missing from its dictionary with its HMM (its default).

    Attributes:
        init_seconds: wall time spent building the jieba dictionary and the entity table.
    """

    def __init__(self, lexicon_terms: Iterable[str] | None = None,
                 keyword_terms: Iterable[str] | None = None, term_freq: int = 100_000,
                 min_entity_len: int = 2, hmm: bool = True):
        import time

        import jieba

        t0 = time.perf_counter()
        self.hmm = hmm
        self.min_entity_len = min_entity_len
        lexicon = [t.strip() for t in (lexicon_terms or ()) if t and t.strip()]
        keywords = [t.strip() for t in (keyword_terms or ()) if t and t.strip()]

        self.tokenizer = jieba.Tokenizer()
        with _quiet_jieba():
            self.tokenizer.initialize()
        freq = self.tokenizer.FREQ
        # add_word adds each term's frequency to jieba's total; 116k pseudo-counts of 1e5 would
        # multiply the total ~200-fold and make every extra word on a path costlier, i.e. bias
        # the segmentation of ordinary text towards long words. The added counts are a device to
        # keep terms whole, not corpus statistics, so the total is put back afterwards.
        total = self.tokenizer.total
        for term in (*lexicon, *keywords):
            self.tokenizer.add_word(term, max(freq.get(term, 0), term_freq))
        self.tokenizer.total = total

        # Prefix table for entity matching: every prefix of every term maps to whether it is
        # itself a term. Matching walks forward while the prefix exists, so it stops after one
        # or two lookups at most positions.
        self._prefix: dict[str, bool] = {}
        for term in lexicon:
            for k in range(1, len(term)):
                self._prefix.setdefault(term[:k], False)
            self._prefix[term] = len(term) >= min_entity_len
        self.n_terms = len(lexicon)
        self.init_seconds = time.perf_counter() - t0

    def words(self, text: str) -> list[tuple[int, int]]:
        """Segment a text into words.

        Args:
            text: the text.

        Returns:
            ``[(start, end), ...]`` character spans (end exclusive), in order, that tile the text
            exactly: the first starts at 0, each starts where the previous ended and the last
            ends at ``len(text)`` (whitespace and punctuation come out as words of their own).
        """
        spans = []
        pos = 0
        for w in self.tokenizer.cut(text, HMM=self.hmm):
            spans.append((pos, pos + len(w)))
            pos += len(w)
        # jieba yields every character of its input; if a version ever dropped some, spans
        # would silently drift from the text, which would corrupt every token->word map.
        if pos != len(text):
            raise RuntimeError(f"jieba returned {pos} characters for a text of {len(text)}")
        return spans

    def entities(self, text: str) -> list[tuple[int, int]]:
        """Find lexicon terms in a text by forward maximum matching.

        Scanning left to right, the longest term starting at the current position is taken and
        the scan resumes after it; where no term starts, the scan moves one character on. Spans
        are therefore non-overlapping, and a longer term (高血压病) wins over a term it contains
        (高血压).

        Args:
            text: the text.

        Returns:
            ``[(start, end), ...]`` character spans (end exclusive) of lexicon terms, in order.
        """
        prefix = self._prefix
        spans = []
        n = len(text)
        i = 0
        while i < n:
            best = 0
            j = i + 1
            while j <= n:
                is_term = prefix.get(text[i:j])
                if is_term is None:
                    break
                if is_term:
                    best = j
                j += 1
            if best:
                spans.append((i, best))
                i = best
            else:
                i += 1
        return spans

    def segment(self, text: str) -> tuple[list[tuple[int, int]], list[bool]]:
        """Whole words for masking: entity spans as single words, jieba words around them.

        A jieba word that overlaps an entity is cut at the entity's edges; the parts outside it
        remain words. The result still tiles the text.

        Args:
            text: the text.

        Returns:
            ``(spans, is_entity)``: word spans in order and, for each, whether it is a lexicon
            entity.
        """
        ents = self.entities(text) if self._prefix else []
        words = self.words(text)
        if not ents:
            return words, [False] * len(words)
        covered = bytearray(len(text))
        for s, e in ents:
            covered[s:e] = b"\x01" * (e - s)
        pieces: list[tuple[int, int, bool]] = [(s, e, True) for s, e in ents]
        for s, e in words:
            # split the word into maximal runs of characters that no entity covers
            run = None
            for c in range(s, e):
                if covered[c]:
                    if run is not None:
                        pieces.append((run, c, False))
                        run = None
                elif run is None:
                    run = c
            if run is not None:
                pieces.append((run, e, False))
        pieces.sort()
        return [(s, e) for s, e, _ in pieces], [ent for _, _, ent in pieces]
