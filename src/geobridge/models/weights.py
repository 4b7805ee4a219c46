"""Where a tower's pretrained weights come from: disk first, the hub only when it answers.

Every backend loads its weights inside :func:`local_first`. The load is tried with the Hugging
Face hub forced offline (a local directory, a weights file, or the HF cache); only when that
fails and the hub endpoint accepts a TCP connection within two seconds is the download tried.
Without that probe, an unreachable hub costs a minute of retries per file before the error.
The error names the weights and the three ways to supply them (see :func:`missing_weights`).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from urllib.parse import urlparse

from geobridge.models.towers.base import TowerLoadError

T = TypeVar("T")

#: How to supply weights, per backend; ``{name}`` is the weights' name (hub id, timm or open_clip name).
ADVICE = {
    "hf-clip": (
        "pass a local directory written by CLIPModel.save_pretrained as the tower's source "
        "(model.overrides.towers.TOWER.source=DIR), or copy the Hugging Face cache of {name} "
        "(huggingface-cli download {name} on a machine with internet) into HF_HOME here"
    ),
    "timm": (
        "give timm the weights file: model.overrides.towers.TOWER.options.pretrained_cfg_overlay.file="
        "/path/to/{name}.safetensors, or copy the Hugging Face cache of timm/{name} into HF_HOME here"
    ),
    "open-clip": (
        "give open_clip the checkpoint file: model.overrides.towers.TOWER.options.pretrained="
        "/path/to/open_clip_model.safetensors, or copy the Hugging Face cache of {name} "
        "into HF_HOME here"
    ),
    "sentence-transformers": (
        "pass a local directory written by SentenceTransformer.save as the tower's "
        "source, or copy the Hugging Face cache of {name} into HF_HOME here"
    ),
}


def hub_reachable(timeout: float = 2.0) -> bool:
    """True when downloads are allowed (HF_HUB_OFFLINE unset) and the hub endpoint accepts a
    TCP connection within ``timeout`` seconds."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def hub_offline() -> Iterator[None]:
    """Force huggingface_hub (hence transformers, timm, open_clip) to read the local cache only;
    the libraries' own error logs of a failed attempt are silenced (the caller reports it)."""
    from huggingface_hub import constants

    saved, saved_env = constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE")
    constants.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        constants.HF_HUB_OFFLINE = saved
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


def missing_weights(backend: str, name: str, err: BaseException | None = None) -> TowerLoadError:
    """The one-line error for pretrained weights that are neither on disk nor downloadable."""
    why = f" ({type(err).__name__})" if err is not None else ""
    advice = ADVICE.get(backend, "put them on disk and pass their path as the tower's source")
    advice = advice.format(name=name)
    return TowerLoadError(
        f"pretrained weights {name!r} ({backend}) are not on this machine and the hub "
        f"cannot be reached{why}: {advice}; or train from random weights with model.init=random"
    )


def local_first(load: Callable[[], T], backend: str, name: str) -> T:
    """``load()`` from disk (hub forced offline); if that fails, download only when the hub
    answers, else raise :func:`missing_weights` at once."""
    try:
        with hub_offline():
            return load()
    except (OSError, RuntimeError, ValueError) as err:
        if not hub_reachable():
            raise missing_weights(backend, name, err) from None
    try:
        return load()
    except (OSError, RuntimeError) as err:
        raise missing_weights(backend, name, err) from None
