"""The one vocabulary every lingshu module speaks: `Document`, `Entity`, `LabelSet`.

Offsets are character offsets into `Document.text`, start inclusive, end exclusive
(`text[e.start:e.end] == e.text`). Readers convert from each file format's own convention
(CLUENER and CMeEE store inclusive ends) and writers convert back.
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


@dataclass
class Document:
    """A text with its entities (gold or predicted) and where it came from.

    Attributes:
        text: the original text, never normalised.
        entities: entity mentions in character offsets of `text`.
        id: an identifier kept from the input when it has one.
        meta: fields of the input record that lingshu does not interpret, kept for writers.
        source: "file:line" of the record, for error messages.
    """

    text: str
    entities: list[Entity] = field(default_factory=list)
    id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def ents(self) -> list[Entity]:
        """spaCy-style alias, sorted by position."""
        return sorted(self.entities)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text, "entities": [e.to_dict() for e in self.ents]}
        if self.id is not None:
            d["id"] = self.id
        return d

    def __repr__(self) -> str:  # short, readable in a REPL
        ents = ", ".join(f"{e.text}/{e.type}" for e in self.ents)
        return f"Document({self.text[:30]!r}{'…' if len(self.text) > 30 else ''}, [{ents}])"


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
