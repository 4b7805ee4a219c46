"""Stage 4 text: one location text from its three views.

- `ChatDescriber`: any OpenAI-compatible ``POST {base_url}/chat/completions`` endpoint with a
  vision model. The drone crop, the panorama and the satellite image go in as base64 data URLs;
  the prompt (GeoLoc's recipe) asks to merge the views, summarise the place with cues every view
  shares, and ignore transient things. The key comes from an environment variable and is only
  ever sent in the ``Authorization`` header; answers are cached on disk by a hash of the request
  (model, prompt, image bytes), so a resumed build never pays twice. The request, the call (retries
  with back-off, cache) and the reply's parsing are the shared chat helper's
  (`geobridge.builder.providers.chat`), the same one GLEAM-X's explainer uses.
- `WorldDescriber`: offline, for locations inside a known embedded world (the products'
  ``world.json``): the world's own describer (`geobridge.world.describe.describe_location`).
- `NoDescriber`: neither is available; the text stays empty and the report says why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from geobridge.builder.config import ChatEndpoint, HttpSettings, TextSettings
from geobridge.builder.providers.base import ProviderError
from geobridge.builder.providers.chat import CHAT_RETRY_STATUSES, ask_chat, request_body, user_message
from geobridge.builder.providers.http import HttpClient
from geobridge.builder.providers.keys import key_from_env

PROMPT = (
    "You see three images of the same place: a drone image, a 360-degree street-level panorama and a "
    "satellite image. Merge what the three show and write one short paragraph (2-4 sentences) that "
    "describes the place itself using only cues that all views share: the road layout and "
    "intersections, rivers, bridges, building blocks (density, height, roof colour), parks, squares "
    "and landmarks. Ignore transient things (cars, people, shadows, weather, season). Do not mention "
    "the images, the cameras or the viewpoints."
)


@dataclass(frozen=True)
class Description:
    """A location text and where it came from ('llm:<model>', 'world:<name>', or 'none')."""

    text: str
    source: str
    note: str = ""


class Describer(Protocol):
    def describe(self, lat: float, lon: float, images: dict[str, bytes]) -> Description:
        """Text of the location at (lat, lon) given its encoded images by view name."""


class ChatDescriber:
    """Describe a location with an OpenAI-compatible vision chat endpoint."""

    def __init__(self, endpoint: ChatEndpoint, client: HttpClient):
        self.endpoint = endpoint
        self.client = client
        self._key = key_from_env(endpoint.key_env, "the text endpoint") if endpoint.key_env else None

    def request_body(self, images: dict[str, bytes]) -> dict:
        """The prompt, then each available view as a label and its image."""
        parts: list[str | bytes] = [PROMPT]
        for view in ("drone", "street", "satellite"):
            if view in images:
                parts += [f"{view} image:", images[view]]
        return request_body(
            self.endpoint.model,
            [user_message(*parts)],
            temperature=self.endpoint.temperature,
            max_tokens=self.endpoint.max_tokens,
        )

    def describe(self, lat: float, lon: float, images: dict[str, bytes]) -> Description:
        # cached by the request body (model + prompt + images), never by the key
        reply = ask_chat(self.client, self.endpoint.base_url, self.request_body(images), api_key=self._key)
        return Description(text=" ".join(reply.text.split()), source=f"llm:{self.endpoint.model}")


class WorldDescriber:
    """Describe locations inside an embedded world with its own offline describer."""

    def __init__(self, world_file: str | Path, seed: int = 0):
        from geobridge.builder.products import world_bounds, world_from_file

        self.world = world_from_file(world_file)
        self.bounds = world_bounds(self.world)
        self.seed = seed

    def describe(self, lat: float, lon: float, images: dict[str, bytes]) -> Description:
        import numpy as np

        from geobridge.world.describe import describe_location

        if not self.bounds.contains(lat, lon):
            return Description(
                "", "none", f"({lat:.6f}, {lon:.6f}) lies outside the known world {self.world.name}"
            )
        digest = hashlib.sha256(f"{self.seed}:{lat:.7f}:{lon:.7f}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        return Description(describe_location(self.world, lat, lon, rng), f"world:{self.world.name}")


class NoDescriber:
    """No endpoint and no known world: empty texts, with the reason in the report."""

    NOTE = "no text endpoint configured (text.endpoint) and no known world (text.world): text left empty"

    def describe(self, lat: float, lon: float, images: dict[str, bytes]) -> Description:
        return Description("", "none", self.NOTE)


def make_describer(settings: TextSettings, http: HttpSettings, cache_dir: Path, seed: int = 0) -> Describer:
    """The endpoint when configured, else the embedded world's describer, else none."""
    if settings.endpoint is not None:
        return ChatDescriber(
            settings.endpoint, HttpClient(http, cache_dir=cache_dir, retry_statuses=CHAT_RETRY_STATUSES)
        )
    if settings.world is not None:
        try:
            return WorldDescriber(settings.world, seed=seed)
        except (OSError, ValueError, KeyError) as err:
            raise ProviderError(
                f"text.world {settings.world}: cannot load the world it describes ({err})"
            ) from err
    return NoDescriber()
