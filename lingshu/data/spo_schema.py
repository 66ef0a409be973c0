"""The SPO schema of a relation task: which (subject_type, predicate, object_type) may occur.

CMeIE ships its 53 patterns as JSON lines (``53_schemas.json``)::

    {"subject_type": "疾病", "predicate": "预防", "object_type": "其他"}

Example::

    patterns = load_spo_schema("../shared/data/cmeie/53_schemas.json")
    docs = read_documents("../shared/data/cmeie/CMeIE_dev.jsonl").documents
    print(schema_coverage(docs, patterns)["outside"])
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable

from lingshu.data.report import DataError, Problem
from lingshu.schema import Document

Pattern = tuple[str, str, str]
_FIELDS = ("subject_type", "predicate", "object_type")


def load_spo_schema(path: str | Path) -> list[Pattern]:
    """Read SPO patterns, one JSON object a line; blank lines are skipped.

    Args:
        path: the schema file.

    Returns:
        (subject_type, predicate, object_type) tuples, duplicates removed, file order kept.

    Raises:
        DataError: a line that is not a JSON object with the three fields as non-empty strings,
            naming file:line and field; or a file without any pattern.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    out: dict[Pattern, None] = {}
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue

            def bad(field: str, kind: str, msg: str) -> DataError:
                return DataError(Problem(str(path), lineno, field, kind, msg))

            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise bad("", "bad_json", f"invalid JSON: {e.msg} (column {e.colno})") from None
            if not isinstance(obj, dict):
                raise bad("", "bad_record", f"expected a JSON object, got {type(obj).__name__}")
            vals = []
            for k in _FIELDS:
                v = obj.get(k)
                if k not in obj:
                    raise bad(k, "missing_field", f'no "{k}" field')
                if not isinstance(v, str) or not v.strip():
                    raise bad(k, "bad_field", f"{v!r} is not a non-empty string")
                vals.append(v)
            out[(vals[0], vals[1], vals[2])] = None
    if not out:
        raise DataError(f"{path}: no SPO pattern found")
    return list(out)


def schema_coverage(docs: Iterable[Document], patterns: Iterable[Pattern]) -> dict:
    """How many triples of `docs` fit the schema.

    Args:
        docs: documents with ``relations``.
        patterns: allowed (subject_type, predicate, object_type) tuples (`load_spo_schema`).

    Returns:
        ``{"triples", "in_schema", "outside_schema", "unknown_predicates", "outside"}``:
        counts of triples; ``unknown_predicates`` maps each predicate the schema does not know to
        its triple count; ``outside`` lists ``[subject_type, predicate, object_type, count]`` for
        every pattern not in the schema, most frequent first.
    """
    allowed = set(patterns)
    predicates = {p for _, p, _ in allowed}
    outside: Counter = Counter()
    n = 0
    for doc in docs:
        for r in doc.relations:
            n += 1
            pat = (r.subject.type, r.predicate, r.object.type)
            if pat not in allowed:
                outside[pat] += 1
    unknown = Counter()
    for (_, p, _), c in outside.items():
        if p not in predicates:
            unknown[p] += c
    bad = sum(outside.values())
    return {
        "triples": n,
        "in_schema": n - bad,
        "outside_schema": bad,
        "unknown_predicates": dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0]))),
        "outside": [[s, p, o, c] for (s, p, o), c in sorted(outside.items(), key=lambda kv: (-kv[1], kv[0]))],
    }
