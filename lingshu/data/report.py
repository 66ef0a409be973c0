"""What reading a file found: `Problem`, `ValidationReport`, `DataError`.

Every problem names the file, the 1-based line of its record and the field, so a user can open
the file and fix it. Nothing is dropped silently: each skipped record and each dropped entity is
counted here, and `ValidationReport.summary()` prints the counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

ERROR = "error"
WARNING = "warning"
PROBLEMS_PER_KIND = 1000


@dataclass(frozen=True)
class Problem:
    """One finding in an input file.

    Attributes:
        file: the file as it was passed to the reader.
        line: 1-based line where the record starts (CoNLL: the line of the offending token).
        field: path to the field inside the record, e.g. ``entities[2].end_idx``; "" for the
            record as a whole.
        kind: a short machine-readable name, e.g. ``offset_out_of_range``; reports count by it.
        message: what is wrong, with the offending value.
        severity: ``"error"`` (the record is skipped) or ``"warning"`` (the record is kept).
    """

    file: str
    line: int
    field: str
    kind: str
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        s = f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        # A field or message may quote a lone surrogate from the file; printing it must not fail.
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


class DataError(ValueError):
    """Bad input data. Raised by readers with ``strict=True`` and by writers.

    Attributes:
        problem: the `Problem` that caused it, when there is one (file, line, field, kind).
    """

    def __init__(self, problem: Problem | str):
        self.problem = problem if isinstance(problem, Problem) else None
        super().__init__(str(problem))


@dataclass
class ValidationReport:
    """Counts and problems from reading one file.

    Attributes:
        file: the file read.
        format: the format it was read as.
        records_read: records found in the file (JSON objects, CoNLL sentences, text lines).
        records_kept: records turned into `Document`s.
        records_skipped: records dropped because of at least one error.
        entities: entities in the kept documents.
        entities_dropped: entities removed from kept documents by a warning (empty span,
            duplicate); each one is also listed in `problems`.
        errors: number of error problems by kind.
        warnings: number of warning problems by kind.
        problems: the problems in file order, the first `PROBLEMS_PER_KIND` of each kind (every
            one is counted in `errors` / `warnings`; a file with millions of one warning does not
            hold millions of messages).
        relations: SPO triples in the kept documents.
        relations_dropped: duplicate triples removed from kept documents (each also a warning).
        relations_unlocated: kept triples whose subject or object string is not in the text
            (kept with start = end = -1; see `lingshu.data.cmeie`).
        mentions_ambiguous: triple arguments (subjects and objects) of kept documents whose
            string occurs several times in the text and whose occurrence was chosen by the
            location policy.
        labels: label -> count over the kept labelled documents (sentence pairs).
        unlabelled: kept documents of a labelled format with no label (a test file).
    """

    file: str = ""
    format: str = ""
    records_read: int = 0
    records_kept: int = 0
    records_skipped: int = 0
    entities: int = 0
    entities_dropped: int = 0
    errors: Counter = field(default_factory=Counter)
    warnings: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    relations: int = 0
    relations_dropped: int = 0
    relations_unlocated: int = 0
    mentions_ambiguous: int = 0
    labels: Counter = field(default_factory=Counter)
    unlabelled: int = 0
    # called with every rejected record (none capped): its line, its errors and its raw text when
    # the reader has it (a JSON line, a text line, a list record that parsed), else None
    on_reject: Callable[[int, list[Problem], str | None], None] | None = field(default=None, repr=False,
                                                                               compare=False)

    @property
    def ok(self) -> bool:
        """True when no record had an error (warnings allowed)."""
        return not self.errors

    def add(self, problem: Problem) -> None:
        """Count a problem by kind and severity; keep it when fewer than `PROBLEMS_PER_KIND` of
        its kind are kept."""
        counts = self.errors if problem.severity == ERROR else self.warnings
        counts[problem.kind] += 1
        if counts[problem.kind] <= PROBLEMS_PER_KIND:
            self.problems.append(problem)

    def summary(self, limit: int = 20) -> str:
        """A readable multi-line account: counts, then the first `limit` problems.

        Errors are listed before warnings, so a file with thousands of legitimate overlap
        warnings (CMeEE's nested entities) still shows its errors first.

        Args:
            limit: how many problems to list; the rest are counted.

        Returns:
            The summary text, without a trailing newline.
        """
        head = (
            f"{self.file} ({self.format}): {self.records_read:,} records read, "
            f"{self.records_kept:,} kept, {self.records_skipped:,} skipped"
        )
        pairs = self.format == "pair"
        if not pairs:
            head += f"; {self.entities:,} entities kept, {self.entities_dropped:,} dropped"
        lines = [head]
        if self.relations or self.relations_dropped or self.format == "cmeie":
            lines.append(
                f"relations: {self.relations:,} triples kept, {self.relations_dropped:,} duplicates dropped; "
                f"{self.relations_unlocated:,} triples whose subject or object string is not in the text "
                f"(kept, start=end=-1); {self.mentions_ambiguous:,} arguments whose string occurs "
                f"several times (placed by the closest-pair policy)"
            )
        if pairs or self.labels or self.unlabelled:
            dist = ", ".join(f"{k} {v:,}" for k, v in sorted(self.labels.items())) or "none"
            lines.append(
                f"labels: {sum(self.labels.values()):,} labelled ({dist}), {self.unlabelled:,} unlabelled"
            )
        for name, counts in (("errors", self.errors), ("warnings", self.warnings)):
            body = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "none"
            lines.append(f"{name}: {body}")
        ordered = [p for p in self.problems if p.severity == ERROR] + [
            p for p in self.problems if p.severity != ERROR
        ]
        for p in ordered[:limit]:
            lines.append(f"  {p.severity}: {p}")
        rest = Counter(p.kind for p in ordered[limit:])
        for counts in (self.errors, self.warnings):
            for k, n in counts.items():
                if n > PROBLEMS_PER_KIND:
                    rest[k] += n - PROBLEMS_PER_KIND
        if rest:
            lines.append(
                f"  … and {sum(rest.values()):,} more: " + ", ".join(f"{k} {v:,}" for k, v in sorted(rest.items()))
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
