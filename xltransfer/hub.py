"""Hugging Face Hub reachability, checked once and fast.

Loading code for real runs uses the hub (users have it). On a machine without network the
libraries can spend minutes in retries; this check answers within a few seconds so the
harness can fail with a message that says how to use local files instead.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from urllib.parse import urlparse

CONNECT_TIMEOUT_S = 3.0


def offline_by_environment() -> bool:
    return any(
        os.environ.get(v, "").lower() in {"1", "true", "yes"}
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    if offline_by_environment():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection(
            (endpoint.hostname or "huggingface.co", port), timeout=CONNECT_TIMEOUT_S
        ):
            return True
    except OSError:
        return False
