"""Language codes: validation, normalisation, and mBERT coverage.

Codes are normalised the way BCP 47 does it: the ISO 639-1 code where one exists ("tr"),
otherwise the ISO 639-3 code ("hsb", "wol" stays "wo"). ISO 639-3 reserves ``qaa``–``qtz``
for local use; the synthetic suite takes its language codes from that range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import pycountry

# The 104 Wikipedia languages of multilingual BERT (google-research/bert, multilingual.md).
# Chinese appears once (Simplified and Traditional share the code); Serbo-Croatian is "sh".
MBERT_LANGUAGES: frozenset[str] = frozenset(
    """af sq ar an hy ast az ba eu bar be bn bpy bs br bg my ca ceb ce zh cv hr cs da nl en et fi fr gl
    ka de el gu ht he hi hu is io id ga it ja jv kn kk ky ko la lv lt lmo nds lb mk mg ms ml mr min ne
    new no nn oc fa pms pl pt pa ro ru sco sr sh scn sk sl azb es su sw sv tl tg ta tt te tr uk ur uz vi
    vo war cy fy pnb yo th mn""".split()
)

_LOCAL_USE = re.compile(r"^q[a-t][a-z]$")


@dataclass(frozen=True)
class Language:
    code: str  # normalised (ISO 639-1 if it exists, else ISO 639-3)
    iso3: str
    name: str


@cache
def lookup(code: str) -> Language | None:
    """The language for an ISO 639-1 or 639-3 code (any case), or None if there is none."""
    raw = code.strip().lower()
    if _LOCAL_USE.match(raw):
        return Language(raw, raw, f"local-use language {raw}")
    if raw == "sh":  # Serbo-Croatian: retired from ISO 639-1 but used by mBERT and Wikipedia
        return Language("sh", "hbs", "Serbo-Croatian")
    entry = None
    if len(raw) == 2:
        entry = pycountry.languages.get(alpha_2=raw)
    elif len(raw) == 3:
        entry = pycountry.languages.get(alpha_3=raw)
    if entry is None and len(raw) == 3:
        # ISO 639-2/639-5 collective codes that datasets use as languages (AmericasNLI's "nah")
        group = pycountry.language_families.get(alpha_3=raw)
        if group is not None:
            return Language(raw, raw, group.name)
    if entry is None:
        return None
    alpha2 = getattr(entry, "alpha_2", None)
    return Language(alpha2 or entry.alpha_3, entry.alpha_3, entry.name)


def normalise(code: str) -> str:
    """Normalised code; raises ValueError for a code ISO 639 does not know, naming close ones."""
    language = lookup(code)
    if language is None:
        close = suggest(code)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"'{code}' is not an ISO 639-1 or ISO 639-3 language code{hint}")
    return language.code


@cache
def _all_codes() -> dict[str, str]:
    """Every ISO 639-1/639-3 code and lower-cased name -> normalised code."""
    known: dict[str, str] = {}
    for entry in pycountry.languages:
        code = getattr(entry, "alpha_2", None) or entry.alpha_3
        for key in (entry.alpha_3, getattr(entry, "alpha_2", None), entry.name.lower()):
            if key:
                known.setdefault(key, code)
    return known


def suggest(text: str, n: int = 3) -> list[str]:
    """Close known codes for a mistyped one ("eng1" -> "en"; "turkish" -> "tr")."""
    import difflib

    known = _all_codes()
    raw = text.strip().lower()
    if raw in known:
        return [known[raw]]
    matches = difflib.get_close_matches(raw, list(known), n=n * 3, cutoff=0.75)
    out: list[str] = []
    for match in matches:
        if known[match] not in out:
            out.append(known[match])
    return out[:n]


# -- URIEL (lang2vec): families and typology --------------------------------------------------
# MAD-G's language vector: URIEL syntax_knn + phonology_knn + inventory_knn (103 + 28 + 158 = 289
# dimensions; Ansell et al. 2021, §2), k-NN-imputed so every URIEL language has one.
TYPOLOGY_FEATURE_SETS = "syntax_knn+phonology_knn+inventory_knn"
TYPOLOGY_DIMENSIONS = 289


def _lang2vec():
    """lang2vec's module. Its package also installs a ``lang2vec.py`` script next to ``xlt`` in the
    environment's bin folder, which Python puts first on ``sys.path`` when ``xlt`` runs and which
    would shadow the package: such folders are left out while importing it."""
    import os
    import sys
    import warnings

    shadowing = [p for p in sys.path if os.path.isfile(os.path.join(p or ".", "lang2vec.py"))]
    module = sys.modules.get("lang2vec")
    if module is not None and not hasattr(module, "__path__"):  # the script, imported by mistake
        del sys.modules["lang2vec"]
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in shadowing]
    try:
        with warnings.catch_warnings():  # lang2vec imports the deprecated pkg_resources
            warnings.simplefilter("ignore")
            import lang2vec.lang2vec as l2v
    finally:
        sys.path[:] = saved
    return l2v


MISSING = "--"  # lang2vec's marker for a value URIEL does not have


def uriel_code(code: str) -> str:
    """The ISO 639-3 code lang2vec looks a language up by. It maps two-letter codes with its own
    table, so a macrolanguage resolves as lang2vec resolves it ("ar" -> "ara", "kv" -> "kom");
    other codes are taken as they are."""
    known = lookup(code)
    if known is None:
        return code
    return _lang2vec().LETTER_CODES.get(known.code, known.iso3)


@cache
def _uriel_languages(feature_set: str) -> frozenset[str]:
    """The languages of the URIEL file behind a feature set. ``lang2vec.LANGUAGES`` cannot stand in
    for it: it misses languages lang2vec has features for (ar, fa, sw, qu, gn, ...). Only the
    file's language list is read, not its features."""
    import os

    import numpy as np

    l2v = _lang2vec()
    filename = l2v.FEATURE_SETS_DICT[feature_set][0]
    with np.load(os.path.join(os.path.dirname(l2v.__file__), "data", filename)) as database:
        return frozenset(str(code) for code in database["langs"])


_FEATURES: dict[tuple[str, str], tuple[tuple[str, ...], tuple | None]] = {}


def _features(codes: list[str], feature_sets: str) -> dict[str, tuple[tuple[str, ...], tuple | None]]:
    """(feature names, values) per code from lang2vec, values None where URIEL lacks the language;
    a value URIEL lacks stays lang2vec's MISSING marker. One lang2vec call serves every code not
    seen before (each call reloads its feature files)."""
    l2v = _lang2vec()
    queried = {code: uriel_code(code) for code in codes}
    new = sorted({u for u in queried.values() if (feature_sets, u) not in _FEATURES})
    if new:
        # every file of a "+"-joined set must know the language (an unknown one makes lang2vec raise)
        known = set.intersection(*(set(_uriel_languages(part)) for part in feature_sets.split("+")))
        asked = [u for u in new if u in known]
        found = l2v.get_features(asked, feature_sets, header=True) if asked else {"CODE": []}
        names = tuple(str(name) for name in found["CODE"])
        for u in new:
            values = found.get(u)
            _FEATURES[(feature_sets, u)] = (names, None if values is None else tuple(values))
    return {code: _FEATURES[(feature_sets, u)] for code, u in queried.items()}


def lineages(codes: list[str]) -> dict[str, tuple[str, ...]]:
    """Glottolog classification nodes (root first) from URIEL's ``fam`` features, per code.

    URIEL lists the nodes in tree order, so the first is the family and the second the level
    below it. A language URIEL lacks, or lists without a classification (Quechua, ``que``), has
    none. One lang2vec call serves the whole list."""
    lineage = {}
    for code, (names, values) in _features(codes, "fam").items():
        nodes = () if values is None else (names[j][2:] for j, v in enumerate(values) if v == 1.0)
        lineage[code] = tuple(nodes)
    return lineage


def family(code: str) -> str | None:
    """Top-level family in URIEL/Glottolog (e.g. "Indo-European"); None when URIEL lacks the language."""
    lineage = lineages([code])[code]
    return lineage[0] if lineage else None


def genus(code: str) -> str | None:
    """The level below the family (e.g. "Germanic"), WALS's genus level in most cases."""
    lineage = lineages([code])[code]
    return lineage[1] if len(lineage) > 1 else (lineage[0] if lineage else None)


def typology_vectors(codes: list[str]) -> dict[str, list[float]]:
    """The 289-dimensional URIEL vectors MAD-G generates adapters from, for many languages with one
    lang2vec call; a language without one (unknown to URIEL, or a value missing) is an error."""
    vectors = {}
    for code, (_, values) in _features(codes, TYPOLOGY_FEATURE_SETS).items():
        if values is None or MISSING in values:
            why = "has no typology vector" if values is None else "lacks some of the 289 typology features"
            raise ValueError(f"URIEL {why} for '{code}' (lang2vec code {uriel_code(code)})")
        vectors[code] = [float(x) for x in values]
        assert len(vectors[code]) == TYPOLOGY_DIMENSIONS
    return vectors


def typology_vector(code: str) -> list[float]:
    """The 289-dimensional URIEL vector MAD-G generates adapters from."""
    return typology_vectors([code])[code]


def typology_dimensions(codes) -> int:
    """The length of the typology vectors of these languages: URIEL's, or the synthetic suite's."""
    if codes and all(is_local_use(code) for code in codes):
        from xltransfer.data.synthetic import TYPOLOGY_FEATURES

        return len(TYPOLOGY_FEATURES)
    return TYPOLOGY_DIMENSIONS


def is_local_use(code: str) -> bool:
    return bool(_LOCAL_USE.match(code))


def in_mbert(code: str) -> bool:
    return normalise(code) in MBERT_LANGUAGES
