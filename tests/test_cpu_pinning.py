"""CPU runs give the same bytes whatever kernels and threads the machine would pick (xltransfer.cpu).

No other CPU vendor is at hand, so the machine's own choices are varied instead, in fresh processes:
the vectorised kernels torch would pick (``ATEN_CPU_CAPABILITY``), MKL's code path (``MKL_CBWR``)
and the thread count. With the pin (``import xltransfer``) a few steps of MLM training on the
quickstart's model class store the same weights under each; without it (``XLT_CPU_NATIVE=1``)
the kernels alone change them -- what made the quickstart's numbers differ on an AMD EPYC.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="the pin is for x86-64 CPUs"
)

TRAIN = """
import hashlib
import xltransfer  # first: pins the kernels before torch computes
from xltransfer import cpu
import torch
from adapters import BertAdapterModel
from transformers import BertConfig

cpu.pin_threads("cpu")  # what a run does before anything trains (RunContext.prepare)
torch.manual_seed(0)
config = BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=256, max_position_embeddings=64)
model = BertAdapterModel(config)
model.add_masked_lm_head("default")
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
generator = torch.Generator().manual_seed(1)
for _ in range(4):
    ids = torch.randint(5, 1000, (16, 64), generator=generator)
    masked = torch.rand(ids.shape, generator=generator) < 0.15
    loss = model(input_ids=ids, labels=torch.where(masked, ids, torch.full_like(ids, -100))).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
weights = b"".join(p.detach().numpy().tobytes() for p in model.parameters())
print(hashlib.sha256(weights).hexdigest(), torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())
"""

CHOICES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _train(*envs: dict[str, str]) -> list[list[str]]:
    """TRAIN's output under each environment, each in a fresh process (all started at once)."""
    clean = {k: v for k, v in os.environ.items() if k not in CHOICES and not k.startswith("XLT_CPU")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", TRAIN],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**clean, **env},
        )
        for env in envs
    ]
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        outputs.append(stdout.split())
    return outputs


def test_pinned_cpu_runs_store_the_same_bytes_whatever_the_machine_would_pick():
    # one pinned thread keeps the test quick on a loaded machine; the count is pinned all the same
    same = {"XLT_CPU_THREADS": "1", "OMP_NUM_THREADS": "3"}
    native = {"XLT_CPU_NATIVE": "1", "OMP_NUM_THREADS": "1"}
    pinned, compatible, avx512, native_avx2, native_default, native_threads = _train(
        {"XLT_CPU_THREADS": "1"},
        {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", **same},
        {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AUTO", **same},
        {**native, "ATEN_CPU_CAPABILITY": "avx2"},
        {**native, "ATEN_CPU_CAPABILITY": "default"},
        {**native, "ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "3"},
    )
    assert pinned[1:] == ["AVX2", "1"]
    assert compatible == pinned and avx512 == pinned
    # without the pin the kernels the machine picks change the weights (AVX2 on every x86-64 CPU
    # this targets; the plain fallback is what a CPU without AVX2 would run)
    assert native_avx2[1:] == ["AVX2", "1"] and native_default[1:] == ["DEFAULT", "1"]
    assert native_avx2[0] != native_default[0]
    # and so does the thread count
    assert native_threads[0] != native_avx2[0]


def test_the_thread_count_of_cpu_runs_is_checked(monkeypatch):
    from xltransfer import cpu
    from xltransfer.errors import XltError

    monkeypatch.delenv("XLT_CPU_THREADS", raising=False)
    assert cpu.threads() == cpu.DEFAULT_THREADS
    monkeypatch.setenv("XLT_CPU_THREADS", "0")
    with pytest.raises(XltError, match="XLT_CPU_THREADS"):
        cpu.threads()
    monkeypatch.setenv("XLT_CPU_THREADS", "4")
    assert cpu.threads() == 4
