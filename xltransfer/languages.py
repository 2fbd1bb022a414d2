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
    if entry is None:
        return None
    alpha2 = getattr(entry, "alpha_2", None)
    return Language(alpha2 or entry.alpha_3, entry.alpha_3, entry.name)


def normalise(code: str) -> str:
    """Normalised code; raises ValueError for a code ISO 639 does not know."""
    language = lookup(code)
    if language is None:
        raise ValueError(f"'{code}' is not an ISO 639-1 or ISO 639-3 language code")
    return language.code


def is_local_use(code: str) -> bool:
    return bool(_LOCAL_USE.match(code))


def in_mbert(code: str) -> bool:
    return normalise(code) in MBERT_LANGUAGES
