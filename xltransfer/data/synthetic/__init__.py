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

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xltransfer.cached_folder import cached_folder, key_lock, set_aside
from xltransfer.data.synthetic.grammar import _Grammar
from xltransfer.data.synthetic.inventory import _Inventory, _rng
from xltransfer.data.synthetic.lexicon import (  # noqa: F401 - public names of the suite
    TYPOLOGY_FEATURES,
    SyntheticLanguage,
    _build_languages,
    _describe_change,
    _Lang,
)
from xltransfer.data.synthetic.nli import _NliBuilder
from xltransfer.data.synthetic.treebanks import _conllu_block, _Realizer, _surface, _surface_tokens
from xltransfer.options import (  # noqa: F401 - the suite's config, declared below the generator
    GENERATOR_VERSION,
    SyntheticConfig,
    family_members,
    language_codes,
)

SPLITS = ("train", "dev", "test")
NLI_LABELS = ("entailment", "neutral", "contradiction")

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
    """Materialise the suite once, as a ``cached_folder``: built in a staging folder and renamed
    into place (readers see the whole suite or none), verified against its sha256 manifest before
    use, and moved aside and generated again when a file changed. A folder holding another
    configuration's suite is replaced."""
    out_dir = Path(out_dir)
    root, key = out_dir.parent, out_dir.name
    fingerprint = config.fingerprint()

    def build(folder: Path) -> None:
        _write_suite(config, folder)

    suite = cached_folder(root, key, build, what="synthetic suite")
    if _is_complete(suite, fingerprint):
        return suite
    with key_lock(root, key):
        if not _is_complete(suite, fingerprint):
            set_aside(
                root, key, f"holds another configuration's suite, not {fingerprint[:16]}", "synthetic suite"
            )
    return cached_folder(root, key, build, what="synthetic suite")


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
