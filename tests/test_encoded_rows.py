"""Labelled training features on disk (``data.encoded``): the same features, batches and training as
the list ``encode`` returns, read by index, with memory that does not hold them (issue 19)."""

from __future__ import annotations

import gc
import random

from conftest import files_task_context, python_memory
from xltransfer.tasks.nli import NLI_LABELS

from xltransfer.data.encoded import EncodedRows, encode_to_disk
from xltransfer.train import batches_forever

WORDS = ["a", "aa", "aaa", "aaaa"]


def _nli_context(tmp_path, pairs: int):
    rng = random.Random(0)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40)))

    rows = "premise\thypothesis\tlabel\n" + "".join(
        f"{sentence()}\t{sentence()}\t{NLI_LABELS[i % 3]}\n" for i in range(pairs)
    )
    for name in ("train", "dev", "test"):
        (tmp_path / f"{name}.tsv").write_text(rows if name == "train" else rows[: rows.index("\n", 2000)])
    files = "{qaa: {train: train.tsv, dev: dev.tsv}, qab: {test: test.tsv}}"
    return files_task_context(tmp_path, "nli", files)


def test_a_train_split_is_encoded_on_disk_into_the_same_features_and_batches(tmp_path):
    ctx = _nli_context(tmp_path, 2_500)
    task, tokenizer = ctx.task("nli"), ctx.tokenizer
    on_disk = ctx.features("nli", "qaa", "train")
    assert isinstance(on_disk, EncodedRows)
    in_memory = task.encode(ctx.training_examples("nli", "qaa"), ctx.tokenizer, 256)
    assert len(on_disk) == len(in_memory) == 2_500
    assert list(on_disk) == in_memory and on_disk[-1] == in_memory[-1] and on_disk[3:6] == in_memory[3:6]
    assert on_disk.take([7, 0, 7]) == [in_memory[7], in_memory[0], in_memory[7]]

    def collate(features):
        return task.collate(features, tokenizer)

    disk_batches = batches_forever(on_disk, collate, 16, seed=5)
    list_batches = batches_forever(in_memory, collate, 16, seed=5)
    for _ in range(200):  # more than an epoch: the same length-bucketed, shuffled batches
        a, b = next(disk_batches), next(list_batches)
        assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    # dev and test splits stay lists; the run's folder of features is removed with its context
    assert isinstance(ctx.features("nli", "qaa", "dev"), list)
    folder = on_disk.path.parent
    assert folder.is_dir()
    del ctx, on_disk, disk_batches
    gc.collect()
    assert not folder.exists()


def test_the_features_of_a_large_train_split_are_not_held_in_memory(tmp_path):
    """Python memory that reading the features leaves allocated: on disk a small fraction of what
    the same features take as the lists ``encode`` returns."""
    import datasets  # noqa: F401 - imported before measuring: its modules are not the features

    ctx = _nli_context(tmp_path, 20_000)
    examples = ctx.training_examples("nli", "qaa")

    listed, as_lists, _ = python_memory(lambda: ctx.task("nli").encode(examples, ctx.tokenizer, 256))
    features, on_disk, _ = python_memory(lambda: ctx.features("nli", "qaa", "train"))
    assert len(listed) == len(features) == 20_000
    assert on_disk < as_lists / 20, (on_disk, as_lists)


def test_a_labelled_train_split_is_parsed_a_row_at_a_time_into_the_runs_folder(tmp_path):
    """The train split's examples on disk: the reader's pairs, indexed, sliced, iterated and subset
    as a list is; reading them streams the file (its peak is a fraction of the pairs as a list) and
    leaves almost nothing in Python memory. Dev and test splits stay lists."""
    import datasets  # noqa: F401 - imported before measuring: its modules are not the examples

    from xltransfer.data.encoded import ExamplesOnDisk
    from xltransfer.data.nli import read_nli

    ctx = _nli_context(tmp_path, 40_000)

    listed, as_list, _ = python_memory(lambda: read_nli(tmp_path / "train.tsv"))
    examples, held, peak = python_memory(lambda: ctx.examples("nli", "qaa", "train"))
    assert isinstance(examples, ExamplesOnDisk) and len(examples) == 40_000
    assert held < as_list / 20 and peak < as_list / 5, (held, peak, as_list)
    assert list(examples) == listed and examples[-1] == listed[-1] and examples[5:9] == listed[5:9]
    view = examples.subset([9, 2, 9])
    assert list(view) == [listed[9], listed[2], listed[9]] and view[-1] == listed[9] and len(view) == 3
    assert ctx.training_examples("nli", "qaa") is examples
    assert isinstance(ctx.examples("nli", "qaa", "dev"), list)
    assert examples.path.parent == ctx.features("nli", "qaa", "train").path.parent  # one run folder


def test_hub_rows_and_bio_files_stream_into_the_runs_folder(tmp_path, monkeypatch):
    """Hub NLI rows (read from the dataset's memory-mapped files) and a BIO file whose tokens carry
    a language prefix (one pass decides the prefix, a second streams) go to disk a row at a time:
    the same examples as the list readers, at a fraction of their peak."""
    import datasets

    from xltransfer import registry
    from xltransfer.data.encoded import examples_to_disk

    count = 30_000
    labels = datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])
    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": labels})  # fmt: skip
    table = {
        "premise": [f"premise number {i} of the hub's training pairs" for i in range(count)],
        "hypothesis": [f"hypothesis {i}" for i in range(count)],
        "label": [i % 3 if i % 100 else -1 for i in range(count)],  # -1: no gold label, skipped
    }
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "hub"))
    rows = datasets.load_from_disk(str(tmp_path / "hub"))  # memory-mapped, as the hub's cache is
    monkeypatch.setattr("xltransfer.data.hub.load_hub_split", lambda *args: rows)
    bio = tmp_path / "train.bio"
    with open(bio, "w", encoding="utf-8") as handle:
        for i in range(sentences := 20_000):
            handle.write(f"en:Paris B-LOC\nen:is O\nen:number O\nen:{i} O\n\n")

    nli, ner = registry.tasks.get("nli")(), registry.tasks.get("ner")()
    hub = ("x", None, "train", None)
    cases = {
        "nli hub rows": (lambda: nli.read_hub(*hub), lambda: nli.iter_hub(*hub)),
        "bio file": (lambda: ner.read_file(bio), lambda: ner.iter_file(bio)),
    }
    for name, (read, stream) in cases.items():
        listed, as_list, _ = python_memory(read)
        on_disk, _, peak = python_memory(lambda: examples_to_disk(stream(), tmp_path / f"{name}.arrow"))  # noqa: B023
        assert list(on_disk) == listed and peak < as_list / 5, (name, peak, as_list)
    assert len(listed) == sentences and listed[-1].tokens == ("Paris", "is", "number", str(sentences - 1))


def test_encode_must_give_one_feature_per_example(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="one each"):
        encode_to_disk(["x", "y"], lambda chunk: [{"input_ids": [1]}], tmp_path / "f.arrow")
    empty = encode_to_disk([], lambda chunk: [], tmp_path / "e.arrow")
    assert len(empty) == 0 and not empty


def test_a_killed_runs_folder_of_features_is_removed_by_the_next_run_on_the_machine(tmp_path):
    import socket
    import subprocess
    import sys

    from xltransfer.data.encoded import remove_orphans, run_folder_prefix

    finished = [sys.executable, "-c", "import os; print(os.getpid())"]
    gone = subprocess.run(finished, capture_output=True, text=True)
    host = socket.gethostname()
    dead = tmp_path / f"{host}-{gone.stdout.strip()}-abc"
    alive = tmp_path / f"{run_folder_prefix()}def"
    elsewhere = tmp_path / "another-machine-1-ghi"
    for folder in (dead, alive, elsewhere):
        (folder / "x").mkdir(parents=True)
    remove_orphans(tmp_path)
    assert not dead.exists() and alive.exists() and elsewhere.exists()
