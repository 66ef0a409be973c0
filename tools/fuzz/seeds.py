"""Seed inputs from the shared data sets' first records, for the atheris harness
(fuzz_readers.py) and the property tests (tests/test_fuzz_readers.py). No atheris needed."""

from __future__ import annotations

from pathlib import Path


def head_lines(p: Path, n: int) -> bytes:
    """The first `n` lines of `p`, as bytes."""
    with open(p, "rb") as f:
        return b"".join(f.readline() for _ in range(n))


def head_list(p: Path, n: int) -> bytes:
    """The first `n` records of a pretty-printed JSON list, closed again."""
    raw = p.read_bytes()[: 1 << 16]
    cut = 0
    for _ in range(n):
        cut = raw.index(b"\n  },\n", cut) + 1
    return raw[:cut] + b"  }\n]\n"


def shared_heads(shared: Path) -> dict[str, bytes]:
    """A few records of each shared data set, in its own layout: {layout: bytes}."""
    return {
        "cluener": head_lines(shared / "cluener" / "dev.json", 3),
        "cmeee": head_list(shared / "cmeee" / "CMeEE_dev.json", 2),
        "cmeie": head_lines(shared / "cmeie" / "CMeIE_dev.jsonl", 2),
        "pair": head_list(shared / "kuake-qqr" / "KUAKE-QQR_dev.json", 3),
        "text": head_lines(shared / "corpus" / "medical_clinical_misc.txt", 3),
    }
