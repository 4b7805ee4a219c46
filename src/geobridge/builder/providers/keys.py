"""API keys come from environment variables named in the config, never from the config itself,
and never appear in messages."""

from __future__ import annotations

import os

from geobridge.builder.providers.base import ProviderError


def key_from_env(variable: str | None, service: str) -> str:
    """The key held by ``variable``; a clear error naming the variable (not the key) otherwise."""
    if not variable:
        raise ProviderError(f"{service} needs an API key: set key_env to the name of an environment variable")
    value = os.environ.get(variable, "").strip()
    if not value:
        raise ProviderError(f"{service} needs an API key: environment variable {variable} is not set")
    return value
