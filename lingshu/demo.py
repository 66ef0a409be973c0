"""A small built-in demo corpus for `lingshu quickstart`: annotated Chinese medical sentences.

Everything here (the term lists, the sentence templates and the prediction sentences, kept as
package data in lingshu/resources/demo_corpus.json; the generator in this module) is original
content written for lingshu by its authors. Nothing is copied from
CMeEE, CBLUE or any other data set or web text; the corpus only follows the CMeEE annotation
scheme, so that the quickstart exercises the same code paths as the real benchmark:

    dis 疾病    sym 临床表现    pro 医疗程序    equ 医疗设备    dru 药物
    ite 医学检验项目    bod 身体    dep 科室    mic 微生物类

The corpus is *compositional*: sentences are built by filling hand-written templates with
hand-written terms, and entity offsets are recorded while each string is assembled (never
recovered with `str.find`), so every annotation is exact by construction. To keep the
combinations medically plausible, terms are grouped by clinical domain (respiratory,
digestive, cardiovascular, ...), each disease lists the microbes that cause it and the drugs
that treat it, and each device is paired with the procedure it is used in; a sentence draws
all its terms from one domain and its first disease ("focus").

Some template slots produce nested mentions, as CMeEE has them: `{bsym}` is a body part plus
a symptom suffix ("右上腹" + "隐痛": sym over the whole, bod inside), `{bdis}` a body part plus
a disease suffix ("膀胱" + "结石"), `{bpro}` an imaging examination ("胸部" + "CT检查") and
`{mite}` a microbe plus a test ("幽门螺杆菌" + "抗体检测": ite over the whole, mic inside).

About 20% of every term list is held out (`held_out_terms()`): the training split never uses
those terms and the dev split favours them, so dev F1 measures a little generalisation beyond
memorised terms while train and dev still share the templates.

Public API:
    demo_documents(n=400, seed=0, split="all") -> list[Document]
    write_demo(directory, n=400, dev_fraction=0.2, seed=0) -> {"train", "dev", "predict": Path}
    term_lists(), held_out_terms(), ENTITY_TYPES, TYPE_NAMES, DOMAINS, TEMPLATES,
    PREDICT_SENTENCES
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from lingshu.schema import Document, Entity

ENTITY_TYPES: tuple[str, ...] = ("dis", "sym", "pro", "equ", "dru", "ite", "bod", "dep", "mic")

TYPE_NAMES: dict[str, str] = {
    "dis": "疾病",
    "sym": "临床表现",
    "pro": "医疗程序",
    "equ": "医疗设备",
    "dru": "药物",
    "ite": "医学检验项目",
    "bod": "身体",
    "dep": "科室",
    "mic": "微生物类",
}

# the literal content (terms, fillers, templates, prediction sentences) is package data
_CORPUS = json.loads((Path(__file__).parent / "resources" / "demo_corpus.json").read_text(encoding="utf-8"))

HOLDOUT_FRACTION = 0.2
_HOLDOUT_SEED = 20240611  # fixed: which terms are held out does not depend on the seed

# ---------------------------------------------------------------------------------------------
# Terms by clinical domain.
#   diseases: {disease: ([microbes causing it], [drugs treating it])}
#   uses:     [(device, procedure it is used in)]
#   sym/ite/dep, and extra mic/dru/pro/equ/bod: plain lists
#   bsym/bdis/bpro: ([body parts], [suffixes]) for nested sym/dis/pro mentions
#   scan:     {bdis body part: [bpro body parts that image it]}, so findings match the scan
# ---------------------------------------------------------------------------------------------

DOMAINS: dict[str, dict[str, Any]] = _CORPUS["domains"]

# Nested slot -> (outer type, inner type). The inner microbe of {mite} is the sentence's microbe.
_NESTED: dict[str, tuple[str, str]] = {
    "bsym": ("sym", "bod"),
    "bdis": ("dis", "bod"),
    "bpro": ("pro", "bod"),
    "mite": ("ite", "mic"),
}
_MITE_VIRUS = ["核酸检测", "抗体检测", "抗原检测"]
_MITE_OTHER = ["培养", "核酸检测", "抗原检测"]

_AGE_RANGE = {"pediatric": (1, 12)}
_FILLERS: dict[str, list[str]] = _CORPUS["fillers"]

# ---------------------------------------------------------------------------------------------
# Templates. Entity slots: {dis} {sym} {pro} {equ} {dru} {ite} {bod} {dep} {mic}, {organ} (a
# bod from the domain's organ list) and the nested {bsym} {bdis} {bpro} {mite}. The first
# {dis} is the focus disease: {dru} and {mic} in the same sentence are drugs for it and a
# microbe causing it; a sentence with both {equ} and {pro} pairs the device with its
# procedure. Repeated slots of one type get distinct terms. {days} {age} ... are unannotated
# fillers. A "儿|" prefix restricts a template to the paediatric domain.
# ---------------------------------------------------------------------------------------------

TEMPLATES: list[str] = _CORPUS["templates"]

# Sentences for the prediction demo (unannotated). Some reuse demo terms, some are new.
PREDICT_SENTENCES: list[str] = _CORPUS["predict_sentences"]

_SLOT = re.compile(r"\{(\w+)\}")
_PEDIATRIC_ONLY = "儿|"


# ---------------------------------------------------------------------------------------------
# Term pools and the held-out split
# ---------------------------------------------------------------------------------------------


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _domain_pools(domain: dict[str, Any]) -> dict[str, list[str]]:
    """Every term of one domain by type (nested parts included), in first-seen order."""
    diseases = domain["diseases"]
    uses = domain["uses"]
    return {
        "dis": list(diseases),
        "sym": list(domain["sym"]),
        "pro": _unique([p for _, p in uses] + domain.get("pro", [])),
        "equ": _unique([e for e, _ in uses] + domain.get("equ", [])),
        "dru": _unique([d for _, drus in diseases.values() for d in drus] + domain.get("dru", [])),
        "ite": list(domain["ite"]),
        "bod": _unique(domain["bsym"][0] + domain["bdis"][0] + domain["bpro"][0] + domain.get("bod", [])),
        "dep": list(domain["dep"]),
        "mic": _unique([m for mics, _ in diseases.values() for m in mics] + domain.get("mic", [])),
    }


def term_lists() -> dict[str, list[str]]:
    """All terms per entity type (union over the domains, first-seen order)."""
    out: dict[str, list[str]] = {t: [] for t in ENTITY_TYPES}
    for domain in DOMAINS.values():
        for t, terms in _domain_pools(domain).items():
            out[t] = _unique(out[t] + terms)
    return out


def _compute_held_out() -> dict[str, frozenset[str]]:
    """Deterministically hold out ~HOLDOUT_FRACTION of every domain's term lists.

    Lists are visited in a fixed order (the nested bod lists first, then each domain's
    per-type lists); a term shared by several lists keeps the first decision, and a list keeps
    at least one training term, so the training split can still fill every template.
    """
    rng = random.Random(_HOLDOUT_SEED)
    decided: dict[tuple[str, str], bool] = {}
    lists: list[tuple[str, list[str]]] = []
    for domain in DOMAINS.values():
        lists += [("bod", list(domain[slot][0])) for slot in ("bsym", "bdis", "bpro")]
        lists += list(_domain_pools(domain).items())
    for t, terms in lists:
        target = max(1, round(len(terms) * HOLDOUT_FRACTION)) if len(terms) >= 3 else 0
        held = sum(decided.get((t, x)) is True for x in terms)
        train = sum(decided.get((t, x)) is False for x in terms)
        undecided = [x for x in terms if (t, x) not in decided]
        rng.shuffle(undecided)
        for i, x in enumerate(undecided):
            make_held = held < target and train + (len(undecided) - i - 1) >= 1
            decided[(t, x)] = make_held
            held += make_held
            train += not make_held
    out: dict[str, set[str]] = {t: set() for t in ENTITY_TYPES}
    for (t, x), is_held in decided.items():
        if is_held:
            out[t].add(x)
    return {t: frozenset(v) for t, v in out.items()}


_HELD_OUT = _compute_held_out()


def held_out_terms() -> dict[str, frozenset[str]]:
    """Terms per type that the training split never uses (the dev split favours them)."""
    return dict(_HELD_OUT)


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


class _NoTerms(Exception):
    """The domain has no (split-permitted) term for a slot of the template."""


class _Filler:
    """Fills one template in one domain, choosing terms according to the split."""

    def __init__(self, rng: random.Random, domain_name: str, split: str, slots: list[str]):
        self.rng = rng
        self.domain_name = domain_name
        self.domain = DOMAINS[domain_name]
        self.pools = _domain_pools(self.domain)
        self.split = split
        self.has_dis = "dis" in slots
        self.n_dru = slots.count("dru")
        self.needs_mic = "mic" in slots or "mite" in slots
        self.pair_use = "equ" in slots and "pro" in slots
        self.scan_finding = "bpro" in slots and ("bdis" in slots or "organ" in slots)
        self.finding: str | None = None
        self.used: dict[str, set[str]] = {t: set() for t in ENTITY_TYPES}
        self.used_held_out = False
        self.focus: str | None = None
        self.focus_shown = False
        self.mic: str | None = None
        self.use: tuple[str, str] | None = None
        self.paired: set[str] = set()

    # -- choosing terms -----------------------------------------------------------------------

    def allowed(self, t: str, term: str) -> bool:
        return self.split != "train" or term not in _HELD_OUT[t]

    def choose(self, t: str, terms: list[str], distinct: bool = True) -> str:
        cands = [x for x in terms if self.allowed(t, x)]
        if distinct:
            cands = [x for x in cands if x not in self.used[t]] or cands
        if not cands:
            raise _NoTerms(t)
        if self.split == "dev":
            held = [x for x in cands if x in _HELD_OUT[t]]
            if held and self.rng.random() < 0.5:
                cands = held
        term = self.rng.choice(cands)
        self.note(t, term)
        return term

    def note(self, t: str, term: str) -> None:
        self.used[t].add(term)
        if term in _HELD_OUT[t]:
            self.used_held_out = True

    def focus_disease(self) -> str:
        if self.focus is None:
            diseases = self.domain["diseases"]

            def ok(d: str, k: int) -> bool:
                mics, drus = diseases[d]
                if self.needs_mic and not any(self.allowed("mic", m) for m in mics):
                    return False
                return sum(self.allowed("dru", x) for x in drus) >= k

            k = min(self.n_dru, 2)
            cands = [d for d in diseases if ok(d, k)] or [d for d in diseases if ok(d, min(k, 1))]
            self.focus = self.choose("dis", cands)
        return self.focus

    def microbe(self) -> str:
        if self.mic is None:
            pool = self.domain["diseases"][self.focus_disease()][0] if self.has_dis else self.pools["mic"]
            self.mic = self.choose("mic", pool)
        return self.mic

    def use_pair(self) -> tuple[str, str]:
        """The (device, procedure) pair of a sentence that has both an {equ} and a {pro}."""
        if self.use is None:
            pairs = [(e, p) for e, p in self.domain["uses"] if self.allowed("equ", e) and self.allowed("pro", p)]
            if not pairs:
                raise _NoTerms("equ/pro")
            if self.split == "dev":
                held = [(e, p) for e, p in pairs if e in _HELD_OUT["equ"] or p in _HELD_OUT["pro"]]
                if held and self.rng.random() < 0.5:
                    pairs = held
            self.use = self.rng.choice(pairs)
            self.note("equ", self.use[0])
            self.note("pro", self.use[1])
        return self.use

    def finding_part(self) -> str:
        """The body part of the sentence's finding ({bdis} or {organ}), chosen once."""
        if self.finding is None:
            self.finding = self.choose("bod", self.domain["bdis"][0], distinct=False)
        return self.finding

    # -- slots --------------------------------------------------------------------------------

    def plain(self, t: str) -> str:
        if t == "dis":
            if self.focus_shown:  # a second disease in the sentence
                return self.choose("dis", self.pools["dis"])
            self.focus_shown = True
            return self.focus_disease()
        if t == "dru" and self.has_dis:
            drus = self.domain["diseases"][self.focus_disease()][1]
            fresh = [x for x in drus if self.allowed("dru", x) and x not in self.used["dru"]]
            return self.choose("dru", fresh if fresh else self.pools["dru"])
        if t == "mic":
            return self.microbe()
        if t in ("equ", "pro") and self.pair_use and t not in self.paired:
            self.paired.add(t)  # the first equ and the first pro come from one pair
            return self.use_pair()[0 if t == "equ" else 1]
        return self.choose(t, self.pools[t])

    def slot(self, name: str) -> tuple[str, list[tuple[int, int, str]]]:
        """(string, [(start, end, type)] relative to the string) for one slot."""
        if name in ENTITY_TYPES:
            term = self.plain(name)
            return term, [(0, len(term), name)]
        if name == "organ":
            term = self.finding_part()
            return term, [(0, len(term), "bod")]
        if name in _NESTED:
            outer, inner = _NESTED[name]
            if name == "mite":
                part = self.microbe()
                suffixes = _MITE_VIRUS if ("病毒" in part or part.isascii()) else _MITE_OTHER
            elif name == "bdis":
                part, suffixes = self.finding_part(), self.domain["bdis"][1]
            elif name == "bpro" and self.scan_finding:  # image the region of the finding
                part = self.choose("bod", self.domain["scan"][self.finding_part()], distinct=False)
                suffixes = self.domain["bpro"][1]
            else:
                parts, suffixes = self.domain[name]
                part = self.choose(inner, parts, distinct=False)
            text = part + self.rng.choice(suffixes)
            return text, [(0, len(text), outer), (0, len(part), inner)]
        if name == "age":
            lo, hi = _AGE_RANGE.get(self.domain_name, (18, 86))
            return str(self.rng.randint(lo, hi)), []
        if name in _FILLERS:
            return self.rng.choice(_FILLERS[name]), []
        raise KeyError(f"unknown template slot {{{name}}}")


def _parse(template: str) -> tuple[str, list[str], bool]:
    pediatric_only = template.startswith(_PEDIATRIC_ONLY)
    body = template[len(_PEDIATRIC_ONLY):] if pediatric_only else template
    return body, _SLOT.findall(body), pediatric_only


def _fill(body: str, filler: _Filler) -> tuple[str, list[Entity]]:
    """Assemble the sentence left to right, recording each entity's offsets as it is placed."""
    pieces: list[str] = []
    entities: list[Entity] = []
    pos = 0
    for i, chunk in enumerate(_SLOT.split(body)):
        if i % 2 == 0:  # literal text between slots
            text, spans = chunk, []
        else:
            text, spans = filler.slot(chunk)
        for s, e, t in spans:
            entities.append(Entity(pos + s, pos + e, t, text[s:e]))
        pieces.append(text)
        pos += len(text)
    return "".join(pieces), sorted(entities, key=lambda e: (e.start, -e.end, e.type))


def _has_entity_slot(slots: list[str]) -> bool:
    return any(s in ENTITY_TYPES or s in _NESTED or s == "organ" for s in slots)


def _generate(n: int, rng: random.Random, split: str, exclude: set[str] | None = None,
              id_prefix: str = "demo-") -> list[Document]:
    if split not in ("all", "train", "dev"):
        raise ValueError(f"split must be 'all', 'train' or 'dev', not {split!r}")
    parsed = [_parse(t) for t in TEMPLATES]
    seen: set[str] = set(exclude or ())
    docs: list[Document] = []
    order: list[int] = []
    width = max(4, len(str(n)))
    misses = 0
    while len(docs) < n:
        if not order:  # cycle through all templates, in a fresh random order each round
            order = list(range(len(parsed)))
            rng.shuffle(order)
        body, slots, pediatric_only = parsed[order.pop()]
        made = None
        for _ in range(20):
            domain = "pediatric" if pediatric_only else rng.choice(list(DOMAINS))
            filler = _Filler(rng, domain, split, slots)
            try:
                text, entities = _fill(body, filler)
            except _NoTerms:
                continue
            if text in seen:
                continue
            # dev: most sentences should contain at least one held-out term
            if split == "dev" and _has_entity_slot(slots) and not filler.used_held_out and rng.random() < 0.8:
                continue
            made = (text, entities)
            break
        if made is None:
            misses += 1
            if misses > 20 * len(parsed):
                raise RuntimeError(f"cannot make {n} distinct demo sentences (made {len(docs)})")
            continue
        seen.add(made[0])
        docs.append(Document(text=made[0], entities=made[1], id=f"{id_prefix}{len(docs) + 1:0{width}d}"))
    return docs


def demo_documents(n: int = 400, seed: int = 0, split: str = "all") -> list[Document]:
    """`n` distinct annotated demo sentences, deterministic in `seed`; ids "demo-0001", ....

    `split` picks the terms: "all" (every term), "train" (never a held-out term) or "dev"
    (held-out terms favoured). Offsets are end exclusive, as everywhere in lingshu.
    """
    return _generate(n, random.Random(seed), split)


def write_demo(directory: str | Path, n: int = 400, dev_fraction: float = 0.2,
               seed: int = 0) -> dict[str, Path]:
    """Write the demo set in CMeEE layout under `directory` (created if missing), through
    lingshu's own writers (lingshu.data).

    Files: demo_train.json and demo_dev.json (CMeEE JSON lists, UTF-8) and demo_predict.txt
    (one unannotated sentence per line).
    `n` sentences in all, `round(n * dev_fraction)` of them in dev. Train never uses a
    held-out term; dev favours them and shares no sentence with train.
    Returns {"train": path, "dev": path, "predict": path}.
    """
    if not 0.0 <= dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in [0, 1), not {dev_fraction}")
    n_dev = int(round(n * dev_fraction))
    train = _generate(n - n_dev, random.Random(seed), "train", id_prefix="demo-train-")
    dev = _generate(n_dev, random.Random(seed * 7919 + 1), "dev",
                    exclude={d.text for d in train}, id_prefix="demo-dev-")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "train": directory / "demo_train.json",
        "dev": directory / "demo_dev.json",
        "predict": directory / "demo_predict.txt",
    }
    from lingshu.data import write_documents

    write_documents(train, paths["train"], "cmeee")
    write_documents(dev, paths["dev"], "cmeee")
    write_documents([Document(t) for t in PREDICT_SENTENCES], paths["predict"], "text")
    return paths
