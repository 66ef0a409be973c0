"""Model directories written by an earlier release keep loading and predict what they predicted then.

tests/fixtures/legacy/<name>/ holds tiny models of every task and decoder, written by
tests/fixtures/legacy/make_legacy.py with the code of the commit named in each expected.json,
and the predictions `lingshu.load(dir)` returned for a few inputs at that commit. Never
regenerate them to make this test pass: a difference here means a user's trained model would
now give other answers.
"""

import json
from pathlib import Path

import pytest

LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy"
NAMES = sorted(p.name for p in LEGACY.iterdir() if (p / "expected.json").exists())


def test_every_task_and_decoder_has_a_fixture():
    tasks = {json.loads((LEGACY / n / "expected.json").read_text(encoding="utf-8"))["task"] for n in NAMES}
    assert tasks == {"ner-crf", "ner-softmax", "ner-globalpointer", "re", "re-gplinker", "pair"}


def _close(a, b, tol=1e-3):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * max(1.0, abs(b))


@pytest.mark.parametrize("name", NAMES)
def test_legacy_model_predicts_as_when_written(name):
    import lingshu

    exp = json.loads((LEGACY / name / "expected.json").read_text(encoding="utf-8"))
    nlp = lingshu.load(str(LEGACY / name), device="cpu")
    if exp["task"] == "pair":
        for (a, b), want in zip(exp["inputs"], exp["predictions"]):
            doc = nlp(a, b)
            assert doc.label == want["label"], (a, b)
            assert set(doc.label_scores) == set(want["label_scores"])
            for k, v in want["label_scores"].items():
                assert _close(doc.label_scores[k], v), (a, b, k)
        return
    assert any(p["entities"] for p in exp["predictions"]), "a fixture that predicts nothing tests nothing"
    for text, want in zip(exp["inputs"], exp["predictions"]):
        doc = nlp(text)
        got = [[e.start, e.end, e.type, e.text] for e in doc.ents]
        assert got == [e[:4] for e in want["entities"]], text
        for e, w in zip(doc.ents, want["entities"]):
            assert _close(e.score, w[4]), (text, e, w)
        got_rel = [[r.subject.start, r.subject.end, r.subject.type, r.predicate, r.object.start, r.object.end,
                    r.object.type] for r in (doc.relations or [])]
        assert got_rel == [r[:7] for r in want["relations"]], text
