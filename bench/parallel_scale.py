#!/usr/bin/env python
"""Memory of preparing a translation direction's training data as its parallel text grows (issue 19,
MT at ML50 scale).

    nice python bench/parallel_scale.py [--sizes 10 50] [--cap 200000] [--keep DIR]

Writes line-aligned files of unique sentences (``--sizes`` MB per side) and, for each size, in a
fresh process: reads the direction into pairs on disk (``parallel.read_pairs``), draws the joint
vocabulary's temperature sample (``vocabulary_text.vocabulary_sample``, capped at ``--cap``
sentences: both sizes must be past it to measure the two-pass sample rather than the list), learns
the SentencePiece vocabulary from it and encodes the training features on disk. Prints each
process's peak RSS and seconds and the ratio of the larger size's peak over the smaller's (target
<= 1.2: memory flat in corpus size); beside them, in the same kind of process, the readers before
this change (the direction's pairs and every distinct sentence as Python lists, what the old
sample was drawn from) and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY_SIZE = 8000
WORDS = 5000


def write_side(path: Path, seed: int, megabytes: float | None = None, lines: int | None = None) -> int:
    """Unique sentences (each carries its number) of random words, to ``megabytes`` of UTF-8 or
    ``lines`` lines; the number of lines."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
                  for _ in range(WORDS)]  # fmt: skip
    target, written, count = (megabytes or 0) * 1_000_000, 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        while (written < target) if lines is None else (count < lines):
            line = f"{' '.join(rng.choices(vocabulary, k=rng.randint(6, 20))).capitalize()} {count}.\n"
            handle.write(line)
            written += len(line.encode("utf-8"))
            count += 1
    return count


def prepare(folder: Path, cap: int, old_readers: bool) -> dict:
    """One measurement, in this (fresh) process: the new preparation, or the old readers' lists."""
    from xltransfer.tasks.mt import MachineTranslation

    from xltransfer.data import corpus
    from xltransfer.data.parallel import VOCABULARY_TEMPERATURE, iter_aligned, read_aligned, read_pairs
    from xltransfer.data.vocabulary_text import texts_by_language, vocabulary_sample
    from xltransfer.modules.seq2seq import vocabulary_from_sample
    from xltransfer.options import MtModelOptions

    en, de = folder / "en.txt", folder / "de.txt"
    started = time.perf_counter()
    if old_readers:
        pairs = read_aligned(en, de, "en", "de")
        texts = texts_by_language(pairs)
        return {"pairs": len(pairs), "sentences": sum(map(len, texts.values())), "seconds": _since(started)}
    cache = folder / "cache"
    pairs = read_pairs(
        lambda: iter_aligned(en, de, "en", "de"), folder.name, "en", "de", cache, corpus.PrepLedger(), "bench"
    )
    read_seconds = _since(started)
    sample = vocabulary_sample([pairs], VOCABULARY_TEMPERATURE, seed=0, cap=cap)
    sample_seconds = _since(started) - read_seconds
    vocabulary = vocabulary_from_sample(sample, VOCABULARY_SIZE, ["en", "de"])
    vocabulary_seconds = _since(started) - read_seconds - sample_seconds
    task = MachineTranslation()
    task.options = MtModelOptions()
    features = task.training_features(pairs, vocabulary.tokenizer, task.options.max_tokens)
    return {
        "pairs": len(pairs),
        "sampled": sum(map(len, sample.values())),
        "features": len(features),
        "seconds": _since(started),
        "read_seconds": read_seconds,
        "sample_seconds": sample_seconds,
        "vocabulary_seconds": vocabulary_seconds,
    }


def _since(started: float) -> float:
    return time.perf_counter() - started


def measure(folder: Path, cap: int, old_readers: bool = False) -> dict:
    """``prepare`` in a fresh process: its figures and peak RSS in MB."""
    argv = [sys.executable, __file__, "--child", str(folder), "--cap", str(cap)]
    process = subprocess.Popen(argv + (["--old-readers"] if old_readers else []), stdout=subprocess.PIPE)
    output = process.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"the measurement in {folder} failed ({status})")
    return {**json.loads(output), "rss": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs=2, default=[10, 50], help="MB of text per side")
    parser.add_argument("--cap", type=int, default=200_000, help="sentences in the vocabulary's sample")
    parser.add_argument("--keep", type=Path, help="work here (kept) instead of a temporary folder")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--old-readers", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(prepare(args.child, args.cap, args.old_readers)))
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from corpus_scale import _run_all

    print(f"machine: {_run_all().machine()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        figures, old = {}, {}
        for megabytes in args.sizes:
            folder = base / f"direction-{megabytes:g}mb"
            folder.mkdir(parents=True, exist_ok=True)
            lines = write_side(folder / "en.txt", seed=1, megabytes=megabytes)
            write_side(folder / "de.txt", seed=2, lines=lines)
            figures[megabytes] = found = measure(folder, args.cap)
            old[megabytes] = before = measure(folder, args.cap, old_readers=True)
            print(
                f"{megabytes:g} MB a side ({found['pairs']:,} pairs): peak RSS {found['rss']:,.0f} MB, "
                f"{found['seconds']:.0f} s (read {found['read_seconds']:.0f} s, sample of "
                f"{found['sampled']:,} {found['sample_seconds']:.0f} s, vocabulary "
                f"{found['vocabulary_seconds']:.0f} s, then {found['features']:,} features encoded); "
                f"the readers before: peak RSS {before['rss']:,.0f} MB ({before['sentences']:,} "
                "sentences as lists, nothing learned or encoded)",
                flush=True,
            )
        small, large = args.sizes
        print()
        sides = (("peak RSS", figures, " (target <= 1.2)"), ("the readers before", old, ""))
        for name, runs, target in sides:
            print(
                f"{name}, {large:g} MB / {small:g} MB a side: {runs[large]['rss'] / runs[small]['rss']:.2f}"
                f"{target}: {runs[large]['rss']:,.0f} MB vs {runs[small]['rss']:,.0f} MB"
            )


if __name__ == "__main__":
    main()
