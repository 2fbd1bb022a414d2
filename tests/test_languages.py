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


# Codes `lang2vec.LANGUAGES` leaves out although lang2vec has their features (issue 11 §2);
# macrolanguages resolve as lang2vec resolves them (ar -> ara, kv -> kom, gn -> grn, ...)
URIEL_BUT_NOT_IN_LANGUAGES = {
    "ar": "Afro-Asiatic",
    "fa": "Indo-European",
    "sw": "Atlantic-Congo",
    "qu": None,  # URIEL lists Quechua (que) without a Glottolog classification: no family node
    "gn": "Tupian",
    "mn": "Mongolic",
    "uz": "Turkic",
    "sq": "Indo-European",
    "om": "Afro-Asiatic",
    "za": "Tai-Kadai",
    "kv": "Uralic",
    "smn": "Uralic",
    "olo": "Uralic",
}


def test_every_code_uriel_knows_gets_its_typology_vector_and_family():
    codes = list(URIEL_BUT_NOT_IN_LANGUAGES)
    vectors = languages.typology_vectors(codes)
    assert {code: len(vector) for code, vector in vectors.items()} == dict.fromkeys(codes, 289)
    assert len({tuple(vector) for vector in vectors.values()}) == len(codes)  # each its own
    lineage = languages.lineages(codes)
    assert {
        code: (nodes[0] if nodes else None) for code, nodes in lineage.items()
    } == URIEL_BUT_NOT_IN_LANGUAGES
    assert languages.genus("ar") == languages.genus("mt") == "Semitic"
    assert languages.uriel_code("ar") == "ara" and languages.uriel_code("kv") == "kom"
    with pytest.raises(ValueError, match="no typology vector for 'qaa'"):
        languages.typology_vector("qaa")  # a local-use code: not in URIEL
