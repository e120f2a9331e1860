"""Is the Hugging Face hub reachable? A fast probe, so that offline runs fall back to
local copies at once instead of sitting through the hub client's retries."""

from __future__ import annotations

import logging
import os
import socket
from functools import lru_cache
from urllib.parse import urlparse

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


def offline_forced() -> bool:
    return any(os.environ.get(v, "").lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """True when a TCP connection to the hub endpoint opens within `timeout` seconds."""
    if offline_forced():
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError as exc:
        log.info("Hugging Face hub not reachable (%s): using local sources", exc)
        return False
