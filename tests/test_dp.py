"""Dependency parsing: tree decoding, UAS/LAS against the official CoNLL 2018 scorer, reading errors,
and a tiny biaffine parser end to end.

Scores: ``xlt evaluate`` gives fractions in [0, 1]; ``udtools.udeval`` gives ``Score`` objects whose
``f1`` is also a fraction (its CLI prints 100 x f1). Comparisons are in percentage points, to 0.01.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner
from xltransfer.tasks.dp import UD_RELATIONS, DependencyParsing, Parse, base_relation

from xltransfer.cli import app
from xltransfer.errors import DataFormatError
from xltransfer.parsing import decode_tree, find_cycle


def _is_tree(heads: list[int] | tuple[int, ...]) -> bool:
    """One root word, HEADs in range, and every word reaches the root (checked without xltransfer)."""
    n = len(heads)
    if sum(h == 0 for h in heads) != 1 or any(not 0 <= h <= n for h in heads):
        return False
    for word in range(1, n + 1):
        node, steps = word, 0
        while node != 0 and steps <= n:
            node, steps = heads[node - 1], steps + 1
        if node != 0:
            return False
    return True


def _total(scores: np.ndarray, heads: list[int] | tuple[int, ...]) -> float:
    return float(sum(scores[i, h] for i, h in enumerate(heads)))


# --- tree decoding ------------------------------------------------------------------------------


def test_greedy_cycle_is_broken():
    scores = np.array(
        [
            [1.0, 0.0, 10.0, 0.0],  # word 1 prefers word 2
            [2.0, 10.0, 0.0, 0.0],  # word 2 prefers word 1: a cycle, and no root at all
            [0.0, 0.0, 9.0, 0.0],
        ]
    )
    greedy = scores.argmax(1).tolist()
    assert find_cycle([-1, *greedy]) is not None
    # root->1->2->3 scores 1+10+9 = 20; root->2->{1,3} scores 2+10+9 = 21
    assert decode_tree(scores) == [2, 0, 2]


def test_two_greedy_roots_become_one():
    scores = np.array([[5.0, 0.0, 1.0], [4.0, 3.0, 0.0]])
    assert scores.argmax(1).tolist() == [0, 0]  # the unconstrained best (9) has two roots
    assert decode_tree(scores) == [0, 1]  # 5+3 = 8 beats [2, 0]: 1+4 = 5


def test_a_greedy_tree_is_kept():
    scores = np.array([[0.0, 0.0, 3.0, 1.0], [5.0, 1.0, 0.0, 2.0], [0.0, 1.0, 4.0, 0.0]])
    assert decode_tree(scores) == scores.argmax(1).tolist() == [2, 0, 2]


def test_single_word_is_the_root():
    assert decode_tree(np.array([[-3.0, 7.0]])) == [0]


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_best_tree_agrees_with_brute_force(n):
    trees = [
        heads
        for heads in itertools.product(range(n + 1), repeat=n)
        if all(h != i + 1 for i, h in enumerate(heads)) and _is_tree(heads)
    ]
    rng = np.random.default_rng(n)
    for scale in (0.1, 1.0, 30.0):
        for _ in range(8):
            scores = rng.normal(size=(n, n + 1)) * scale
            decoded = decode_tree(scores)
            best = max(_total(scores, t) for t in trees)
            assert _is_tree(decoded) and _total(scores, decoded) == pytest.approx(best, abs=1e-9)


def test_long_random_sentences_decode_to_trees():
    rng = np.random.default_rng(7)
    for n in (30, 80):
        scores = rng.normal(size=(n, n + 1))
        assert not _is_tree(scores.argmax(1).tolist())
        assert _is_tree(decode_tree(scores))


def test_bad_scores_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        decode_tree(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        decode_tree(np.array([[np.nan, 1.0]]))


def test_find_cycle():
    assert sorted(find_cycle([-1, 2, 3, 1])) == [1, 2, 3]
    assert find_cycle([-1, 0, 1, 1]) is None
    assert find_cycle([-1, 1]) == [1]
    assert find_cycle([-1, 0, 3, 2, -1]) in ([2, 3], [3, 2])


# --- scoring against udeval ---------------------------------------------------------------------


def _udeval(gold: Path, pred: Path) -> dict[str, float]:
    """The official scorer; ``udtools`` is a test dependency only (GPL), never imported by the package."""
    try:
        from udtools import udeval
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("udtools (the official CoNLL 2018 scorer) is not installed")
    result = udeval.evaluate(udeval.load_conllu_file(str(gold)), udeval.load_conllu_file(str(pred)))
    return {"uas": result["UAS"].f1, "las": result["LAS"].f1}


def _xlt_evaluate(gold: Path, pred: Path) -> dict[str, float]:
    result = CliRunner().invoke(
        app, ["evaluate", "--task", "dp", "--gold", str(gold), "--pred", str(pred), "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _assert_same_as_udeval(gold: Path, pred: Path) -> dict[str, float]:
    ours, official = _xlt_evaluate(gold, pred), _udeval(gold, pred)
    for metric in ("uas", "las"):
        assert 100 * ours[metric] == pytest.approx(100 * official[metric], abs=0.01), metric
    return ours


def _row(word_id: str, form: str, head: str, deprel: str) -> str:
    return "\t".join([word_id, form, form.lower(), "X", "_", "_", head, deprel, "_", "_"])


def _conllu(*sentences: list[tuple[str, str, str, str]]) -> str:
    return "".join(
        f"# sent_id = s{i}\n" + "\n".join(_row(*row) for row in rows) + "\n\n"
        for i, rows in enumerate(sentences, start=1)
    )


# (gold sentence, predicted sentence, UAS, LAS): one rule of the CoNLL 2018 evaluation each
HAND_MADE = {
    "subtypes stripped": (
        [("1", "Its", "2", "nmod:poss"), ("2", "owner", "0", "root"), ("3", "left", "2", "acl:relcl")],
        [("1", "Its", "2", "nmod:tmod"), ("2", "owner", "0", "root"), ("3", "left", "2", "acl")],
        1.0,
        1.0,
    ),
    "subtype kept but base relation wrong": (
        [("1", "Its", "2", "nmod:poss"), ("2", "owner", "0", "root"), ("3", "left", "2", "acl")],
        [("1", "Its", "2", "det:poss"), ("2", "owner", "0", "root"), ("3", "left", "2", "acl")],
        1.0,
        2 / 3,
    ),
    "multiword tokens expanded": (  # 4 syntactic words, 3 surface tokens: a wrong part counts 1 of 4
        [
            ("1", "Il", "2", "nsubj"),
            ("2", "parle", "0", "root"),
            ("3-4", "du", "_", "_"),
            ("3", "de", "5", "case"),
            ("4", "le", "5", "det"),
            ("5", "chat", "2", "obl"),
        ],
        [
            ("1", "Il", "2", "nsubj"),
            ("2", "parle", "0", "root"),
            ("3-4", "du", "_", "_"),
            ("3", "de", "5", "case"),
            ("4", "le", "2", "det"),
            ("5", "chat", "2", "obl"),
        ],
        4 / 5,
        4 / 5,
    ),
    "empty nodes excluded": (  # the empty node's columns differ, yet only the 3 words are scored
        [
            ("1", "Mary", "2", "nsubj"),
            ("2", "won", "0", "root"),
            ("2.1", "won", "_", "_"),
            ("3", "gold", "2", "obj"),
        ],
        [
            ("1", "Mary", "2", "nsubj"),
            ("2", "won", "0", "root"),
            ("2.1", "won", "1", "dep"),
            ("3", "gold", "1", "obj"),
        ],
        2 / 3,
        2 / 3,
    ),
    "punctuation included": (
        [("1", "Go", "0", "root"), ("2", "home", "1", "advmod"), ("3", "!", "1", "punct")],
        [("1", "Go", "0", "root"), ("2", "home", "1", "advmod"), ("3", "!", "2", "punct")],
        2 / 3,
        2 / 3,
    ),
}


@pytest.mark.parametrize("case", sorted(HAND_MADE))
def test_hand_made_rules_match_udeval(tmp_path, case):
    gold_rows, pred_rows, uas, las = HAND_MADE[case]
    gold, pred = tmp_path / "gold.conllu", tmp_path / "pred.conllu"
    # a second sentence that is fully right, so the totals pool over sentences
    right = [("1", "Yes", "0", "root"), ("2", ".", "1", "punct")]
    gold.write_text(_conllu(gold_rows, right), encoding="utf-8")
    pred.write_text(_conllu(pred_rows, right), encoding="utf-8")
    words = sum(1 for row in gold_rows if row[0].isdigit())
    pooled = {
        name: (value * words + len(right)) / (words + len(right))
        for name, value in (("uas", uas), ("las", las))
    }
    assert _assert_same_as_udeval(gold, pred) == pytest.approx(pooled)


def _descends_from(heads: list[int], node: int, ancestor: int) -> bool:
    while node != 0:
        if node == ancestor:
            return True
        node = heads[node - 1]
    return False


def _perturbed(gold: list, seed: int) -> tuple[list[Parse], dict[str, int]]:
    """Some heads moved (never creating a cycle or a second root), some relations changed, some
    relations changed in their subtype only (which LAS must ignore)."""
    rng = random.Random(seed)
    parses, changes = [], {"heads": 0, "relations": 0, "subtypes": 0}
    for sentence in gold:
        heads, deprels = list(sentence.heads), list(sentence.deprels)
        n = len(heads)
        for word in range(1, n + 1):
            if heads[word - 1] == 0:
                continue
            draw = rng.random()
            if draw < 0.15:
                options = [
                    h for h in range(1, n + 1) if h != heads[word - 1] and not _descends_from(heads, h, word)
                ]
                if options:
                    heads[word - 1] = rng.choice(options)
                    changes["heads"] += 1
            elif draw < 0.25:
                base = base_relation(deprels[word - 1])
                deprels[word - 1] = rng.choice([r for r in UD_RELATIONS if r not in (base, "root")])
                changes["relations"] += 1
            elif ":" in deprels[word - 1] and draw < 0.6:
                deprels[word - 1] = base_relation(deprels[word - 1]) + rng.choice(["", ":xx"])
                changes["subtypes"] += 1
        parses.append(Parse(tuple(heads), tuple(deprels)))
    return parses, changes


TREEBANKS = [  # multiword tokens, subtyped relations, and (EWT) empty nodes
    "UD_Turkish-IMST/tr_imst-ud-test.conllu",
    "UD_Maltese-MUDT/mt_mudt-ud-test.conllu",
    "UD_English-EWT/en_ewt-ud-dev.conllu",
    "UD_French-PUD/fr_pud-ud-test.conllu",
]


@pytest.mark.parametrize("relative", TREEBANKS)
def test_perturbed_treebank_matches_udeval(shared_data, tmp_path, relative):
    gold_path = shared_data / "ud" / relative
    task = DependencyParsing()
    gold = task.read_file(gold_path)
    parses, changes = _perturbed(gold, seed=len(relative))
    assert min(changes.values()) > 20
    pred_path = tmp_path / "pred.conllu"
    task.write_predictions(gold, parses, pred_path)
    ours = _assert_same_as_udeval(gold_path, pred_path)
    words = sum(len(s.words) for s in gold)
    # subtype-only changes are not errors; the others are
    assert ours["uas"] == pytest.approx(1 - changes["heads"] / words)
    assert ours["las"] == pytest.approx(1 - (changes["heads"] + changes["relations"]) / words)


# --- reading errors -----------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "data.conllu") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_head_outside_the_sentence_names_the_word_line(tmp_path):
    path = _write(
        tmp_path, _conllu([("1", "A", "0", "root"), ("2", "b", "7", "dep"), ("3", "c", "1", "dep")])
    )
    with pytest.raises(DataFormatError, match="HEAD 7 outside") as error:
        DependencyParsing().read_file(path)
    assert error.value.line == 3  # the comment is line 1


def test_cycle_names_the_sentence_line(tmp_path):
    ok = [("1", "A", "0", "root")]
    cyclic = [("1", "A", "0", "root"), ("2", "b", "3", "dep"), ("3", "c", "2", "dep")]
    path = _write(tmp_path, _conllu(ok, cyclic))
    with pytest.raises(DataFormatError, match="cycle through words 2, 3") as error:
        DependencyParsing().read_file(path)
    assert error.value.line == 4 and "data.conllu:4" in str(error.value)


def test_several_roots_are_refused(tmp_path):
    """As by the CoNLL 2018 scorer (tests/test_conllu_strict.py compares with it)."""
    path = _write(tmp_path, _conllu([("1", "A", "0", "root"), ("2", "b", "0", "parataxis")]))
    with pytest.raises(DataFormatError, match="several roots") as error:
        DependencyParsing().read_file(path)
    assert error.value.line == 3


@pytest.mark.parametrize(
    ("head", "deprel", "message"),
    [("_", "dep", "no HEAD"), ("1", "nsubjx:pass", "unknown relation 'nsubjx:pass'")],
)
def test_gold_needs_a_head_and_a_universal_relation(tmp_path, head, deprel, message):
    path = _write(tmp_path, _conllu([("1", "A", "0", "root"), ("2", "b", head, deprel)]))
    with pytest.raises(DataFormatError, match=message) as error:
        DependencyParsing().read_file(path)
    assert error.value.line == 3


def test_cli_bad_gold_and_misaligned_prediction_exit_2(tmp_path):
    good = [("1", "A", "0", "root"), ("2", "b", "1", "dep")]
    gold = _write(tmp_path, _conllu(good, good), "gold.conllu")
    bad_gold = _write(tmp_path, "1\tA\ta\tX\t_\t_\t0\troot\t_\n\n", "bad.conllu")
    other = _write(tmp_path, _conllu(good, [("1", "A", "0", "root"), ("2", "c", "1", "dep")]), "pred.conllu")
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "--task", "dp", "--gold", str(bad_gold), "--pred", str(gold)])
    assert result.exit_code == 2 and "bad.conllu:1" in result.stderr and "10 tab-separated" in result.stderr
    result = runner.invoke(app, ["evaluate", "--task", "dp", "--gold", str(gold), "--pred", str(other)])
    assert result.exit_code == 2 and "pred.conllu:7" in result.stderr and "'c'" in result.stderr


# --- majority floor and hub reading -------------------------------------------------------------


def test_majority_floor_is_a_chain_of_trees(shared_data):
    task = DependencyParsing()
    train = task.read_file(shared_data / "ud/UD_Maltese-MUDT/mt_mudt-ud-dev.conllu")
    test = train[:50]
    predictions = task.majority_predictions(train, test)
    assert all(
        _is_tree(p.heads) and len(p.heads) == len(s.words) for p, s in zip(predictions, test, strict=True)
    )
    counts = Counter(
        base_relation(r) for s in train for h, r in zip(s.heads, s.deprels, strict=True) if h != 0
    )
    relations = {r for p in predictions for r in p.deprels[1:]}
    assert relations == {counts.most_common(1)[0][0]} == {"case"} and all(
        p.deprels[0] == "root" for p in predictions
    )
    scores = task.score(test, predictions)
    assert 0 < scores["las"] < scores["uas"] < 0.5


def test_hub_rows_drop_multiword_surfaces(monkeypatch, tmp_path):
    import datasets

    rows = datasets.Dataset.from_dict(
        {
            "idx": ["fr-1"],
            "tokens": [["Il", "parle", "du", "de", "le", "chat"]],
            "upos": [["PRON", "VERB", "_", "ADP", "DET", "NOUN"]],
            "head": [["2", "0", "None", "5", "5", "2"]],
            "deprel": [["nsubj", "root", "_", "case", "det", "obl:arg"]],
        }
    )
    monkeypatch.setattr("xltransfer.data.hub.load_hub_split", lambda *args: rows)
    task = DependencyParsing()
    (sentence,) = task.read_hub("universal_dependencies", "fr_gsd", "test", None)
    assert sentence.words == ("Il", "parle", "de", "le", "chat") and sentence.heads == (2, 0, 5, 5, 2)
    path = tmp_path / "pred.conllu"
    task.write_predictions([sentence], [Parse(sentence.heads, sentence.deprels)], path)
    assert task.score([sentence], task.predictions_from_file([sentence], path)) == {"uas": 1.0, "las": 1.0}


# --- a tiny biaffine parser end to end ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_parser(tmp_path_factory):
    """A random 1-layer BERT (hidden 32) with character subwords, and Tamil sentences to parse."""
    from conftest import SHARED_DATA, character_tokenizer, tiny_adapter_model

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA}")
    task = DependencyParsing()
    sentences = task.read_file(SHARED_DATA / "ud/UD_Tamil-TTB/ta_ttb-ud-dev.conllu")[:12]
    folder = tmp_path_factory.mktemp("tiny-parser")
    tokenizer = character_tokenizer([w for s in sentences for w in s.words], folder)
    model = tiny_adapter_model(folder, len(tokenizer))
    task.add_head(model, "task_dp")
    model.active_head = "task_dp"
    head = model.heads["task_dp"]
    with torch.no_grad():  # zero-initialised biaffine weights score every arc alike: make them disagree
        for weight in (head.biaffine_arcs.weight, head.biaffine_rels.weight):
            weight.normal_()
    return task, model, tokenizer, sentences


def test_head_has_the_universal_relations_and_leaves_the_encoder_config(tiny_parser):
    _, model, _, _ = tiny_parser
    head = model.heads["task_dp"]
    assert head.biaffine_rels.weight.shape[0] == len(UD_RELATIONS) == 37
    assert model.config.pad_token_id == 0 and head.model_config.pad_token_id == -1


def test_features_point_at_first_subwords(tiny_parser):
    task, _, tokenizer, sentences = tiny_parser
    features = task.encode(sentences[:3], tokenizer, max_length=512)
    for feature, sentence in zip(features, sentences[:3], strict=True):
        starts, ids = feature["word_starts"], feature["input_ids"]
        assert len(starts) == len(sentence.words) + 1 and ids[starts[-1]] == tokenizer.sep_token_id
        first_subwords = tokenizer.convert_ids_to_tokens([ids[p] for p in starts[:-1]])
        assert [t[0] for t in first_subwords] == [w[0] for w in sentence.words]
        assert feature["labels_arcs"] == list(sentence.heads)
        assert [UD_RELATIONS[r] for r in feature["labels_rels"]] == [
            base_relation(d) for d in sentence.deprels
        ]


def test_loss_is_finite_backpropagates_and_counts_root_arcs(tiny_parser):
    task, model, tokenizer, sentences = tiny_parser
    batch = task.collate(task.encode(sentences[:6], tokenizer, max_length=512), tokenizer)
    assert batch["labels_arcs"].shape == batch["input_ids"].shape
    model.train()
    model.zero_grad()
    loss = task.loss(model, batch)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.heads["task_dp"].biaffine_arcs.weight.grad.abs().sum() > 0
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        with_root = task.loss(model, batch)
        no_root = dict(batch, labels_arcs=batch["labels_arcs"].masked_fill(batch["labels_arcs"] == 0, -1))
        assert not torch.isclose(with_root, task.loss(model, no_root))


def test_predictions_are_well_formed_trees(tiny_parser):
    task, model, tokenizer, sentences = tiny_parser
    model.eval()
    # a short max_length cuts the longer sentences: their last words must still join the tree
    batch = task.collate(task.encode(sentences, tokenizer, max_length=24), tokenizer)
    with torch.no_grad():
        greedy = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "word_starts")}).arc_preds
        parses = task.predict(model, batch)
    kept = ((batch["word_starts"] >= 0).sum(-1) - 1).tolist()
    assert any(k < len(s.words) for k, s in zip(kept, sentences, strict=True))
    assert any(not _is_tree(g[:k, : k + 1].argmax(-1).tolist()) for g, k in zip(greedy, kept, strict=True))
    for parse, sentence in zip(parses, sentences, strict=True):
        assert len(parse.heads) == len(parse.deprels) == len(sentence.words)
        assert _is_tree(parse.heads)
        assert all((h == 0) == (r == "root") for h, r in zip(parse.heads, parse.deprels, strict=True))
        assert set(parse.deprels) <= set(UD_RELATIONS)
    scores = task.score(sentences, parses)
    assert 0 <= scores["las"] <= scores["uas"] <= 1


def test_greedy_decoding_takes_each_words_argmax_head_as_the_authors_decode():
    """parovicm/badx utils_udp.py (after hgiyt) decodes greedily; MST (the default) always gives a
    tree. Scores where each word's best head makes a cycle: greedy keeps it, MST does not."""
    from xltransfer.tasks.dp import _decode

    arcs = torch.tensor([[0.0, -9.0, 5.0], [1.0, 5.0, -9.0]])  # word 1 -> 2, word 2 -> 1: a cycle
    rels = torch.zeros(2, 3, 37)
    assert _decode(arcs, rels, 2, "greedy").heads == (2, 1)
    mst = _decode(arcs, rels, 2).heads
    assert 0 in mst and mst != (2, 1)


def test_the_bad_x_grid_sets_the_authors_dp_and_nli_choices_and_mst_stays_the_default():
    import yaml
    from xltransfer.methods.mad_x import MadX

    assert MadX().params["dp_decoding"] == "mst" and not MadX().params["nli_ta_pooler"]
    assert MadX().params["dp_ta_drop_subwords"] == 0 and MadX().params["nli_ta_max_length"] == 0
    grid = yaml.safe_load((Path(__file__).parents[1] / "leaderboards" / "bad-x" / "grid.yaml").read_text())
    for method in grid["methods"]:
        assert method["params"]["dp_decoding"] == "greedy" and method["params"]["nli_ta_pooler"] is True
        assert method["params"]["la_max_length"] == 512
        assert method["params"]["dp_ta_drop_subwords"] == 254 and method["params"]["nli_ta_max_length"] == 128
    with pytest.raises(ValueError, match="dp_decoding"):
        MadX.resolve_params("default", {"dp_decoding": "eisner"})


# --- the authors' filter: training sentences of 254 subwords or more left out (dp_ta_drop_subwords) --


def _one_letter_conllu(*lengths: int) -> str:
    """Sentences of one-character words ("a": one subword each), the first word the root."""
    blocks = []
    for i, n in enumerate(lengths):
        rows = [f"# sent_id = s{i}"]
        for w in range(1, n + 1):
            head, rel = (0, "root") if w == 1 else (1, "dep")
            rows.append(f"{w}\ta\ta\tX\t_\t_\t{head}\t{rel}\t_\t_")
        blocks.append("\n".join(rows) + "\n")
    return "\n".join(blocks) + "\n"


def _dp_context(tmp_path):
    """A run context over a DP grid from files (max_length 256) and a character tokenizer."""
    from conftest import files_task_context

    (tmp_path / "train.conllu").write_text(_one_letter_conllu(5, 253, 254, 300))
    (tmp_path / "dev.conllu").write_text(_one_letter_conllu(4, 260))
    (tmp_path / "test.conllu").write_text(_one_letter_conllu(3))
    return files_task_context(
        tmp_path, "dp", "{qaa: {train: train.conllu, dev: dev.conllu}, qab: {test: test.conllu}}"
    )


def test_a_dp_sentence_of_254_subwords_or_more_is_left_out_of_training_under_the_authors_filter(tmp_path):
    """hgiyt ud_dataset.py and adapters' dependency-parsing preprocessing.py (which parovicm/badx
    run_udp.py uses) skip a sentence when its subwords, special tokens not counted, reach
    max_seq_length - 2: 254 at 256. By default every training sentence is kept (cut at 256)."""
    from xltransfer.methods.mad_x import MadX

    ctx = _dp_context(tmp_path)
    default = MadX()
    authors = MadX("default", MadX.resolve_params("default", {"dp_ta_drop_subwords": 254}))
    kept = ctx.training_examples("dp", "qaa", default.encoding("dp"))
    assert [len(s.words) for s in kept] == [5, 253, 254, 300]
    trained = ctx.training_examples("dp", "qaa", authors.encoding("dp"))
    assert [len(s.words) for s in trained] == [5, 253]
    # the features each setting trains on are cached apart, encoded at the grid's 256
    assert len(ctx.features("dp", "qaa", "train", default.encoding("dp"))) == 4
    features = ctx.features("dp", "qaa", "train", authors.encoding("dp"))
    assert [len(f["input_ids"]) for f in features] == [5 + 2, 253 + 2]
    assert len(ctx.features("dp", "qaa", "train")) == 4  # the grid's way, unchanged
    # selection and test read every sentence under both (a long one cut at max_length)
    for method in (default, authors):
        dev = ctx.features("dp", "qaa", "dev", method.encoding("dp"))
        assert [len(f["input_ids"]) for f in dev] == [4 + 2, 256]


def test_the_dp_filter_counts_subwords_without_special_tokens(tiny_parser):
    task, _, tokenizer, sentences = tiny_parser
    lengths = task.subword_lengths(sentences[:3], tokenizer)
    encoded = task.encode(sentences[:3], tokenizer, max_length=512)
    assert lengths == [len(f["input_ids"]) - 2 for f in encoded]
    assert task.without_long(sentences[:3], tokenizer, 0) == sentences[:3]
    shortest = min(lengths)
    kept = task.without_long(sentences[:3], tokenizer, shortest + 1)
    assert kept == [s for s, n in zip(sentences[:3], lengths, strict=True) if n == shortest]


def test_the_dp_filter_is_a_whole_number_of_subwords():
    from xltransfer.methods.mad_x import MadX

    for bad in (-1, 2.5, True, "254"):
        with pytest.raises(ValueError, match="dp_ta_drop_subwords"):
            MadX.resolve_params("default", {"dp_ta_drop_subwords": bad})
