"""Language codes, mBERT coverage, URIEL families and typology vectors."""

from __future__ import annotations

import pytest

from xltransfer import languages


def test_every_language_of_the_shared_data_maps_between_iso_639_1_and_3(shared_data):
    codes = {p.name.split("_")[0] for p in (shared_data / "ud").glob("*/*.conllu")}
    codes |= {p.name for p in (shared_data / "ner" / "wikiann_panx").iterdir() if p.is_dir()}
    codes |= {p.name for p in (shared_data / "ner" / "masakhaner2").iterdir() if p.is_dir()}
    codes |= {p.stem for p in (shared_data / "nli" / "americasnli" / "test").glob("*.tsv")}
    codes |= {p.stem for p in (shared_data / "mt" / "pud").glob("*.txt") if p.stem != "ids"}
    for code in codes:
        language = languages.lookup(code)
        assert language is not None, code
        assert languages.normalise(language.iso3) == languages.normalise(code) == language.code
    assert languages.normalise("swa") == "sw" and languages.normalise("wol") == "wo"
    assert languages.normalise("hsb") == "hsb" and languages.normalise("aym") == "ay"


def test_unknown_codes_suggest_close_ones():
    with pytest.raises(ValueError, match="did you mean"):
        languages.normalise("turkish")
    assert languages.suggest("turkish") == ["tr"]
    assert "en" in languages.suggest("eng1")


def test_mbert_coverage():
    assert languages.in_mbert("en") and languages.in_mbert("tur") and languages.in_mbert("yo")
    for unseen in ("mt", "ug", "wo", "fo", "hsb"):  # the unseen targets of BAD-X / Hyper-X
        assert not languages.in_mbert(unseen)


def test_uriel_families_and_typology():
    lineage = languages.lineages(["en", "fo", "tr", "mt", "qaa"])
    assert lineage["en"][:2] == lineage["fo"][:2] == ("Indo-European", "Germanic")
    assert lineage["tr"][0] == "Turkic" and lineage["mt"][0] == "Afro-Asiatic" and lineage["qaa"] == ()
    assert languages.family("ug") == "Turkic" and languages.genus("en") == "Germanic"
    vector = languages.typology_vector("wo")
    assert len(vector) == languages.TYPOLOGY_DIMENSIONS == 289
    assert vector != languages.typology_vector("en")
