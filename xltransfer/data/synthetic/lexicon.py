"""The suite's languages: phonologies, family proto-lexicons changed by regular sound changes,
word-order typology, and each language's words."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from xltransfer.data.synthetic.inventory import (
    _ADP_KEYS,
    _N_ADJECTIVES,
    _N_ADVERBS,
    _N_PRONOUNS,
    _N_VERBS,
    _NOUN_CATEGORIES,
    _NUMERALS,
    _Inventory,
    _rng,
)
from xltransfer.options import SyntheticConfig
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
