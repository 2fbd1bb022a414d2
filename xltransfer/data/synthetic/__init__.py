"""A seeded synthetic multilingual suite: K artificial languages realising one latent grammar.

Real treebanks, NER and NLI corpora cannot be reached offline, yet the harness must run end to
end and its cross-lingual numbers must mean something. So every language here is generated from
the same latent sentences (which makes UD data translations of each other and MT data parallel)
while its *surface* comes from a family proto-lexicon changed by a few regular sound changes and
from per-language word-order typology. Relatives therefore share subwords the way real related
languages do, unrelated families share almost nothing but proper names and punctuation, and
transfer results behave like the real thing in miniature.

The suite is "a data source like any other": it is written in the formats the real readers
consume (CoNLL-U, BIO NER, XNLI-like TSV, line-aligned parallel text, raw text), so nothing
downstream needs to know it is synthetic.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any

from xltransfer.options import (  # noqa: F401 - the suite's config, declared below the generator
    GENERATOR_VERSION,
    SyntheticConfig,
    family_members,
    language_codes,
)
from xltransfer.options import language_code as _code

TYPOLOGY_FEATURES: tuple[str, ...] = (
    "S_SVO",
    "S_SOV",
    "S_VSO",
    "S_ADJ_BEFORE_NOUN",
    "S_PREPOSITIONS",
    "S_POSTPOSITIONS",
    "S_CASE_SUFFIXES",
    "S_DETERMINERS",
    "S_CONTRACTIONS",
    "S_VERB_AGREEMENT",
    "S_PLURAL_SUFFIX",
    "S_NEG_BEFORE_VERB",
)

SPLITS = ("train", "dev", "test")
NLI_LABELS = ("entailment", "neutral", "contradiction")


@dataclass(frozen=True)
class SyntheticLanguage:
    """The public face of a generated language: what reports and typology-aware methods need."""

    code: str
    name: str
    family: str
    typology: dict[str, int]

    @property
    def typology_vector(self) -> list[float]:
        return [float(self.typology[f]) for f in TYPOLOGY_FEATURES]


# --------------------------------------------------------------------------------------------
# Deterministic randomness


def _rng(seed: int, *parts: object) -> random.Random:
    """A named, independent stream, so changing one split's size leaves every other file intact.

    str hashing is randomised per process, so the stream key is hashed with sha256 instead.
    """
    key = "\x1f".join(str(p) for p in (GENERATOR_VERSION, seed, *parts))
    return random.Random(int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big"))


class _Pool:
    """Zipf-weighted sampling with precomputed cumulative weights: ``rng.choices`` per draw is slow."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, items: Sequence[int], weights: Sequence[float]) -> None:
        self.items = tuple(items)
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> int:
        index = bisect.bisect_right(self.cum, rng.random() * self.total)
        return self.items[min(index, len(self.items) - 1)]


# --------------------------------------------------------------------------------------------
# Concept inventory (shared by all languages)

_NOUN_CATEGORIES: tuple[tuple[str, int], ...] = (
    ("person", 50),
    ("animal", 45),
    ("food", 35),
    ("tool", 40),
    ("place", 45),
    ("plant", 25),
    ("artifact", 40),
    ("time", 12),
)
# categories whose first noun acts as the hypernym ("animal") of the rest, for NLI generalisation
_HYPERNYM_CATEGORIES = ("person", "animal", "food", "tool", "place", "plant", "artifact")
_N_VERBS_INTRANSITIVE = 30
_N_VERBS = 100
_N_ADJECTIVES = 80  # 40 antonym pairs: 2k and 2k+1
_N_ADVERBS = 20
_NUMERALS = tuple(range(2, 11))
_N_PRONOUNS = 6  # 1sg 2sg 3sg 1pl 2pl 3pl
_PERSON_FEATS = (("Sing", "1"), ("Sing", "2"), ("Sing", "3"), ("Plur", "1"), ("Plur", "2"), ("Plur", "3"))
_THIRD_SG, _THIRD_PL = 2, 5

_OBL_KEYS = ("loc", "dat", "abl", "ins", "com", "ben")
_ADP_KEYS = (*_OBL_KEYS, "gen")
_CASE_NAMES = {
    "nom": "Nom", "acc": "Acc", "gen": "Gen", "loc": "Loc", "dat": "Dat",
    "abl": "Abl", "ins": "Ins", "com": "Com", "ben": "Ben",
}  # fmt: skip

# which noun categories fill which slot: a light selectional restriction keeps sentences plausible
_SLOT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "agent": ("person", "animal"),
    "patient": ("person", "animal", "food", "tool", "plant", "artifact"),
    "loc": ("place",),
    "dat": ("place", "person"),
    "abl": ("place",),
    "ins": ("tool",),
    "com": ("person", "animal"),
    "ben": ("person",),
    "poss": ("person",),
    "time": ("time",),
}
_SLOT_ENTITIES: dict[str, tuple[str, ...]] = {
    "agent": ("PER", "PER", "PER", "ORG"),
    "patient": ("PER", "ORG"),
    "loc": ("LOC",),
    "dat": ("LOC", "PER"),
    "abl": ("LOC",),
    "com": ("PER",),
    "ben": ("PER", "ORG"),
    "poss": ("PER",),
}


def _zipf_ranks(rng: random.Random, n: int) -> list[int]:
    ranks = list(range(n))
    rng.shuffle(ranks)
    return ranks


def _make_entities(rng: random.Random) -> list[tuple[str, tuple[str, ...]]]:
    """Proper names come from one neutral phonology and are identical in every language.

    That mirrors real data (names are mostly untranslated) and gives even unrelated languages
    a few shared anchors, which is what lets NER transfer at all across families.
    """
    onsets = tuple("b d f g k l m n p r s t v z br dr kr st tr".split())
    nuclei = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
    codas = ("", "", "", "n", "r", "l", "s")
    seen: set[str] = set()

    def fresh() -> str:
        while True:
            n_syll = rng.choice((2, 2, 3))
            word = "".join(rng.choice(onsets) + rng.choice(nuclei) + rng.choice(codas) for _ in range(n_syll))
            word = word.capitalize()
            if word not in seen:
                seen.add(word)
                return word

    given = [fresh() for _ in range(60)]
    surnames = [fresh() for _ in range(60)]
    places = [fresh() for _ in range(80)]
    org_words = [fresh() for _ in range(40)]
    entities: list[tuple[str, tuple[str, ...]]] = []
    used: set[tuple[str, ...]] = set()

    def add(etype: str, words: tuple[str, ...]) -> None:
        if words not in used:
            used.add(words)
            entities.append((etype, words))

    for name in given[:25]:
        add("PER", (name,))
    while sum(1 for e in entities if e[0] == "PER") < 90:
        add("PER", (rng.choice(given), rng.choice(surnames)))
    for name in places[:56]:
        add("LOC", (name,))
    while sum(1 for e in entities if e[0] == "LOC") < 70:
        add("LOC", (rng.choice(places[56:]), rng.choice(places[:56])))
    while sum(1 for e in entities if e[0] == "ORG") < 35:
        size = rng.choice((2, 2, 3))
        add("ORG", tuple(rng.choice(org_words) for _ in range(size)))
    return entities


class _Inventory:
    """The language-independent concept inventory and its Zipf-like sampling distributions."""

    def __init__(self, seed: int) -> None:
        rng = _rng(seed, "inventory")
        self.noun_cat: list[str] = []
        self.cat_nouns: dict[str, list[int]] = {}
        for cat, size in _NOUN_CATEGORIES:
            start = len(self.noun_cat)
            self.cat_nouns[cat] = list(range(start, start + size))
            self.noun_cat.extend([cat] * size)
        self.cat_head = {cat: ids[0] for cat, ids in self.cat_nouns.items()}
        self.ranks: dict[str, list[int]] = {
            "n": _zipf_ranks(rng, len(self.noun_cat)),
            "v": _zipf_ranks(rng, _N_VERBS),
            "a": _zipf_ranks(rng, _N_ADJECTIVES),
            "r": _zipf_ranks(rng, _N_ADVERBS),
            "num": _zipf_ranks(rng, len(_NUMERALS)),
            "pron": _zipf_ranks(rng, _N_PRONOUNS),
        }

        def pool(cls: str, ids: Iterable[int]) -> _Pool:
            ids = list(ids)
            return _Pool(ids, [1.0 / (self.ranks[cls][i] + 1) for i in ids])

        self.noun_pools = {
            slot: pool("n", [i for cat in cats for i in self.cat_nouns[cat]])
            for slot, cats in _SLOT_CATEGORIES.items()
        }
        self.intransitive = pool("v", range(_N_VERBS_INTRANSITIVE))
        self.transitive = pool("v", range(_N_VERBS_INTRANSITIVE, _N_VERBS))
        self.adjectives = pool("a", range(_N_ADJECTIVES))
        self.adverbs = pool("r", range(_N_ADVERBS))
        self.numerals = pool("num", range(len(_NUMERALS)))
        self.pronouns = _Pool(range(_N_PRONOUNS), (1.0, 1.0, 3.0, 1.0, 0.5, 2.0))
        self.entities = _make_entities(_rng(seed, "names"))
        self.entity_pools: dict[str, _Pool] = {}
        for etype in ("PER", "LOC", "ORG"):
            ids = [i for i, e in enumerate(self.entities) if e[0] == etype]
            self.entity_pools[etype] = _Pool(ids, [1.0 / (r + 1) ** 0.8 for r in range(len(ids))])


# --------------------------------------------------------------------------------------------
# Latent sentences

_NOUN, _PRON, _ENT = 0, 1, 2
_BARE, _DEF, _INDEF = 0, 1, 2
_PRES, _PAST, _FUT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _NP:
    kind: int
    ref: int
    definite: int = _BARE
    adjs: tuple[int, ...] = ()
    num: int | None = None
    plural: bool = False
    poss: _NP | None = None
    conj: _NP | None = None


@dataclass(frozen=True, slots=True)
class _Clause:
    verb: int
    tense: int
    neg: bool
    agent: _NP
    patient: _NP | None
    obls: tuple[tuple[str, _NP], ...]
    adv: int | None
    tmod: _NP | None
    conj: _Clause | None = None


class _Grammar:
    """Samples latent sentences; every language later realises exactly the same ones."""

    def __init__(self, inv: _Inventory) -> None:
        self.inv = inv
        self.entity_sizes = [len(words) for _, words in inv.entities]

    def np_bounds(self, np: _NP, marked: bool) -> tuple[int, int]:
        """(fewest, most) words any language can spend on this NP, for the sentence-length window."""
        if np.kind == _NOUN:
            lo = 1 + len(np.adjs) + (np.num is not None)
            hi = lo + (np.definite != _BARE) + marked
        else:
            lo = self.entity_sizes[np.ref] if np.kind == _ENT else 1
            hi = lo + marked
        if np.poss is not None:
            plo, phi = self.np_bounds(np.poss, True)
            lo, hi = lo + plo, hi + phi
        if np.conj is not None:
            clo, chi = self.np_bounds(np.conj, marked)
            lo, hi = lo + 1 + clo, hi + 1 + chi
        return lo, hi

    def bounds(self, cl: _Clause) -> tuple[int, int]:
        lo = hi = 2 + (cl.tense == _FUT) + cl.neg + (cl.adv is not None)  # verb + final punctuation
        parts = [(cl.agent, False)]
        if cl.patient is not None:
            parts.append((cl.patient, False))
        parts.extend((np, True) for _, np in cl.obls)
        if cl.tmod is not None:
            parts.append((cl.tmod, False))
        for np, marked in parts:
            plo, phi = self.np_bounds(np, marked)
            lo, hi = lo + plo, hi + phi
        if cl.conj is not None:
            clo, chi = self.bounds(cl.conj)
            lo, hi = lo + clo + 1, hi + chi + 1  # comma + conjunction, minus the second full stop
        return lo, hi

    def sentence(self, rng: random.Random, ent_rate: float, coord: bool = True, max_len: int = 25) -> _Clause:
        while True:
            cl = self.clause(rng, ent_rate)
            if coord and rng.random() < 0.12:
                cl = replace(cl, conj=self.clause(rng, ent_rate))
            lo, hi = self.bounds(cl)
            if lo >= 4 and hi <= max_len:
                return cl

    def clause(self, rng: random.Random, ent_rate: float) -> _Clause:
        inv = self.inv
        transitive = rng.random() < 0.7
        verb = (inv.transitive if transitive else inv.intransitive).pick(rng)
        r = rng.random()
        tense = _PRES if r < 0.5 else (_PAST if r < 0.85 else _FUT)
        neg = rng.random() < 0.12
        agent = self.participant(rng, "agent", ent_rate)
        patient = self.participant(rng, "patient", ent_rate) if transitive else None
        n_obl = rng.choices((0, 1, 2), cum_weights=(0.45, 0.85, 1.0))[0]
        keys = rng.sample(_OBL_KEYS, n_obl)
        obls = tuple((key, self.participant(rng, key, ent_rate)) for key in keys)
        adv = inv.adverbs.pick(rng) if rng.random() < 0.25 else None
        tmod = self.time_np(rng) if rng.random() < 0.08 else None
        if not transitive and not obls and adv is None:
            adv = inv.adverbs.pick(rng)  # "dog sleeps ." is too short for a language without articles
        return _Clause(verb, tense, neg, agent, patient, obls, adv, tmod)

    def time_np(self, rng: random.Random) -> _NP:
        return _NP(_NOUN, self.inv.noun_pools["time"].pick(rng))

    def adjectives(self, rng: random.Random, n: int, avoid: Iterable[int] = ()) -> tuple[int, ...]:
        banned = set(avoid)
        out: list[int] = []
        while len(out) < n:
            adj = self.inv.adjectives.pick(rng)
            if adj in banned or adj in out or (adj ^ 1) in out or (adj ^ 1) in banned:
                continue
            out.append(adj)
        return tuple(out)

    def noun_np(self, rng: random.Random, slot: str, mods: bool = True) -> _NP:
        inv = self.inv
        ref = inv.noun_pools[slot].pick(rng)
        r = rng.random()
        definite = _DEF if r < 0.5 else (_INDEF if r < 0.8 else _BARE)
        num = None
        plural = False
        if mods and rng.random() < 0.09:
            num = inv.numerals.pick(rng)
            plural = True
        elif rng.random() < 0.15:
            plural = True
        if plural and definite == _INDEF:
            definite = _BARE
        n_adj = rng.choices((0, 1, 2), cum_weights=(0.55, 0.88, 1.0))[0] if mods else 0
        return _NP(_NOUN, ref, definite, self.adjectives(rng, n_adj), num, plural)

    def participant(self, rng: random.Random, slot: str, ent_rate: float) -> _NP:
        inv = self.inv
        etypes = _SLOT_ENTITIES.get(slot)
        if etypes and rng.random() < ent_rate:
            np = _NP(_ENT, inv.entity_pools[rng.choice(etypes)].pick(rng))
        elif slot in ("agent", "patient") and rng.random() < (0.12 if slot == "agent" else 0.04):
            return _NP(_PRON, inv.pronouns.pick(rng))
        else:
            np = self.noun_np(rng, slot, mods=slot != "poss")
            if slot != "poss" and rng.random() < 0.1:
                np = replace(np, poss=self.participant(rng, "poss", ent_rate))
        if slot == "agent" and rng.random() < 0.07:
            other = self.participant(rng, "poss" if rng.random() < 0.5 else "agent", ent_rate)
            if other.kind != _PRON and other.conj is None:
                np = replace(np, conj=replace(other, poss=None))
        return np


# --------------------------------------------------------------------------------------------
# Phonology, proto-lexicons and sound change

_BASE_CONSONANTS = tuple("p t k b d g m n l r s f v z h j w x c q".split())
_DIGRAPHS = tuple("sh ch th kh ts ng zh dh gh ph ny tl kw dz".split())
_SPECIAL_CONSONANTS = tuple("ç ş ž ñ ł ř ð þ č š ġ ħ ŋ ķ".split())
_BASE_VOWELS = ("a", "e", "i", "o", "u")
_SPECIAL_VOWELS = tuple("y ä ö ü å ø æ é á í ó ú ê ô ā ē ī ū".split())
_VOWELS = frozenset(_BASE_VOWELS + _SPECIAL_VOWELS)
_EXTRA_SHAPES = ("CVC", "V", "VC", "CCV", "CVV")


@dataclass(frozen=True)
class _Phonology:
    consonants: tuple[str, ...]
    cons_cum: tuple[float, ...]
    vowels: tuple[str, ...]
    shapes: tuple[str, ...]
    shape_cum: tuple[float, ...]
    extra_vowel: str  # a vowel outside the inventory that sound changes may introduce


def _partition(pool: Sequence[str], n: int, rng: random.Random, min_size: int) -> list[list[str]]:
    """Deal graphemes out to families so unrelated families have (nearly) disjoint inventories.

    Disjoint consonants are what keeps character n-gram overlap between families low; with more
    families than graphemes some sharing is unavoidable, and is topped up at random.
    """
    items = list(pool)
    rng.shuffle(items)
    shares = [items[i::n] for i in range(n)]
    for share in shares:
        if len(share) < min_size:
            extra = [g for g in rng.sample(items, len(items)) if g not in share]
            share.extend(extra[: min_size - len(share)])
    return shares


def _make_phonology(
    rng: random.Random, base: list[str], digraphs: list[str], special_c: list[str], special_v: list[str]
) -> _Phonology:
    consonants = list(base)
    consonants += rng.sample(digraphs, min(2, len(digraphs)))
    consonants += rng.sample(special_c, min(1, len(special_c)))
    rng.shuffle(consonants)
    vowels = rng.sample(_BASE_VOWELS, rng.randint(3, 5))
    vowels += rng.sample(special_v, min(rng.randint(0, 2), len(special_v)))
    outside = [v for v in special_v if v not in vowels] or [v for v in _BASE_VOWELS if v not in vowels]
    outside = outside or ["y"]
    shapes = ("CV", *rng.sample(_EXTRA_SHAPES, 2))
    return _Phonology(
        consonants=tuple(consonants),
        cons_cum=tuple(accumulate(1.0 / (i + 1) ** 0.6 for i in range(len(consonants)))),
        vowels=tuple(vowels),
        shapes=shapes,
        shape_cum=tuple(accumulate((3.0, 1.5, 1.0))),
        extra_vowel=rng.choice(outside),
    )


def _syllables(ph: _Phonology, rng: random.Random, n: int) -> tuple[str, ...]:
    segs: list[str] = []
    for _ in range(n):
        shape = rng.choices(ph.shapes, cum_weights=ph.shape_cum)[0]
        for slot in shape:
            if slot == "C":
                seg = rng.choices(ph.consonants, cum_weights=ph.cons_cum)[0]
                if segs and seg == segs[-1]:
                    seg = rng.choices(ph.consonants, cum_weights=ph.cons_cum)[0]
            else:
                seg = rng.choice(ph.vowels)
            segs.append(seg)
    return tuple(segs)


def _syllable_weights(rank: int) -> tuple[float, float, float]:
    # Zipf's law of abbreviation: frequent words are short
    if rank < 25:
        return (0.45, 0.45, 0.10)
    if rank < 120:
        return (0.15, 0.60, 0.25)
    return (0.05, 0.50, 0.45)


_CONTENT_SIZES = {
    "n": sum(n for _, n in _NOUN_CATEGORIES),
    "v": _N_VERBS,
    "a": _N_ADJECTIVES,
    "r": _N_ADVERBS,
    "num": len(_NUMERALS),
    "pron": _N_PRONOUNS,
}
_FUNCTION_KEYS = ("det_def", "det_indef", "cc", "neg", "aux", *(f"adp:{k}" for k in _ADP_KEYS))
_SUFFIX_KEYS = (
    "sfx:acc",
    *(f"sfx:{k}" for k in _ADP_KEYS),
    "sfx:pl",
    "sfx:past",
    *(f"agr:{i}" for i in range(6)),
)

Segs = tuple[str, ...]


@dataclass(frozen=True)
class _ProtoLexicon:
    words: dict[str, list[Segs]]  # class -> forms by concept id
    function: dict[str, Segs]
    suffixes: dict[str, Segs]


def _proto_lexicon(ph: _Phonology, rng: random.Random, inv: _Inventory) -> _ProtoLexicon:
    """One family's ancestral words; daughters inherit them through sound change only."""
    used: set[str] = set()

    def fresh(weights: tuple[float, float, float], bucket: set[str]) -> Segs:
        n_syll = rng.choices((1, 2, 3), weights=weights)[0]
        for attempt in range(400):
            segs = _syllables(ph, rng, n_syll + attempt // 40)
            text = "".join(segs)
            if text not in bucket and len(text) >= 2:
                bucket.add(text)
                return segs
        raise RuntimeError("phonology too small to generate a unique lexicon")

    words: dict[str, list[Segs]] = {}
    for cls, size in _CONTENT_SIZES.items():
        if cls in ("pron", "num"):
            words[cls] = [fresh((0.8, 0.2, 0.0), used) for _ in range(size)]
        else:
            words[cls] = [fresh(_syllable_weights(inv.ranks[cls][i]), used) for i in range(size)]
    function = {key: fresh((1.0, 0.0, 0.0), used) for key in _FUNCTION_KEYS}

    # case suffixes grammaticalise from the adpositions and agreement from the pronouns, so a
    # case-marking daughter still shares morphs with a prepositional sister
    suffixes: dict[str, Segs] = {}
    taken: set[str] = set()
    for key in _SUFFIX_KEYS:
        source: Segs | None = None
        if key.startswith("sfx:") and f"adp:{key[4:]}" in function:
            source = function[f"adp:{key[4:]}"]
        elif key.startswith("agr:"):
            source = words["pron"][int(key[4:])][:2]
        if source is not None and "".join(source) not in taken:
            taken.add("".join(source))
            suffixes[key] = source
        else:
            suffixes[key] = fresh((1.0, 0.0, 0.0), taken)
    return _ProtoLexicon(words, function, suffixes)


Change = tuple[str, ...]


def _family_changes(ph: _Phonology, rng: random.Random) -> list[Change]:
    """The pool of sound changes a family's daughters draw from, so siblings change alike.

    Changes are kept local (rarer consonants, word edges, between vowels): a global shift of a
    frequent vowel would touch nearly every word and leave sisters with little shared vocabulary,
    unlike real related languages.
    """
    cons = list(ph.consonants)
    rare = cons[len(cons) // 3 :]  # consonant weights fall with position
    vows = list(ph.vowels)
    cands: list[Change] = []
    for _ in range(2):
        x = rng.choice(rare)
        cands.append(("subst", x, rng.choice([c for c in cons if c != x])))
    x, y = rng.sample(vows, 2) if len(vows) >= 2 else (vows[0], ph.extra_vowel)
    cands.append(("final_vowel", x, y))
    cands.append(("final_vowel", rng.choice(vows), ph.extra_vowel))
    x, y = rng.sample(cons, 2)
    cands.append(("lenite", x, y))
    x, y = rng.sample(cons, 2)
    cands.append(("initial", x, y))
    cands.append(("final_drop",))
    cands.append(("cluster",))
    cands.append(("final_add", rng.choice(vows)))
    return cands


def _describe_change(change: Change) -> str:
    kind = change[0]
    if kind == "subst":
        return f"{change[1]} > {change[2]}"
    if kind == "lenite":
        return f"{change[1]} > {change[2]} / V_V"
    if kind == "final_vowel":
        return f"{change[1]}# > {change[2]}#"
    if kind == "initial":
        return f"#{change[1]} > #{change[2]}"
    if kind == "final_drop":
        return "final vowel loss in polysyllables"
    if kind == "cluster":
        return "consonant cluster simplification"
    return f"final vowel {change[1]} added after consonants"


def _apply_changes(segs: Segs, changes: Sequence[Change]) -> Segs:
    """Regular (exceptionless) sound change: the same rules hit every word, stem and affix alike."""
    out = list(segs)
    for change in changes:
        kind = change[0]
        if kind == "subst":
            out = [change[2] if s == change[1] else s for s in out]
        elif kind == "lenite":
            for i in range(1, len(out) - 1):
                if out[i] == change[1] and out[i - 1] in _VOWELS and out[i + 1] in _VOWELS:
                    out[i] = change[2]
        elif kind == "initial":
            if out and out[0] == change[1]:
                out[0] = change[2]
        elif kind == "final_vowel":
            if len(out) >= 2 and out[-1] == change[1]:
                out[-1] = change[2]
        elif kind == "final_drop":
            if len(out) >= 4 and out[-1] in _VOWELS and out[-2] not in _VOWELS:
                out.pop()
        elif kind == "cluster":
            simplified: list[str] = []
            for s in out:
                if simplified and s not in _VOWELS and simplified[-1] not in _VOWELS:
                    simplified[-1] = s
                else:
                    simplified.append(s)
            out = simplified if any(s in _VOWELS for s in simplified) else out
        elif kind == "final_add":
            if out and out[-1] not in _VOWELS:
                out.append(change[1])
    return tuple(out) if out else segs


# --------------------------------------------------------------------------------------------
# Typology


def _draw_group(rng: random.Random, group: str, order: str) -> Any:
    if group == "order":
        return rng.choices(("SVO", "SOV", "VSO"), weights=(0.4, 0.45, 0.15))[0]
    if group == "adp":  # Greenberg-style correlation with word order
        weights = {"SVO": (0.7, 0.1, 0.2), "SOV": (0.1, 0.5, 0.4), "VSO": (0.8, 0.0, 0.2)}[order]
        return rng.choices(("prep", "postp", "case"), weights=weights)[0]
    if group == "adj":
        return rng.random() < (0.7 if order == "SOV" else 0.4)
    probs = {"det": 0.6, "contr": 0.6, "agr": 0.5, "plural": 0.5, "neg_before": 0.7}
    return rng.random() < probs[group]


_GROUPS = ("order", "adp", "adj", "det", "contr", "agr", "plural", "neg_before")


def _draw_parameters(rng: random.Random, parent: dict[str, Any] | None) -> dict[str, Any]:
    """Daughters inherit the family's parameters and re-draw each group with some probability."""
    params: dict[str, Any] = {}
    for group in _GROUPS:
        if parent is not None and rng.random() >= 0.25:
            params[group] = parent[group]
        else:
            params[group] = _draw_group(rng, group, params.get("order", "SVO"))
    return params


def _typology(params: dict[str, Any]) -> dict[str, int]:
    prep = params["adp"] == "prep"
    return {
        "S_SVO": int(params["order"] == "SVO"),
        "S_SOV": int(params["order"] == "SOV"),
        "S_VSO": int(params["order"] == "VSO"),
        "S_ADJ_BEFORE_NOUN": int(params["adj"]),
        "S_PREPOSITIONS": int(prep),
        "S_POSTPOSITIONS": int(params["adp"] == "postp"),
        "S_CASE_SUFFIXES": int(params["adp"] == "case"),
        "S_DETERMINERS": int(params["det"]),
        # fusion needs an adposition directly followed by an article
        "S_CONTRACTIONS": int(params["contr"] and prep and params["det"]),
        "S_VERB_AGREEMENT": int(params["agr"]),
        "S_PLURAL_SUFFIX": int(params["plural"]),
        "S_NEG_BEFORE_VERB": int(params["neg_before"]),
    }


def _ensure_coverage(params: list[dict[str, Any]]) -> None:
    """Guarantee the phenomena the harness tests for (MWTs, case suffixes) exist in every suite."""
    n = len(params)
    if n >= 2 and not any(p["adp"] == "case" for p in params):
        params[-1]["adp"] = "case"
    if not any(_typology(p)["S_CONTRACTIONS"] for p in params):
        case_langs = [i for i, p in enumerate(params) if p["adp"] == "case"]
        # never convert the only case-marking language
        target = next(i for i in range(n) if n == 1 or case_langs != [i])
        params[target].update(adp="prep", det=True, contr=True)
    if n >= 2 and all(_typology(p) == _typology(params[0]) for p in params):
        params[-1]["adj"] = not params[-1]["adj"]


# --------------------------------------------------------------------------------------------
# Languages


def _family_name(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return f"Synthetic-{letters}"


@dataclass(frozen=True)
class _Lang:
    info: SyntheticLanguage
    changes: tuple[Change, ...]
    words: dict[str, list[str]]
    function: dict[str, str]
    suffixes: dict[str, str]
    fused: dict[str, str]  # adposition key -> ADP+DET fused surface form


def _fuse(adp: Segs, det: Segs) -> str:
    head = adp[:-1] if len(adp) > 1 and adp[-1] in _VOWELS else adp
    tail = det[1:] if len(det) > 1 and det[0] not in _VOWELS else det
    return "".join(head + tail)


def _daughter_words(proto: _ProtoLexicon, changes: Sequence[Change]) -> dict[str, list[str]]:
    """Content words after sound change, with homophony avoidance.

    Mergers (e.g. final vowel loss) would otherwise make ~15% of a lexicon homophonous, which
    erases distinctions the tasks rely on (antonyms in NLI); like real languages resisting
    harmful mergers, a word that would collide with another keeps an older (less changed) form.
    """
    keys = [(cls, i) for cls, forms in proto.words.items() for i in range(len(forms))]
    options: dict[tuple[str, int], list[str]] = {}
    for cls, i in keys:
        segs = proto.words[cls][i]
        # the regular outcome first, then forms that underwent ever fewer of the changes
        forms = ["".join(_apply_changes(segs, changes[:k])) for k in range(len(changes), -1, -1)]
        options[(cls, i)] = list(dict.fromkeys(forms))
    # words without alternatives choose first, so an exceptional form never blocks a regular one
    order = sorted(keys, key=lambda key: len(options[key]))
    taken: set[str] = set()
    chosen: dict[tuple[str, int], str] = {}
    for key in order:
        form = next((f for f in options[key] if f not in taken), options[key][0])
        taken.add(form)
        chosen[key] = form
    return {cls: [chosen[(cls, i)] for i in range(len(forms))] for cls, forms in proto.words.items()}


def _build_languages(config: SyntheticConfig, inv: _Inventory) -> list[_Lang]:
    """Families first (phonology, proto-lexicon, typology), then daughters by inheritance.

    Every daughter draws from its own named stream rather than one shared sequence, so its sound
    changes and typology do not depend on how many sisters are generated after it.
    """
    n_fam = len(config.family_sizes)
    prng = _rng(config.seed, "phonology")
    base_shares = _partition(_BASE_CONSONANTS, n_fam, prng, 5)
    digraph_shares = _partition(_DIGRAPHS, n_fam, prng, 1)
    special_c_shares = _partition(_SPECIAL_CONSONANTS, n_fam, prng, 1)
    special_v_shares = _partition(_SPECIAL_VOWELS, n_fam, prng, 1)

    plans: list[tuple[int, _Phonology, _ProtoLexicon, tuple[Change, ...]]] = []
    all_params: list[dict[str, Any]] = []
    for f, size in enumerate(config.family_sizes):
        frng = _rng(config.seed, "family", f)
        ph = _make_phonology(
            frng, base_shares[f], digraph_shares[f], special_c_shares[f], special_v_shares[f]
        )
        proto = _proto_lexicon(ph, frng, inv)
        candidates = _family_changes(ph, frng)
        family_params = _draw_parameters(frng, None)
        chosen: set[tuple[int, ...]] = set()
        for m in range(size):
            lrng = _rng(config.seed, "language", f, m)
            for _ in range(50):
                k = lrng.choice((2, 3, 3))
                picks = tuple(sorted(lrng.sample(range(len(candidates)), k)))
                if picks not in chosen:
                    break
            chosen.add(picks)
            plans.append((f, ph, proto, tuple(candidates[i] for i in picks)))
            all_params.append(_draw_parameters(lrng, family_params))
    _ensure_coverage(all_params)

    languages: list[_Lang] = []
    names: set[str] = set()
    for index, ((f, ph, proto, changes), params) in enumerate(zip(plans, all_params, strict=True)):
        code = _code(index)
        name = ""
        for attempt in range(100):
            nrng = _rng(config.seed, "language-name", index, attempt)
            name = "".join(_apply_changes(_syllables(ph, nrng, nrng.choice((2, 3))), changes)).capitalize()
            if name not in names and len(name) >= 3:
                break
        names.add(name)
        words = _daughter_words(proto, changes)
        function_segs = {k: _apply_changes(s, changes) for k, s in proto.function.items()}
        suffixes = {k: "".join(_apply_changes(s, changes)) for k, s in proto.suffixes.items()}
        typology = _typology(params)
        fused: dict[str, str] = {}
        if typology["S_CONTRACTIONS"]:
            # like French a/de but not en/sur: only some adpositions fuse, always including one
            # frequent oblique so that MWTs are common enough to matter
            crng = _rng(config.seed, "contractions", index)
            keys = ["loc", *crng.sample([k for k in _ADP_KEYS if k != "loc"], crng.randint(1, 3))]
            for key in sorted(keys, key=_ADP_KEYS.index):
                fused[key] = _fuse(function_segs[f"adp:{key}"], function_segs["det_def"])
        info = SyntheticLanguage(code=code, name=name, family=_family_name(f), typology=typology)
        function = {k: "".join(s) for k, s in function_segs.items()}
        languages.append(_Lang(info, changes, words, function, suffixes, fused))
    return languages


# --------------------------------------------------------------------------------------------
# Realisation: latent sentence -> syntactic words with heads


@cache
def _feats(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return "_"
    return "|".join(f"{k}={v}" for k, v in sorted(pairs, key=lambda kv: kv[0].lower()))


class _Tok:
    __slots__ = ("form", "lemma", "upos", "feats", "deprel", "head", "tag", "fused", "idx")

    def __init__(
        self, form: str, lemma: str, upos: str, feats: str, deprel: str, head: _Tok | None, tag: str = "O"
    ) -> None:
        self.form = form
        self.lemma = lemma
        self.upos = upos
        self.feats = feats
        self.deprel = deprel
        self.head = head
        self.tag = tag
        self.fused: str | None = None  # surface form of an MWT starting at this word
        self.idx = 0


class _Realizer:
    """Turns latent sentences into one language's words, honouring its typology."""

    def __init__(self, lang: _Lang, inv: _Inventory) -> None:
        t = lang.info.typology
        self.code = lang.info.code
        self.order = "SVO" if t["S_SVO"] else ("SOV" if t["S_SOV"] else "VSO")
        self.adj_before = bool(t["S_ADJ_BEFORE_NOUN"])
        self.prep = bool(t["S_PREPOSITIONS"])
        self.case = bool(t["S_CASE_SUFFIXES"])
        self.det = bool(t["S_DETERMINERS"])
        self.agr = bool(t["S_VERB_AGREEMENT"])
        self.plural = bool(t["S_PLURAL_SUFFIX"])
        self.neg_before = bool(t["S_NEG_BEFORE_VERB"])
        self.nouns = lang.words["n"]
        self.verbs = lang.words["v"]
        self.adjs = lang.words["a"]
        self.advs = lang.words["r"]
        self.nums = lang.words["num"]
        self.prons = lang.words["pron"]
        self.fn = lang.function
        self.sfx = lang.suffixes
        self.fused = lang.fused
        self.entities = inv.entities

    def sentence(self, cl: _Clause) -> list[_Tok]:
        root, toks = self._clause(cl)
        root.deprel = "root"
        if cl.conj is not None:
            croot, ctoks = self._clause(cl.conj)
            croot.deprel = "conj"
            croot.head = root
            cc = self.fn["cc"]
            toks.append(_Tok(",", ",", "PUNCT", "_", "punct", croot))
            toks.append(_Tok(cc, cc, "CCONJ", "_", "cc", croot))
            toks.extend(ctoks)
        toks.append(_Tok(".", ".", "PUNCT", "_", "punct", root))
        return toks

    def _person(self, np: _NP) -> int:
        if np.kind == _PRON:
            return np.ref
        return _THIRD_PL if (np.plural or np.conj is not None) else _THIRD_SG

    def _clause(self, cl: _Clause) -> tuple[_Tok, list[_Tok]]:
        person = self._person(cl.agent)
        number, pers = _PERSON_FEATS[person]
        agr_feats = (("Number", number), ("Person", pers)) if self.agr else ()
        agr = self.sfx[f"agr:{person}"] if self.agr else ""
        stem = self.verbs[cl.verb]
        aux = None
        if cl.tense == _FUT:
            verb = _Tok(stem, stem, "VERB", "VerbForm=Inf", "root", None)
            lemma = self.fn["aux"]
            feats = _feats((("Tense", "Fut"), ("VerbForm", "Fin"), *agr_feats))
            aux = _Tok(lemma + agr, lemma, "AUX", feats, "aux", verb)
        else:
            past = cl.tense == _PAST
            form = stem + (self.sfx["sfx:past"] if past else "") + agr
            feats = _feats((("Tense", "Past" if past else "Pres"), ("VerbForm", "Fin"), *agr_feats))
            verb = _Tok(form, stem, "VERB", feats, "root", None)
        group = [verb]
        if aux is not None:
            group = [verb, aux] if self.order == "SOV" else [aux, verb]
        if cl.neg:
            neg = _Tok(self.fn["neg"], self.fn["neg"], "PART", "Polarity=Neg", "advmod", verb)
            group = [neg, *group] if self.neg_before else [*group, neg]
        subj = self._np(cl.agent, None, "nsubj", verb)
        obj = self._np(cl.patient, "acc", "obj", verb) if cl.patient is not None else []
        obls: list[_Tok] = []
        for key, np in cl.obls:
            obls.extend(self._np(np, key, "obl", verb))
        adv = []
        if cl.adv is not None:
            form = self.advs[cl.adv]
            adv.append(_Tok(form, form, "ADV", "_", "advmod", verb))
        toks = self._np(cl.tmod, None, "obl:tmod", verb) if cl.tmod is not None else []
        if self.order == "SVO":
            toks += subj + group + obj + obls + adv
        elif self.order == "SOV":
            toks += subj + obls + obj + adv + group
        else:
            toks += group + subj + obj + obls + adv
        return verb, toks

    def _np(self, np: _NP, case: str | None, deprel: str, head: _Tok) -> list[_Tok]:
        """Words of one NP in surface order; ``case`` is None (nominative), 'acc', 'gen' or oblique."""
        suffix_case = self.case and case is not None
        case_pair: tuple[tuple[str, str], ...] = ()
        if self.case:
            case_pair = (("Case", _CASE_NAMES[case or "nom"]),)
        first_det: _Tok | None = None
        if np.kind == _ENT:
            etype, names = self.entities[np.ref]
            h = _Tok(names[0], names[0], "PROPN", "Number=Sing", deprel, head, "B-" + etype)
            toks = [h]
            for name in names[1:]:
                toks.append(_Tok(name, name, "PROPN", "Number=Sing", "flat:name", h, "I-" + etype))
            last = toks[-1]
            if suffix_case:
                # Turkish-style apostrophe keeps the shared name intact as a subword anchor
                last.form = last.form + "'" + self.sfx[f"sfx:{case}"]
            last.feats = _feats((*case_pair, ("Number", "Sing")))
        elif np.kind == _PRON:
            number, pers = _PERSON_FEATS[np.ref]
            lemma = self.prons[np.ref]
            form = lemma + (self.sfx[f"sfx:{case}"] if suffix_case else "")
            feats = _feats((*case_pair, ("Number", number), ("Person", pers), ("PronType", "Prs")))
            h = _Tok(form, lemma, "PRON", feats, deprel, head)
            toks = [h]
        else:
            lemma = self.nouns[np.ref]
            form = lemma
            pairs = case_pair
            if self.plural:
                pairs = (*pairs, ("Number", "Plur" if np.plural else "Sing"))
                if np.plural:
                    form += self.sfx["sfx:pl"]
            if suffix_case:
                form += self.sfx[f"sfx:{case}"]
            h = _Tok(form, lemma, "NOUN", _feats(pairs), deprel, head)
            left: list[_Tok] = []
            right: list[_Tok] = []
            if self.det and np.definite != _BARE:
                key, val = ("det_def", "Def") if np.definite == _DEF else ("det_indef", "Ind")
                first_det = _Tok(self.fn[key], self.fn[key], "DET", f"Definite={val}|PronType=Art", "det", h)
                left.append(first_det)
            if np.num is not None:
                num = self.nums[np.num]
                left.append(_Tok(num, num, "NUM", "NumType=Card", "nummod", h))
            if np.adjs:
                adjs = [_Tok(self.adjs[a], self.adjs[a], "ADJ", "Degree=Pos", "amod", h) for a in np.adjs]
                if self.adj_before:
                    left.extend(adjs)
                else:
                    right.extend(adjs)
            if np.poss is not None:
                poss = self._np(np.poss, "gen", "nmod:poss", h)
                if self.prep:
                    right.extend(poss)  # "the dog of the king"
                else:
                    left = poss + left  # "king-GEN the dog"
            toks = [*left, h, *right]
        if np.conj is not None:
            conj = self._np(np.conj, case, "conj", h)
            cc = self.fn["cc"]
            # UD attaches the conjunction to the conjunct it introduces
            toks.append(_Tok(cc, cc, "CCONJ", "_", "cc", next(t for t in conj if t.head is h)))
            toks.extend(conj)
        if case is not None and case != "acc" and not self.case:
            form = self.fn[f"adp:{case}"]
            adp = _Tok(form, form, "ADP", "_", "case", h)
            if self.prep:
                if toks[0] is first_det and np.definite == _DEF and case in self.fused:
                    adp.fused = self.fused[case]
                toks.insert(0, adp)
            else:
                toks.append(adp)
        return toks


def _surface_tokens(toks: list[_Tok]) -> list[tuple[str, str]]:
    """Orthographic tokens with their NER tags: an MWT is one token, as in running text."""
    out: list[tuple[str, str]] = []
    skip = False
    for tok in toks:
        if skip:
            skip = False
            continue
        if tok.fused is not None:
            out.append((tok.fused, "O"))
            skip = True
        else:
            out.append((tok.form, tok.tag))
    return out


def _surface(toks: list[_Tok]) -> str:
    parts: list[str] = []
    for form, _ in _surface_tokens(toks):
        if parts and form in (".", ","):
            parts[-1] += form
        else:
            parts.append(form)
    return " ".join(parts)


def _conllu_block(sent_id: str, toks: list[_Tok]) -> str:
    for i, tok in enumerate(toks, 1):
        tok.idx = i
    lines = [f"# sent_id = {sent_id}", f"# text = {_surface(toks)}"]
    n = len(toks)
    i = 0
    while i < n:
        tok = toks[i]
        if tok.fused is not None:
            nxt_punct = i + 2 < n and toks[i + 2].upos == "PUNCT"
            misc = "SpaceAfter=No" if nxt_punct else "_"
            lines.append(f"{i + 1}-{i + 2}\t{tok.fused}\t_\t_\t_\t_\t_\t_\t_\t{misc}")
            for word in (tok, toks[i + 1]):
                lines.append(_conllu_word(word, "_"))
            i += 2
            continue
        misc = "SpaceAfter=No" if i + 1 < n and toks[i + 1].upos == "PUNCT" else "_"
        lines.append(_conllu_word(tok, misc))
        i += 1
    return "\n".join(lines) + "\n"


def _conllu_word(tok: _Tok, misc: str) -> str:
    head = tok.head.idx if tok.head is not None else 0
    return f"{tok.idx}\t{tok.form}\t{tok.lemma}\t{tok.upos}\t_\t{tok.feats}\t{head}\t{tok.deprel}\t_\t{misc}"


# --------------------------------------------------------------------------------------------
# NLI: hypotheses derived from the premise by label-specific edits

_Path = tuple[Any, ...]


def _np_paths(cl: _Clause) -> list[tuple[_Path, _NP]]:
    paths: list[tuple[_Path, _NP]] = [(("agent",), cl.agent)]
    if cl.patient is not None:
        paths.append((("patient",), cl.patient))
    paths.extend((("obl", i), np) for i, (_, np) in enumerate(cl.obls))
    return paths


def _set_np(cl: _Clause, path: _Path, np: _NP) -> _Clause:
    if path[0] == "agent":
        return replace(cl, agent=np)
    if path[0] == "patient":
        return replace(cl, patient=np)
    obls = list(cl.obls)
    obls[path[1]] = (obls[path[1]][0], np)
    return replace(cl, obls=tuple(obls))


def _adjectives_of(cl: _Clause) -> set[int]:
    return {a for _, np in _np_paths(cl) for a in np.adjs}


class _NliBuilder:
    """Premise/hypothesis pairs whose label follows from the edit that produced the hypothesis.

    entailment: drop a modifier, a conjunct or a possessor, or replace a noun by its hypernym;
    contradiction: negate, swap an adjective for its antonym, change the predicate or agent;
    neutral: add an adjective/oblique/adverb/time phrase absent from the premise, or replace a
    hypernym by a hyponym. Any label may additionally drop one modifier first, so that length
    and word overlap alone do not give the label away.
    """

    def __init__(self, grammar: _Grammar) -> None:
        self.grammar = grammar
        self.inv = grammar.inv

    def drops(self, cl: _Clause) -> list[tuple[Any, ...]]:
        ops: list[tuple[Any, ...]] = []
        for path, np in _np_paths(cl):
            ops.extend(("drop_adj", path, j) for j in range(len(np.adjs)))
            if np.num is not None:
                ops.append(("drop_num", path))
            if np.poss is not None:
                ops.append(("drop_poss", path))
        ops.extend(("drop_obl", i) for i in range(len(cl.obls)))
        if cl.adv is not None:
            ops.append(("drop_adv",))
        if cl.tmod is not None:
            ops.append(("drop_tmod",))
        if cl.agent.conj is not None:
            ops.append(("drop_conj",))
        return ops

    def label_ops(self, cl: _Clause, premise: _Clause, label: str) -> list[tuple[Any, ...]]:
        inv = self.inv
        if label == "entailment":
            ops = self.drops(cl)
            for path, np in _np_paths(cl):
                cat = inv.noun_cat[np.ref] if np.kind == _NOUN else ""
                if cat in _HYPERNYM_CATEGORIES and np.ref != inv.cat_head[cat]:
                    ops.append(("hyper", path))
            return ops
        if label == "contradiction":
            ops = [("negate",), ("verb",)]
            for path, np in _np_paths(cl):
                ops.extend(("antonym", path, j) for j in range(len(np.adjs)))
            agent = cl.agent
            # a hypernym agent ("the animal") swapped for a hyponym would be neutral, not a contradiction
            specific = agent.kind == _ENT or (
                agent.kind == _NOUN and agent.ref != inv.cat_head[inv.noun_cat[agent.ref]]
            )
            if agent.conj is None and specific:
                ops.append(("agent",))
            return ops
        ops = []
        premise_adjs = _adjectives_of(premise)
        if len(premise_adjs) < _N_ADJECTIVES // 2:
            for path, np in _np_paths(cl):
                if np.kind == _NOUN and len(np.adjs) < 2:
                    ops.append(("add_adj", path))
                cat = inv.noun_cat[np.ref] if np.kind == _NOUN else ""
                if cat in _HYPERNYM_CATEGORIES and np.ref == inv.cat_head[cat]:
                    ops.append(("hypo", path))
        if len(premise.obls) < 2:
            ops.append(("add_obl",))
        if premise.adv is None:
            ops.append(("add_adv",))
        if premise.tmod is None:
            ops.append(("add_tmod",))
        return ops

    def apply(self, rng: random.Random, cl: _Clause, premise: _Clause, op: tuple[Any, ...]) -> _Clause:
        inv = self.inv
        kind = op[0]
        nps = dict(_np_paths(cl))
        if kind == "drop_adj" or kind == "antonym":
            np = nps[op[1]]
            adjs = list(np.adjs)
            if kind == "drop_adj":
                del adjs[op[2]]
            else:
                adjs[op[2]] ^= 1
            return _set_np(cl, op[1], replace(np, adjs=tuple(adjs)))
        if kind == "drop_num":
            return _set_np(cl, op[1], replace(nps[op[1]], num=None))
        if kind == "drop_poss":
            return _set_np(cl, op[1], replace(nps[op[1]], poss=None))
        if kind == "drop_obl":
            return replace(cl, obls=cl.obls[: op[1]] + cl.obls[op[1] + 1 :])
        if kind == "drop_adv":
            return replace(cl, adv=None)
        if kind == "drop_tmod":
            return replace(cl, tmod=None)
        if kind == "drop_conj":
            return replace(cl, agent=replace(cl.agent, conj=None))
        if kind == "hyper":
            np = nps[op[1]]
            return _set_np(cl, op[1], replace(np, ref=inv.cat_head[inv.noun_cat[np.ref]]))
        if kind == "hypo":
            np = nps[op[1]]
            cat = inv.noun_cat[np.ref]
            return _set_np(cl, op[1], replace(np, ref=rng.choice(inv.cat_nouns[cat][1:])))
        if kind == "negate":
            return replace(cl, neg=not cl.neg)
        if kind == "verb":
            pool = inv.transitive if cl.patient is not None else inv.intransitive
            verb = cl.verb
            while verb == cl.verb:
                verb = pool.pick(rng)
            return replace(cl, verb=verb)
        if kind == "agent":
            agent = cl.agent
            ref = agent.ref
            if agent.kind == _ENT:
                same = [i for i, e in enumerate(inv.entities) if e[0] == inv.entities[ref][0] and i != ref]
            else:
                cat = inv.noun_cat[ref]
                same = [i for i in inv.cat_nouns[cat][1:] if i != ref]
            return replace(cl, agent=replace(agent, ref=rng.choice(same)))
        if kind == "add_adj":
            np = nps[op[1]]
            new = self.grammar.adjectives(rng, 1, avoid=_adjectives_of(premise) | set(np.adjs))
            return _set_np(cl, op[1], replace(np, adjs=np.adjs + new))
        if kind == "add_obl":
            used = {key for key, _ in premise.obls} | {key for key, _ in cl.obls}
            key = rng.choice([k for k in _OBL_KEYS if k not in used])
            return replace(cl, obls=cl.obls + ((key, self.grammar.participant(rng, key, 0.2)),))
        if kind == "add_adv":
            return replace(cl, adv=inv.adverbs.pick(rng))
        if kind == "add_tmod":
            return replace(cl, tmod=self.grammar.time_np(rng))
        raise ValueError(f"unknown NLI edit {kind}")

    def pair(self, rng: random.Random, label: str) -> tuple[_Clause, _Clause]:
        while True:
            premise = replace(self.grammar.sentence(rng, 0.2, coord=False, max_len=20), neg=False)
            hyp = premise
            drops = self.drops(hyp)
            if drops and rng.random() < 0.4:
                hyp = self.apply(rng, hyp, premise, rng.choice(drops))
            ops = self.label_ops(hyp, premise, label)
            if not ops:
                continue
            hyp = self.apply(rng, hyp, premise, rng.choice(ops))
            if hyp != premise:
                return premise, hyp


# --------------------------------------------------------------------------------------------
# Writing the suite


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def _split_sizes(config: SyntheticConfig, task: str) -> list[tuple[str, int]]:
    if task == "ud":
        sizes = (config.train_sentences, config.dev_sentences, config.test_sentences)
    elif task == "nli":
        sizes = (config.nli_train_pairs, config.nli_dev_pairs, config.nli_test_pairs)
    else:
        sizes = (config.mt_train_sentences, config.mt_dev_sentences, config.mt_test_sentences)
    return list(zip(SPLITS, sizes, strict=True))


def _write_ud_and_ner(
    config: SyntheticConfig, root: Path, grammar: _Grammar, realizers: list[_Realizer]
) -> None:
    for split, size in _split_sizes(config, "ud"):
        rng = _rng(config.seed, "ud", split)
        latents = [grammar.sentence(rng, 0.15) for _ in range(size)]
        for r in realizers:
            blocks = [
                _conllu_block(f"{r.code}-{split}-{n}", r.sentence(cl)) for n, cl in enumerate(latents, 1)
            ]
            _write_text(root / "ud" / r.code / f"{r.code}_synth-ud-{split}.conllu", "\n".join(blocks) + "\n")
    for split, size in _split_sizes(config, "ud"):
        # NER data is entity-dense like WikiANN, so it gets its own latent sentences
        rng = _rng(config.seed, "ner", split)
        latents = [grammar.sentence(rng, 0.6) for _ in range(size)]
        for r in realizers:
            blocks = []
            for cl in latents:
                blocks.append("\n".join(f"{form} {tag}" for form, tag in _surface_tokens(r.sentence(cl))))
            _write_text(root / "ner" / r.code / f"{split}.txt", "\n\n".join(blocks) + "\n")


def _write_nli(config: SyntheticConfig, root: Path, grammar: _Grammar, realizers: list[_Realizer]) -> None:
    builder = _NliBuilder(grammar)
    for split, size in _split_sizes(config, "nli"):
        rng = _rng(config.seed, "nli", split)
        labels = [NLI_LABELS[i % 3] for i in range(size)]
        rng.shuffle(labels)
        pairs = [builder.pair(rng, label) for label in labels]
        for r in realizers:
            lines = ["id\tlanguage\tpremise\thypothesis\tlabel"]
            for n, ((premise, hyp), label) in enumerate(zip(pairs, labels, strict=True), 1):
                p_text = _surface(r.sentence(premise))
                h_text = _surface(r.sentence(hyp))
                lines.append(f"synth-nli-{split}-{n}\t{r.code}\t{p_text}\t{h_text}\t{label}")
            _write_lines(root / "nli" / split / f"{r.code}.tsv", lines)


def _write_mt(config: SyntheticConfig, root: Path, grammar: _Grammar, realizers: list[_Realizer]) -> None:
    for split, size in _split_sizes(config, "mt"):
        rng = _rng(config.seed, "mt", split)
        latents = [grammar.sentence(rng, 0.15) for _ in range(size)]
        _write_lines(root / "mt" / split / "ids.txt", (f"synth-mt-{split}-{n}" for n in range(1, size + 1)))
        for r in realizers:
            _write_lines(root / "mt" / split / f"{r.code}.txt", (_surface(r.sentence(cl)) for cl in latents))


def _write_text_corpora(
    config: SyntheticConfig, root: Path, grammar: _Grammar, realizers: list[_Realizer]
) -> None:
    """Monolingual MLM text is *not* parallel: each language samples its own sentences, like
    Wikipedias do, so pretraining cannot cheat by aligning translations."""
    n_dev = max(1, config.text_sentences // 10)
    for r in realizers:
        rng = _rng(config.seed, "text", r.code)
        train = [_surface(r.sentence(grammar.sentence(rng, 0.15))) for _ in range(config.text_sentences)]
        seen = set(train)
        dev: list[str] = []
        for _ in range(50 * n_dev):
            if len(dev) == n_dev:
                break
            line = _surface(r.sentence(grammar.sentence(rng, 0.15)))
            if line not in seen:  # held out means held out, even for short sentences
                seen.add(line)
                dev.append(line)
        _write_lines(root / "text" / r.code / "train.txt", train)
        _write_lines(root / "text" / r.code / "dev.txt", dev)


def _language_record(lang: _Lang) -> dict[str, Any]:
    info = lang.info
    return {
        "code": info.code,
        "name": info.name,
        "family": info.family,
        "typology": dict(info.typology),
        "typology_vector": info.typology_vector,
        "sound_changes": [_describe_change(c) for c in lang.changes],
        "contractions": dict(lang.fused),
    }


def _write_suite(config: SyntheticConfig, root: Path) -> None:
    inv = _Inventory(config.seed)
    languages = _build_languages(config, inv)
    grammar = _Grammar(inv)
    realizers = [_Realizer(lang, inv) for lang in languages]
    _write_ud_and_ner(config, root, grammar, realizers)
    _write_nli(config, root, grammar, realizers)
    _write_mt(config, root, grammar, realizers)
    _write_text_corpora(config, root, grammar, realizers)
    meta = {
        "generator_version": GENERATOR_VERSION,
        "features": list(TYPOLOGY_FEATURES),
        "languages": [_language_record(lang) for lang in languages],
    }
    _write_text(root / "languages.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    # suite.json last: its presence with the right fingerprint is what marks a complete suite
    suite = {
        "generator_version": GENERATOR_VERSION,
        "config": config.to_dict(),
        "fingerprint": config.fingerprint(),
    }
    _write_text(root / "suite.json", json.dumps(suite, indent=2, sort_keys=True) + "\n")


def _is_complete(out_dir: Path, fingerprint: str) -> bool:
    try:
        data = json.loads((out_dir / "suite.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("fingerprint") == fingerprint


def generate_suite(config: SyntheticConfig, out_dir: Path) -> Path:
    """Materialise the suite once; concurrent or interrupted runs never expose a partial suite.

    Files are built in a sibling temporary directory and renamed into place, so readers see
    either nothing, an old complete suite, or the new complete suite.
    """
    out_dir = Path(out_dir)
    fingerprint = config.fingerprint()
    if _is_complete(out_dir, fingerprint):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o755)
        _write_suite(config, tmp)
        if out_dir.exists():
            if _is_complete(out_dir, fingerprint):  # another process won the race
                return out_dir
            stale = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, stale)
            try:
                os.replace(tmp, out_dir)
            finally:
                shutil.rmtree(stale, ignore_errors=True)
        else:
            try:
                os.replace(tmp, out_dir)
            except OSError:
                if not _is_complete(out_dir, fingerprint):
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def load_languages(suite_dir: Path) -> list[SyntheticLanguage]:
    data = json.loads((Path(suite_dir) / "languages.json").read_text(encoding="utf-8"))
    return [
        SyntheticLanguage(
            code=rec["code"],
            name=rec["name"],
            family=rec["family"],
            typology={f: int(rec["typology"][f]) for f in TYPOLOGY_FEATURES},
        )
        for rec in data["languages"]
    ]
