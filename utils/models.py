"""Load a causal LM (or an embedding encoder) with its tokenizer, from `data/models/` or the Hugging Face Hub.

Weights always come from safetensors with `trust_remote_code=False`. A hub model that is neither cached nor
reachable fails within seconds with a message that says what to do, never a long retry loop.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from urllib.parse import urlparse

import torch

from utils.paths import MODELS

PROBE_TIMEOUT_S = 3.0


class ModelUnavailableError(RuntimeError):
    """The model is neither on disk nor downloadable right now."""


def resolve(name: str) -> str | Path:
    """A folder under data/models/ or an existing path -> that Path; anything else is a hub id."""
    local = MODELS / name
    if local.is_dir():
        return local
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser()
    return name


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Can we open a TCP connection to the hub (or $HF_ENDPOINT) within `timeout` seconds, DNS included?"""
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)

    def connect():
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True

    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(connect).result(timeout=timeout)
    except (OSError, FutureTimeout):
        return False
    finally:
        pool.shutdown(wait=False)


def _cached(model_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model_id, "config.json"), str)


def ensure_available(model_id: str) -> None:
    """Raise ModelUnavailableError at once unless `model_id` is cached or the hub answers."""
    if _cached(model_id):
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if offline or not hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face Hub cannot be reached"
        raise ModelUnavailableError(
            f"Cannot load {model_id!r}: it is not in the local cache and {why}.\n"
            "  - Offline? Use the tiny profile: PROFILE = 'tiny' in the setup cell, or WORKBOOK_PROFILE=tiny.\n"
            f"  - Online later? Download it once: huggingface-cli download {model_id}\n"
            "  - Gated model (Gemma, Llama)? Log in first: huggingface-cli login"
        )


def load_model(name: str, device: str = "cpu", dtype: torch.dtype | None = None, kind: str = "causal-lm"):
    """Return (model, tokenizer) in eval mode on `device`.

    name: a folder under data/models/, a local path, or a hub id. kind: "causal-lm" or "encoder"
    (an embedding model such as sentence-transformers/all-MiniLM-L6-v2).
    """
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    source = resolve(name)
    local = isinstance(source, Path)
    if not local:
        ensure_available(source)
    model_cls = {"causal-lm": AutoModelForCausalLM, "encoder": AutoModel}[kind]
    common = {"trust_remote_code": False, "local_files_only": local}
    tokenizer = AutoTokenizer.from_pretrained(source, **common)
    model = model_cls.from_pretrained(source, use_safetensors=True, dtype=dtype, **common)
    return model.to(device).eval(), tokenizer
