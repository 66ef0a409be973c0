"""The one vocabulary every lingshu module speaks: `Document`, `Entity`, `Relation`, `LabelSet`.

Offsets are character offsets into `Document.text`, start inclusive, end exclusive
(`text[e.start:e.end] == e.text`). Readers convert from each file format's own convention
(CLUENER and CMeEE store inclusive ends) and writers convert back.

One `Document` serves every task:

- NER: ``entities``;
- relation (SPO) extraction: ``relations``, whose arguments are located mentions; the mentions
  found in the text are also in ``entities``;
- sentence-pair classification: ``text`` and ``text_pair``, with ``label`` (gold or predicted)
  and ``label_scores`` (predicted probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator


@dataclass(frozen=True, order=True)
class Entity:
    """A typed mention: `text[start:end]` (end exclusive) of type `type`."""

    start: int
    end: int
    type: str
    text: str = field(default="", compare=False)
    score: float | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[int, int, str]:
        """What strict span metrics compare: (start, end, type)."""
        return (self.start, self.end, self.type)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"start": self.start, "end": self.end, "type": self.type, "text": self.text}
        if self.score is not None:
            d["score"] = round(float(self.score), 4)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entity:
        """The inverse of `to_dict`; KeyError/TypeError/ValueError on a malformed dict."""
        return cls(int(d["start"]), int(d["end"]), str(d["type"]), str(d.get("text", "")),
                   None if d.get("score") is None else float(d["score"]))


UNLOCATED = -1
"""`Entity.start`/`end` of a relation argument whose string does not occur in the text."""


@dataclass(frozen=True, eq=False)
class Relation:
    """An SPO triple: `subject` --`predicate`--> `object`.

    Arguments are `Entity` mentions located in the document's text (end exclusive); an argument
    whose string does not occur in the text has ``start == end == -1`` (`UNLOCATED`) and keeps its
    string in ``Entity.text``. Such triples still count in evaluation, which compares strings
    (`key`), as the CMeIE leaderboard does.

    Equality and hashing use both arguments' spans, types and strings and the predicate;
    ``combined`` (a CMeIE annotation flag no model predicts) and ``score`` are ignored, so a
    predicted triple equals its gold twin.

    Attributes:
        subject: the subject mention.
        predicate: the relation name, e.g. "临床表现".
        object: the object mention.
        combined: CMeIE's "Combined" flag, kept from reading to writing; None when unknown.
        score: a model's confidence, for predictions.
    """

    subject: Entity
    predicate: str
    object: Entity
    combined: bool | None = None
    score: float | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """What strict SPO metrics compare: (subject text, predicate, object text)."""
        return (self.subject.text, self.predicate, self.object.text)

    @property
    def typed_key(self) -> tuple[str, str, str, str, str]:
        """(subject text, subject type, predicate, object text, object type)."""
        return (self.subject.text, self.subject.type, self.predicate, self.object.text, self.object.type)

    @property
    def located(self) -> bool:
        """True when both arguments were found in the text."""
        return self.subject.start != UNLOCATED and self.object.start != UNLOCATED

    def _ident(self) -> tuple:
        s, o = self.subject, self.object
        return (s.start, s.end, s.type, s.text, self.predicate, o.start, o.end, o.type, o.text)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Relation):
            return NotImplemented
        return self._ident() == other._ident()

    def __hash__(self) -> int:
        return hash(self._ident())

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "subject": self.subject.to_dict(),
            "predicate": self.predicate,
            "object": self.object.to_dict(),
        }
        if self.combined is not None:
            d["combined"] = self.combined
        if self.score is not None:
            d["score"] = round(float(self.score), 4)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Relation:
        """The inverse of `to_dict`."""
        return cls(Entity.from_dict(d["subject"]), str(d["predicate"]), Entity.from_dict(d["object"]),
                   d.get("combined"), None if d.get("score") is None else float(d["score"]))


@dataclass
class Document:
    """A text with its annotations (gold or predicted) and where it came from.

    Attributes:
        text: the original text, never normalised (the first text of a pair).
        entities: entity mentions in character offsets of `text`.
        id: an identifier kept from the input when it has one.
        meta: fields of the input record that lingshu does not interpret, kept for writers.
        source: "file:line" of the record, for error messages.
        relations: SPO triples over mentions of `text` (see `Relation`).
        text_pair: the second text of a sentence pair (KUAKE-QQR query2).
        label: the pair's (or text's) class label, as a string; None when unlabelled.
        label_scores: predicted probability per label, when a model produced them.
    """

    text: str
    entities: list[Entity] = field(default_factory=list)
    id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    relations: list[Relation] = field(default_factory=list)
    text_pair: str | None = None
    label: str | None = None
    label_scores: dict[str, float] | None = None

    @property
    def ents(self) -> list[Entity]:
        """spaCy-style alias, sorted by position."""
        return sorted(self.entities)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the task-specific keys appear only when set."""
        d: dict[str, Any] = {"text": self.text, "entities": [e.to_dict() for e in self.ents]}
        if self.id is not None:
            d["id"] = self.id
        if self.relations:
            d["relations"] = [r.to_dict() for r in self.relations]
        if self.text_pair is not None:
            d["text_pair"] = self.text_pair
        if self.label is not None:
            d["label"] = self.label
        if self.label_scores is not None:
            d["label_scores"] = {k: round(float(v), 4) for k, v in self.label_scores.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Document:
        """The inverse of `to_dict` (lingshu's wire format: the spans layout, the server's JSON).
        Raises ValueError naming the field when the dict is not one."""
        if not isinstance(d, dict) or not isinstance(d.get("text"), str):
            raise ValueError('a document needs a "text" string')
        try:
            ents = [Entity.from_dict(e) for e in d.get("entities") or []]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"entities: each needs start, end and type ({e})") from None
        try:
            rels = [Relation.from_dict(r) for r in d.get("relations") or []]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"relations: each needs subject, predicate and object ({e})") from None
        scores = d.get("label_scores")
        return cls(d["text"], ents, id=d.get("id"), relations=rels, text_pair=d.get("text_pair"),
                   label=None if d.get("label") is None else str(d["label"]),
                   label_scores=None if scores is None else {str(k): float(v) for k, v in scores.items()})

    def __repr__(self) -> str:  # short, readable in a REPL
        def short(t: str) -> str:
            return f"{t[:30]!r}{'…' if len(t) > 30 else ''}"

        ents = ", ".join(f"{e.text}/{e.type}" for e in self.ents)
        parts = [short(self.text)]
        if self.text_pair is not None:
            parts.append(short(self.text_pair))
        parts.append(f"[{ents}]")
        if self.relations:
            parts.append("{" + ", ".join(f"{r.subject.text}-{r.predicate}->{r.object.text}" for r in self.relations) + "}")
        if self.label is not None:
            parts.append(f"label={self.label!r}")
        return f"Document({', '.join(parts)})"


class LabelSet:
    """An ordered, de-duplicated list of entity types with index lookup."""

    def __init__(self, labels: Iterable[str]):
        self.labels: list[str] = sorted(set(labels))
        self.index = {t: i for i, t in enumerate(self.labels)}

    @classmethod
    def from_documents(cls, docs: Iterable[Document]) -> "LabelSet":
        return cls(e.type for d in docs for e in d.entities)

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[str]:
        return iter(self.labels)

    def __contains__(self, t: object) -> bool:
        return t in self.index


def bios_tags(types: list[str]) -> list[str]:
    """The BIOS tag list for entity types: O, then B-/I-/S- per type (index 0 is O)."""
    tags = ["O"]
    for t in types:
        tags += [f"B-{t}", f"I-{t}", f"S-{t}"]
    return tags
