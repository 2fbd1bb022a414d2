"""Paired bootstrap significance: per-example statistics that rescore to every task's metrics, the
bootstrap itself (acceptance cases, an exact small case), and statistics kept by a grid run."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
import sacrebleu
from seqeval.metrics import f1_score, precision_score, recall_score
from xltransfer.tasks.dp import DependencyParsing, Parse
from xltransfer.tasks.mt import MachineTranslation
from xltransfer.tasks.ner import NamedEntityRecognition
from xltransfer.tasks.nli import NaturalLanguageInference
from xltransfer.tasks.pos import UPOS, PosTagging

from xltransfer import registry
from xltransfer.data.bio import BioSentence
from xltransfer.data.parallel import ParallelExample
from xltransfer.data.ud import UdSentence
from xltransfer.reporting import significance
from xltransfer.reporting.significance import load_example_statistics, paired_bootstrap

# -- per-example statistics rescore to the task's own scores ------------------------------------


def assert_rescores(task, gold, predictions) -> dict[str, float]:
    scores = task.score(gold, predictions)
    rows = task.example_statistics(gold, predictions)
    assert len(rows) == len(gold)
    assert all(len(row) == len(task.statistics_names) for row in rows)
    assert task.score_statistics(rows) == pytest.approx(scores, rel=1e-12, abs=1e-12)
    assert set(task.score_statistics(rows)) == set(task.metadata.metrics)
    return scores


def pos_predictions(gold: list[UdSentence]) -> list[list[str]]:
    """Every 5th word retagged, a few sentences wholly wrong."""
    predictions = []
    for s, sentence in enumerate(gold):
        tags = list(sentence.upos)
        for w in range(len(tags)):
            if (w + s) % 5 == 0 or s % 17 == 0:
                tags[w] = UPOS[(UPOS.index(tags[w]) + 1) % len(UPOS)]
        predictions.append(tags)
    return predictions


@pytest.mark.parametrize(
    "relative", ["UD_Maltese-MUDT/mt_mudt-ud-test.conllu", "UD_Tamil-TTB/ta_ttb-ud-test.conllu"]
)
def test_pos_statistics_rescore(shared_data, relative):
    task = PosTagging()
    gold = task.read_file(shared_data / "ud" / relative)
    scores = assert_rescores(task, gold, pos_predictions(gold))
    assert 0.5 < scores["accuracy"] < 0.95
    assert assert_rescores(task, gold, [list(s.upos) for s in gold]) == {"accuracy": 1.0}


def ner_predictions(gold, seed: int) -> list[list[str]]:
    """Valid-tag changes: retyped, shortened, dropped and invented entities."""
    rng = random.Random(seed)
    predictions = []
    for sentence in gold:
        tags = list(sentence.tags)
        for i, tag in enumerate(tags):
            draw = rng.random()
            if tag.startswith("B-") and draw < 0.15:
                tags[i] = "B-" + rng.choice(["PER", "ORG", "LOC"])
            elif tag.startswith("I-") and draw < 0.2:
                tags[i] = "O"
            elif tag == "O" and draw < 0.05:
                tags[i] = rng.choice(["B-LOC", "I-PER"])  # an I- after O opens an entity (conlleval)
        predictions.append(tags)
    return predictions


@pytest.mark.parametrize("relative", ["wikiann_panx/swa/test.txt", "masakhaner2/wol/dev.txt"])
def test_ner_statistics_rescore_to_seqeval_corpus_scores(shared_data, relative):
    task = NamedEntityRecognition()
    gold = task.read_file(shared_data / "ner" / relative)
    predictions = ner_predictions(gold, seed=len(relative))
    scores = assert_rescores(task, gold, predictions)
    y_true, y_pred = [list(s.tags) for s in gold], predictions
    rescored = task.score_statistics(task.example_statistics(gold, predictions))
    assert rescored["f1"] == pytest.approx(f1_score(y_true, y_pred), abs=1e-12)
    assert rescored["precision"] == pytest.approx(precision_score(y_true, y_pred), abs=1e-12)
    assert rescored["recall"] == pytest.approx(recall_score(y_true, y_pred), abs=1e-12)
    assert 0.3 < scores["f1"] < 0.95 and scores["precision"] != scores["recall"]
    # nothing predicted: zero F1 and precision without a division by zero
    outside = task.majority_predictions(gold, gold)
    assert assert_rescores(task, gold, outside) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_ner_entities_are_counted_within_their_sentence():
    """An I- continuing the previous sentence's entity starts a new one, as in seqeval's corpus."""
    task = NamedEntityRecognition()
    gold = [BioSentence(("a", "b"), ("O", "B-PER"), 1), BioSentence(("c", "d"), ("I-PER", "O"), 4)]
    predictions = [["O", "B-PER"], ["I-PER", "I-PER"]]
    assert task.example_statistics(gold, predictions) == [[1, 1, 1], [0, 1, 1]]
    assert_rescores(task, gold, predictions)


def dp_predictions(gold: list[UdSentence], seed: int) -> list[Parse]:
    """Some heads moved, some relations changed, some only their subtype (not an error)."""
    rng = random.Random(seed)
    parses = []
    for sentence in gold:
        heads, deprels = list(sentence.heads), list(sentence.deprels)
        for w in range(len(heads)):
            draw = rng.random()
            others = [h for h in range(len(heads) + 1) if h not in (w + 1, heads[w])]
            if draw < 0.15 and others:
                heads[w] = rng.choice(others)
            elif draw < 0.25:
                deprels[w] = "dep" if deprels[w].split(":")[0] != "dep" else "obj"
            elif draw < 0.35 and ":" in deprels[w]:
                deprels[w] = deprels[w].split(":")[0]
        parses.append(Parse(tuple(heads), tuple(deprels)))
    return parses


@pytest.mark.parametrize(
    "relative", ["UD_Turkish-IMST/tr_imst-ud-test.conllu", "UD_English-EWT/en_ewt-ud-dev.conllu"]
)
def test_dp_statistics_rescore(shared_data, relative):
    task = DependencyParsing()
    gold = task.read_file(shared_data / "ud" / relative)
    scores = assert_rescores(task, gold, dp_predictions(gold, seed=len(relative)))
    assert 0.6 < scores["las"] < scores["uas"] < 0.95


def test_nli_statistics_rescore(shared_data):
    task = NaturalLanguageInference()
    gold = task.read_file(shared_data / "nli/americasnli/test/nah.tsv")
    labels = sorted({p.label for p in gold})
    predictions = [p.label if i % 3 else labels[(labels.index(p.label) + 1) % 3] for i, p in enumerate(gold)]
    scores = assert_rescores(task, gold, predictions)
    assert scores["accuracy"] == pytest.approx(sum(1 for i in range(len(gold)) if i % 3) / len(gold))
    assert task.example_statistics(gold[:3], predictions[:3]) == [[0, 1], [1, 1], [1, 1]]


def mt_hypotheses(references: list[str]) -> list[str]:
    out = []
    for i, line in enumerate(references):
        words = line.split()
        if i % 3 == 0:
            words = words[:-2] + words[-1:]
        elif i % 3 == 1:
            words = words[1:] + words[:1]
        out.append(" ".join(words) if i % 50 else "")  # a few empty translations
    return out


def test_mt_statistics_rescore_to_sacrebleu(shared_data):
    task = MachineTranslation()
    gold = task.read_file(shared_data / "mt/pud/en.txt")  # references only: no target language, 13a
    references = [e.target for e in gold]
    hypotheses = mt_hypotheses(references)
    scores = assert_rescores(task, gold, hypotheses)
    rows = task.example_statistics(gold, hypotheses)
    assert len(rows[0]) == len(task.statistics_names) == 28
    assert task.score_statistics(rows)["bleu"] == sacrebleu.corpus_bleu(hypotheses, [references]).score
    assert task.score_statistics(rows)["chrf"] == sacrebleu.corpus_chrf(hypotheses, [references]).score
    assert 0 < scores["bleu"] < 100
    # a Chinese target: BLEU's statistics come from sacrebleu's Chinese tokenisation, as in ``score``
    zh = [e.target for e in task.read_file(shared_data / "mt/pud/zh.txt")][:200]
    zh_gold = [ParallelExample("en", "zh", "-", t, str(i)) for i, t in enumerate(zh)]
    zh_hyp = [t[: len(t) * 2 // 3] for t in zh]
    zh_rows = task.example_statistics(zh_gold, zh_hyp)
    assert task.score_statistics(zh_rows)["bleu"] == sacrebleu.corpus_bleu(zh_hyp, [zh], tokenize="zh").score
    assert_rescores(task, zh_gold, zh_hyp)
    assert (
        task.score_statistics(zh_rows)["bleu"]
        != task.score_statistics(
            task.example_statistics([ParallelExample("en", None, "-", t, "x") for t in zh], zh_hyp)
        )["bleu"]
    )


def test_every_scored_task_keeps_statistics():
    for name in ("pos", "ner", "dp", "nli", "mt"):
        task = registry.tasks.get(name)()
        assert task.has_example_statistics, name
    assert not registry.tasks.get("mlm")().has_example_statistics


# -- the bootstrap ----------------------------------------------------------------------------------

ACCURACY = NaturalLanguageInference().score_statistics
POS = PosTagging().score_statistics


def test_a_method_identical_to_the_baseline_is_never_significant():
    rng = random.Random(5)
    for n in (1, 7, 60, 500):
        rows = [[rng.randint(0, 3), 3] for _ in range(n)]
        for seed in range(3):
            result = paired_bootstrap(
                rows, [list(r) for r in rows], POS, "accuracy", resamples=300, seed=seed
            )
            assert result["difference"] == 0.0 and result["p_value"] == 1.0
            assert result["significant"] is False


def test_a_method_better_on_every_example_is_always_significant():
    rng = random.Random(6)
    for n in (5, 40, 300):
        lengths = [rng.randint(2, 30) for _ in range(n)]
        baseline = [[rng.randint(0, length - 1), length] for length in lengths]
        better = [[correct + 1, length] for correct, length in baseline]
        for seed in range(3):
            won = paired_bootstrap(better, baseline, POS, "accuracy", resamples=500, seed=seed)
            assert won["difference"] > 0 and won["p_value"] == 0.0 and won["significant"] is True
            lost = paired_bootstrap(baseline, better, POS, "accuracy", resamples=500, seed=seed)
            assert lost["difference"] == -won["difference"] and lost["p_value"] == 0.0
            assert lost["significant"] is True


def test_same_seed_same_result_and_seed_is_used():
    rng = random.Random(7)
    a = [[rng.randint(0, 1), 1] for _ in range(80)]
    b = [[rng.randint(0, 1), 1] for _ in range(80)]
    first = paired_bootstrap(a, b, ACCURACY, "accuracy", resamples=200, seed=11)
    assert paired_bootstrap(a, b, ACCURACY, "accuracy", resamples=200, seed=11) == first
    others = {
        paired_bootstrap(a, b, ACCURACY, "accuracy", resamples=200, seed=s)["p_value"] for s in range(5)
    }
    assert len(others) > 1
    assert first["a"] == ACCURACY(a)["accuracy"] and first["b"] == ACCURACY(b)["accuracy"]
    assert first["p_value_two_sided"] == min(1.0, 2 * first["p_value"])


def exact_p_value(stats_a, stats_b, score_statistics, metric) -> float:
    """Every one of the n^n equally likely resamples: the share where the observed winner does not win."""
    n = len(stats_a)

    def metric_of(rows):
        return score_statistics(rows)[metric]

    observed = metric_of(stats_a) - metric_of(stats_b)
    losses = 0
    for draw in itertools.product(range(n), repeat=n):
        difference = metric_of([stats_a[i] for i in draw]) - metric_of([stats_b[i] for i in draw])
        losses += difference <= 0 if observed > 0 else difference >= 0
    return losses / n**n


def loop_p_value(stats_a, stats_b, score_statistics, metric, resamples: int, seed: int) -> float:
    """The bootstrap written as a plain loop with Python's own random numbers."""
    rng = random.Random(seed)
    n = len(stats_a)
    observed = score_statistics(stats_a)[metric] - score_statistics(stats_b)[metric]
    losses = 0
    for _ in range(resamples):
        draw = [rng.randrange(n) for _ in range(n)]
        a = score_statistics([stats_a[i] for i in draw])[metric]
        b = score_statistics([stats_b[i] for i in draw])[metric]
        losses += (a - b) <= 0 if observed > 0 else (a - b) >= 0
    return losses / resamples


def test_four_examples_match_the_exact_bootstrap_distribution():
    # A is right where B is, and also on examples 1 and 3: A - B <= 0 only in the draws that miss
    # both, (2/4)^4 = 1/16 of them
    a = [[1, 1], [1, 1], [0, 1], [1, 1]]
    b = [[1, 1], [0, 1], [0, 1], [0, 1]]
    assert exact_p_value(a, b, ACCURACY, "accuracy") == 1 / 16
    result = paired_bootstrap(a, b, ACCURACY, "accuracy", resamples=20000, seed=0)
    assert result["difference"] == 0.5
    assert result["p_value"] == pytest.approx(1 / 16, abs=0.006)  # 3.5 standard errors
    assert result["significant"] is False  # 0.0625 > 0.05: four examples are not enough
    reverse = paired_bootstrap(b, a, ACCURACY, "accuracy", resamples=20000, seed=0)
    assert reverse["difference"] == -0.5 and reverse["p_value"] == result["p_value"]


def test_a_corpus_metric_is_rescored_per_draw_not_averaged():
    """Entity F1 of four sentences (tp, predicted, gold): the exact bootstrap p-value, the loop's and
    the vectorised one agree; averaging per-sentence F1 would give another distribution."""
    task = NamedEntityRecognition()
    a = [[2, 2, 3], [0, 1, 1], [1, 1, 1], [3, 5, 3]]
    b = [[1, 2, 3], [1, 1, 1], [0, 0, 1], [3, 3, 3]]
    exact = exact_p_value(a, b, task.score_statistics, "f1")
    loop = loop_p_value(a, b, task.score_statistics, "f1", resamples=20000, seed=1)
    result = paired_bootstrap(a, b, task.score_statistics, "f1", resamples=20000, seed=2)
    assert result["difference"] == pytest.approx(
        task.score_statistics(a)["f1"] - task.score_statistics(b)["f1"]
    )
    assert 0.05 < exact < 0.95
    assert loop == pytest.approx(exact, abs=0.012) and result["p_value"] == pytest.approx(exact, abs=0.012)


def test_mt_bootstrap_on_real_statistics(shared_data, monkeypatch):
    task = MachineTranslation()
    gold = task.read_file(shared_data / "mt/pud/en.txt")[:300]
    references = [e.target for e in gold]
    worse = mt_hypotheses(references)
    better = [r if i % 2 else w for i, (r, w) in enumerate(zip(references, worse, strict=True))]
    a, b = task.example_statistics(gold, better), task.example_statistics(gold, worse)
    result = paired_bootstrap(a, b, task.score_statistics, "bleu", resamples=200, seed=0)
    assert result["a"] == task.score(gold, better)["bleu"] and result["b"] == task.score(gold, worse)["bleu"]
    # A ties or wins on every sentence: it wins in every draw
    assert result["difference"] > 1 and result["significant"] and result["p_value"] == 0.0
    # one sentence apart: A wins only in the draws holding it, P = 1 - (1 - 1/300)^300 = 0.63
    one_worse = list(better)
    one_worse[1] = worse[1]
    close = paired_bootstrap(
        a, task.example_statistics(gold, one_worse), task.score_statistics, "bleu", seed=0
    )
    assert 0 < close["difference"] < 0.5 and not close["significant"]
    assert close["p_value"] == pytest.approx((1 - 1 / 300) ** 300, abs=0.05)
    # summing in small chunks of draws gives the same differences as one block
    chrf = paired_bootstrap(a, b, task.score_statistics, "chrf", resamples=50, seed=3)
    monkeypatch.setattr(significance, "_CHUNK_NUMBERS", 1000)
    assert paired_bootstrap(a, b, task.score_statistics, "chrf", resamples=50, seed=3) == chrf


def test_mismatched_statistics_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap([[1, 1]] * 3, [[1, 1]] * 4, ACCURACY, "accuracy")
    with pytest.raises(ValueError, match="one row"):
        paired_bootstrap([], [], ACCURACY, "accuracy")
    with pytest.raises(KeyError, match="bleu"):
        paired_bootstrap([[1, 1]], [[0, 1]], ACCURACY, "bleu")


# -- statistics kept by a run ------------------------------------------------------------------------


def test_grid_run_keeps_statistics_that_rescore_to_every_record(tmp_path, tiny_workdir):
    import jsonschema
    from conftest import write_tiny_grid

    from xltransfer.execute.local import run_local
    from xltransfer.grid import load_grid
    from xltransfer.planning import build_plan
    from xltransfer.progress import SilentProgress
    from xltransfer.store import json_schema
    from xltransfer.workspace import Workspace

    grid_file = write_tiny_grid(tmp_path / "tiny", targets="[qab]")
    workspace = Workspace.at(tiny_workdir)
    plan = build_plan(load_grid(grid_file, workspace.root))
    summary = run_local(plan, workspace, SilentProgress(), run_id="first")
    assert not summary.failures
    records = [r for r in workspace.results.records(grid="tiny") if r["status"] == "ok"]
    assert {r["method"] for r in records} == {"majority", "full-ft", "mad-x"}
    schema = json_schema()
    by_cell: dict[str, list[list[float]]] = {}
    for record in records:
        jsonschema.validate(record, schema)
        relative = record["extra"]["example_statistics"]
        assert not Path(relative).is_absolute() and (workspace.root / relative).is_file()
        document = json.loads((workspace.root / relative).read_text(encoding="utf-8"))
        assert document["cell_id"] == record["cell_id"] and document["metrics"] == ["accuracy"]
        rows = load_example_statistics(workspace.root, record)
        assert rows is not None and len(rows) == record["extra"]["test_examples"]
        task = registry.tasks.get(record["task"])()
        assert task.score_statistics(rows)[record["metric"]] == pytest.approx(record["value"], abs=1e-12)
        by_cell[record["method"]] = rows
    # the kept statistics are what a leaderboard compares methods with
    result = paired_bootstrap(by_cell["full-ft"], by_cell["majority"], POS, "accuracy", resamples=200)
    assert result["difference"] == pytest.approx(
        next(r["value"] for r in records if r["method"] == "full-ft")
        - next(r["value"] for r in records if r["method"] == "majority")
    )

    # a re-evaluation (a new results store over the same workspace) overwrites each file; the old
    # records no longer match it and get no statistics rather than another run's
    again = Workspace.at(tiny_workdir, results=tmp_path / "again.sqlite")
    assert not run_local(
        build_plan(load_grid(grid_file, again.root)), again, SilentProgress(), "second"
    ).failures
    new_records = [r for r in again.results.records(grid="tiny") if r["status"] == "ok"]
    assert {r["extra"]["example_statistics"] for r in new_records} == {
        r["extra"]["example_statistics"] for r in records
    }
    assert all(load_example_statistics(again.root, r) is not None for r in new_records)
    assert all(load_example_statistics(workspace.root, r) is None for r in records)
    assert {p.name for p in (workspace.root / "predictions").glob("*.json")} == {
        Path(r["extra"]["example_statistics"]).name for r in records
    }
    # beside each statistics file, the cell's predictions in the task's format (CoNLL-U for POS)
    assert {p.name for p in (workspace.root / "predictions").glob("*.conllu")} == {
        Path(r["extra"]["predictions"]).name for r in records
    }


def test_every_nlu_task_keeps_statistics_in_a_run(tmp_path, tiny_workdir):
    """The majority floor on the synthetic POS, DP, NER and NLI data: each task's evaluation stores
    statistics that give back the record's every metric, and predictions that rescore to it."""
    from conftest import write_tiny_grid

    from xltransfer.execute.local import run_local
    from xltransfer.grid import load_grid
    from xltransfer.planning import build_plan
    from xltransfer.progress import SilentProgress
    from xltransfer.workspace import Workspace

    tasks = ("pos", "dp", "ner", "nli")
    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab]")
    text = grid_file.read_text().replace("tasks: [pos]", f"tasks: [{', '.join(tasks)}]")
    sources = ", ".join(f"{task}: synthetic" for task in (*tasks, "mlm"))
    grid_file.write_text(text.replace("data: {pos: synthetic, mlm: synthetic}", f"data: {{{sources}}}"))
    workspace = Workspace.at(tiny_workdir)
    grid = load_grid(grid_file, workspace.root)
    cells = [c for c in grid.cells() if c.method == "majority"]
    summary = run_local(build_plan(grid, cells), workspace, SilentProgress())
    assert not summary.failures, summary.failures
    records = workspace.results.records(status="ok")
    assert {(r["task"], r["metric"]) for r in records} == {
        (t, m) for t in tasks for m in registry.tasks.get(t)().metadata.metrics
    }
    for record in records:
        rows = load_example_statistics(workspace.root, record)
        assert rows is not None and len(rows) == record["extra"]["test_examples"], record["cell_id"]
        rescored = registry.tasks.get(record["task"])().score_statistics(rows)
        assert rescored[record["metric"]] == pytest.approx(record["value"], abs=1e-12), record["cell_id"]
        # and the predictions in the task's own format, which its own reader scores the same
        task = registry.tasks.get(record["task"])()
        source = grid.source_for(record["task"])
        gold = task.read_data(source, record["target_language"], "test")
        predicted = task.predictions_from_file(gold, workspace.root / record["extra"]["predictions"])
        assert task.score(gold, predicted)[record["metric"]] == pytest.approx(record["value"], abs=1e-12)
