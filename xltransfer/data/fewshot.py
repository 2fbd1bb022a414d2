"""Few-shot samples: k target training examples drawn with the cell's seed, recorded so a run can
be reproduced exactly (Hyper-X Appendix D samples k in {5, 10, 20, 50} at random)."""

from __future__ import annotations

import hashlib
import random
from typing import Any


def sample_indices(pool_size: int, shots: int, seed: int) -> list[int]:
    """k distinct indices (all of the pool when it is smaller than k, as for Kazakh-KTB's 31)."""
    if shots <= 0:
        raise ValueError("few-shot needs shots >= 1")
    return sorted(random.Random(f"few-shot:{seed}:{shots}").sample(range(pool_size), min(shots, pool_size)))


def example_id(example: Any, index: int) -> str:
    for attribute in ("sent_id", "id", "example_id"):
        value = getattr(example, attribute, None)
        if value:
            return str(value)
    return f"#{index}"


def describe_sample(examples: list[Any], indices: list[int]) -> dict[str, Any]:
    """What the result record keeps: the sampled ids and a hash of their content."""
    ids = [example_id(examples[i], i) for i in indices]
    digest = hashlib.sha256("\n".join(repr(examples[i]) for i in indices).encode()).hexdigest()[:16]
    return {"shots": len(indices), "ids": ids, "content_sha256": digest, "pool": len(examples)}
