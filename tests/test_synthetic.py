"""The synthetic suite must be valid data in the real formats and carry the transfer signal."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import conllu
import pytest

from xltransfer.data.synthetic import (
    NLI_LABELS,
    SPLITS,
    TYPOLOGY_FEATURES,
    SyntheticConfig,
    SyntheticLanguage,
    generate_suite,
    load_languages,
)

SMALL = SyntheticConfig(
    seed=3,
    family_sizes=(2, 2, 1),
    train_sentences=80,
    dev_sentences=20,
    test_sentences=20,
    text_sentences=300,
    nli_train_pairs=60,
    nli_dev_pairs=30,
    nli_test_pairs=30,
    mt_train_sentences=40,
    mt_dev_sentences=10,
    mt_test_sentences=10,
)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_suite(SMALL, tmp_path_factory.mktemp("synthetic") / "suite")


@pytest.fixture(scope="module")
def languages(suite: Path) -> list[SyntheticLanguage]:
    return load_languages(suite)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_languages_metadata(suite: Path, languages: list[SyntheticLanguage]) -> None:
    assert [lang.code for lang in languages] == ["qaa", "qab", "qac", "qad", "qae"]
    assert [lang.family for lang in languages] == ["Synthetic-A"] * 2 + ["Synthetic-B"] * 2 + ["Synthetic-C"]
    assert len({lang.name for lang in languages}) == len(languages)
    for lang in languages:
        assert len(lang.typology_vector) == len(TYPOLOGY_FEATURES)
        assert set(lang.typology_vector) <= {0.0, 1.0}
        assert sum(lang.typology[f] for f in ("S_SVO", "S_SOV", "S_VSO")) == 1
        assert sum(lang.typology[f] for f in ("S_PREPOSITIONS", "S_POSTPOSITIONS", "S_CASE_SUFFIXES")) == 1
    assert len({tuple(lang.typology_vector) for lang in languages}) > 1
    meta = json.loads((suite / "languages.json").read_text(encoding="utf-8"))
    assert meta["features"] == list(TYPOLOGY_FEATURES)
    assert meta["languages"][0]["typology_vector"] == languages[0].typology_vector
    suite_meta = json.loads((suite / "suite.json").read_text(encoding="utf-8"))
    assert suite_meta["fingerprint"] == SMALL.fingerprint()


def test_fingerprint_tracks_config() -> None:
    assert SMALL.fingerprint() == SyntheticConfig(**SMALL.to_dict()).fingerprint()
    assert SMALL.fingerprint() != SyntheticConfig(**{**SMALL.to_dict(), "seed": 4}).fingerprint()
    with pytest.raises(ValueError):
        SyntheticConfig(family_sizes=())


def test_deterministic(tmp_path: Path, suite: Path) -> None:
    again = generate_suite(SMALL, tmp_path / "again")
    assert _snapshot(again) == _snapshot(suite)
    other = generate_suite(SyntheticConfig(**{**SMALL.to_dict(), "seed": 4}), tmp_path / "other")
    assert (other / "mt/train/qaa.txt").read_bytes() != (suite / "mt/train/qaa.txt").read_bytes()


def test_idempotent(tmp_path: Path) -> None:
    config = SyntheticConfig(**{**SMALL.to_dict(), "train_sentences": 5, "text_sentences": 20})
    out = generate_suite(config, tmp_path / "suite")
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert generate_suite(config, out) == out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps
    assert not list((tmp_path / ".staging").iterdir())  # no staged folders left behind
    assert {p.name for p in tmp_path.iterdir()} == {"suite", ".staging", ".locks"}
    # a different config in the same place replaces the suite
    changed = SyntheticConfig(**{**config.to_dict(), "seed": 9})
    generate_suite(changed, out)
    assert json.loads((out / "suite.json").read_text())["fingerprint"] == changed.fingerprint()


def _check_tree(sentence: conllu.TokenList) -> None:
    words = [t for t in sentence if isinstance(t["id"], int)]
    assert [w["id"] for w in words] == list(range(1, len(words) + 1))
    heads = {w["id"]: w["head"] for w in words}
    roots = [w for w in words if w["head"] == 0]
    assert len(roots) == 1 and roots[0]["deprel"] == "root"
    assert all(0 <= h <= len(words) for h in heads.values())
    for start in heads:  # every word reaches the root without revisiting a node
        seen, node = set(), start
        while node != 0:
            assert node not in seen, f"cycle through word {node}"
            seen.add(node)
            node = heads[node]


def _surface_from_tokens(sentence: conllu.TokenList) -> str:
    text, skip_until = [], 0
    for tok in sentence:
        if isinstance(tok["id"], tuple):
            skip_until = tok["id"][2]
        elif tok["id"] <= skip_until:
            continue
        text.append(tok["form"])
        misc = tok["misc"] or {}
        text.append("" if misc.get("SpaceAfter") == "No" else " ")
    return "".join(text).strip()


def test_conllu_valid(suite: Path, languages: list[SyntheticLanguage]) -> None:
    upos_seen: set[str] = set()
    deprels_seen: set[str] = set()
    for lang in languages:
        mwt_count = 0
        for split in SPLITS:
            path = suite / "ud" / lang.code / f"{lang.code}_synth-ud-{split}.conllu"
            text = path.read_text(encoding="utf-8")
            assert all(len(line.split("\t")) == 10 for line in text.splitlines() if line and line[0] != "#")
            sentences = conllu.parse(text)
            assert len(sentences) == getattr(SMALL, f"{split}_sentences")
            for n, sentence in enumerate(sentences, 1):
                assert sentence.metadata["sent_id"] == f"{lang.code}-{split}-{n}"
                assert sentence.metadata["text"] == _surface_from_tokens(sentence)
                _check_tree(sentence)
                for tok in sentence:
                    if isinstance(tok["id"], tuple):
                        mwt_count += 1
                        start, _, end = tok["id"]
                        parts = [t for t in sentence if isinstance(t["id"], int) and start <= t["id"] <= end]
                        assert [p["upos"] for p in parts] == ["ADP", "DET"]
                    else:
                        upos_seen.add(tok["upos"])
                        deprels_seen.add(tok["deprel"])
        if lang.typology["S_CONTRACTIONS"]:
            assert mwt_count > 0, lang.code
        else:
            assert mwt_count == 0, lang.code
    assert any(lang.typology["S_CONTRACTIONS"] for lang in languages)
    assert {"NOUN", "VERB", "ADJ", "PROPN", "PUNCT", "PRON"} <= upos_seen
    assert {"nsubj", "obj", "amod", "obl", "punct", "root", "flat:name", "nmod:poss"} <= deprels_seen


def test_case_suffix_language_has_no_adpositions(suite: Path, languages: list[SyntheticLanguage]) -> None:
    case_langs = [lang for lang in languages if lang.typology["S_CASE_SUFFIXES"]]
    assert case_langs
    for lang in case_langs:
        text = (suite / "ud" / lang.code / f"{lang.code}_synth-ud-train.conllu").read_text(encoding="utf-8")
        words = [t for s in conllu.parse(text) for t in s if isinstance(t["id"], int)]
        assert not any(w["upos"] == "ADP" for w in words)
        assert any((w["feats"] or {}).get("Case") == "Loc" for w in words)


def _profile(suite: Path, code: str) -> tuple[set[str], set[str]]:
    grams: set[str] = set()
    types: set[str] = set()
    for line in (suite / "text" / code / "train.txt").read_text(encoding="utf-8").splitlines():
        for token in line.split():
            token = token.strip(".,")
            if token[:1].isupper():  # proper names are shared by design; compare the languages proper
                continue
            types.add(token)
            padded = f" {token} "
            grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams, types


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b)


def test_relatives_share_subwords(suite: Path, languages: list[SyntheticLanguage]) -> None:
    profiles = {lang.code: _profile(suite, lang.code) for lang in languages}
    related, unrelated = [], []
    for a, b in itertools.combinations(languages, 2):
        grams = _jaccard(profiles[a.code][0], profiles[b.code][0])
        types = _jaccard(profiles[a.code][1], profiles[b.code][1])
        (related if a.family == b.family else unrelated).append((grams, types))
    assert related and unrelated
    assert min(g for g, _ in related) > max(g for g, _ in unrelated) + 0.25
    assert min(g for g, _ in related) > 5 * max(g for g, _ in unrelated)
    assert min(t for _, t in related) > max(t for _, t in unrelated)


def test_ner_iob2(suite: Path, languages: list[SyntheticLanguage]) -> None:
    entity_types: Counter[str] = Counter()
    multi_token = 0
    for lang in languages:
        for split in SPLITS:
            blocks = (
                (suite / "ner" / lang.code / f"{split}.txt").read_text(encoding="utf-8").strip().split("\n\n")
            )
            assert len(blocks) == getattr(SMALL, f"{split}_sentences")
            for block in blocks:
                previous = "O"
                for line in block.split("\n"):
                    token, tag = line.split(" ")
                    assert token
                    if tag != "O":
                        prefix, etype = tag.split("-")
                        assert etype in {"PER", "LOC", "ORG"}
                        assert prefix in {"B", "I"}
                        if prefix == "I":
                            assert previous != "O" and previous[2:] == etype, block
                            multi_token += 1
                        else:
                            entity_types[etype] += 1
                    previous = tag
    assert set(entity_types) == {"PER", "LOC", "ORG"}
    assert multi_token > 0


def test_nli(suite: Path, languages: list[SyntheticLanguage]) -> None:
    for split in SPLITS:
        ids = None
        for lang in languages:
            lines = (suite / "nli" / split / f"{lang.code}.tsv").read_text(encoding="utf-8").splitlines()
            assert lines[0] == "id\tlanguage\tpremise\thypothesis\tlabel"
            rows = [line.split("\t") for line in lines[1:]]
            assert all(len(row) == 5 for row in rows)
            assert all(row[1] == lang.code and row[2] and row[3] and row[2] != row[3] for row in rows)
            labels = Counter(row[4] for row in rows)
            assert set(labels) == set(NLI_LABELS)
            assert max(labels.values()) - min(labels.values()) <= 1
            row_ids = [(row[0], row[4]) for row in rows]
            assert len({i for i, _ in row_ids}) == len(row_ids)
            ids = ids or row_ids
            assert row_ids == ids  # same pair, same label, in every language


def test_mt_parallel(suite: Path, languages: list[SyntheticLanguage]) -> None:
    for split in SPLITS:
        ids = (suite / "mt" / split / "ids.txt").read_text(encoding="utf-8").splitlines()
        assert len(ids) == getattr(SMALL, f"mt_{split}_sentences") == len(set(ids))
        per_language = [
            (suite / "mt" / split / f"{lang.code}.txt").read_text(encoding="utf-8").splitlines()
            for lang in languages
        ]
        for lines in per_language:
            assert len(lines) == len(ids)
            assert all(line.strip() and "\t" not in line for line in lines)
        # parallel: the same latent sentence carries the same proper names everywhere
        for i in range(len(ids)):
            names = {
                tuple(sorted(w.split("'")[0].strip(".,") for w in lines[i].split() if w[:1].isupper()))
                for lines in per_language
            }
            assert len(names) == 1


def test_text_dev_held_out(suite: Path, languages: list[SyntheticLanguage]) -> None:
    for lang in languages:
        train = (suite / "text" / lang.code / "train.txt").read_text(encoding="utf-8").splitlines()
        dev = (suite / "text" / lang.code / "dev.txt").read_text(encoding="utf-8").splitlines()
        assert len(train) == SMALL.text_sentences
        assert len(dev) == SMALL.text_sentences // 10
        assert not set(dev) & set(train)
        assert all(line.strip() for line in train + dev)
