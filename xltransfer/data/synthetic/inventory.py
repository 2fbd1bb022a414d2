"""The concepts every language of the suite names (one inventory, shared by all), and the
suite's deterministic randomness."""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Iterable, Sequence
from itertools import accumulate

from xltransfer.options import GENERATOR_VERSION

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
