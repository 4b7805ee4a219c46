"""A client for any OpenAI-compatible chat-completions endpoint with image input (GPT-4o, Qwen2.5-VL
served by vLLM, Doubao, ...), asking for a GLEAM-X explanation of a satellite/query pair.

    client = LLMClient(LLMConfig(base_url="http://localhost:8000/v1", model="qwen2.5-vl-7b",
                                 cache_dir=".cache/gleam-x"))
    answer = client.explain(satellite_rgb, drone_rgb, "drone", lang="en")
    answer.text, answer.verdict   # "... Verdict: yes", True

Both images travel as base64 PNG data URLs in one user message. The request, the POST and the
reply's parsing are the shared chat helper's (`geobridge.builder.providers.chat`) over the shared
`HttpClient`, the same ones the dataset builder's describer uses: rate limits (429), server errors
(5xx) and connection failures are retried with exponential back-off (``Retry-After`` honoured,
capped at ``max_backoff_s``), and answers are cached on disk under ``cache_dir`` (files named by a
SHA-256 of the URL and request body: model, prompt, image bytes), so a repeated call costs nothing.
The API key is read from the environment variable named by ``api_key_env`` at call time, sent
only in the Authorization header, and never logged, cached or put in an error message.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geobridge.builder.config import HttpSettings
from geobridge.builder.providers.base import ProviderError
from geobridge.builder.providers.chat import (
    CHAT_RETRY_STATUSES,
    ChatReply,
    ask_chat,
    completions_url,
    request_body,
    user_message,
)
from geobridge.builder.providers.http import HttpClient, redact
from geobridge.explain.cues import as_rgb_array
from geobridge.explain.verdict_text import parse_verdict

log = logging.getLogger(__name__)

PROMPTS = {
    "en": (
        "The first image is a satellite image. The second image is a {view} that may or may not show the same "
        "location. Write one paragraph in English: describe both images, cite the cues that match and the cues "
        "that conflict (water, vegetation, building density and height, roof colours, road layout, landmarks), "
        "and decide whether the two images show the same place. End with a final line that is exactly "
        "'Verdict: yes' or 'Verdict: no'."
    ),
    "zh": (
        "第一张图是卫星影像，第二张图是{view}，它可能与卫星影像是同一地点，也可能不是。请用中文写一段话："
        "描述两张图像，指出一致的线索和矛盾的线索（水体、植被、建筑密度与高度、屋顶颜色、道路布局、地标），"
        "并判断两张图像是否拍摄于同一地点。最后一行必须是“结论：是”或“结论：否”。"
    ),
}
VIEW_WORDS = {
    "en": {
        "drone": "drone (UAV) image",
        "street": "street-view panorama",
        "map": "street map tile",
        "ground": "ground photo",
    },
    "zh": {"drone": "无人机影像", "street": "街景全景图", "map": "街道地图瓦片", "ground": "地面照片"},
}
RETRY_STATUS = CHAT_RETRY_STATUSES  # the statuses retried (rate limits, timeouts, server errors)


class LLMError(RuntimeError):
    """The endpoint could not give an answer (after retries); the message never holds the key."""


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to ask. ``base_url`` ends before ``/chat/completions`` (e.g. ``.../v1``)."""

    base_url: str
    model: str
    api_key_env: str = "GEOBRIDGE_LLM_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    temperature: float = 0.0
    max_tokens: int = 700
    cache_dir: str | Path | None = None


@dataclass(frozen=True)
class LLMAnswer:
    text: str
    verdict: bool | None
    cached: bool


def png_bytes(image: Any) -> bytes:
    """PNG bytes of an image (path, PIL image or uint8 array)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(as_rgb_array(image)).save(buffer, format="PNG")
    return buffer.getvalue()


class LLMClient:
    """Ask a multimodal chat model for a GLEAM-X explanation; see the module docstring.

    ``sleep`` waits between retries (tests pass a recorder so they do not wait).
    """

    def __init__(self, config: LLMConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        settings = HttpSettings(
            retries=config.max_retries,
            backoff_s=config.backoff_s,
            timeout_s=config.timeout_s,
            user_agent="geobridge-explain/0.1",
        )
        self.http = HttpClient(
            settings,
            cache_dir=config.cache_dir,
            sleep=sleep,
            retry_statuses=RETRY_STATUS,
            max_backoff_s=config.max_backoff_s,
        )

    def close(self) -> None:
        self.http.close()

    # -------------------------------------------------------------- request pieces
    def messages(self, satellite: Any, query: Any, query_view: str, lang: str) -> list[dict]:
        if lang not in PROMPTS:
            raise ValueError(f"lang must be one of {', '.join(PROMPTS)}, got {lang!r}")
        prompt = PROMPTS[lang].format(view=VIEW_WORDS[lang].get(query_view, query_view))
        return [user_message(prompt, png_bytes(satellite), png_bytes(query))]

    # -------------------------------------------------------------- calls
    def explain(self, satellite: Any, query: Any, query_view: str, lang: str = "en") -> LLMAnswer:
        """The model's paragraph and the verdict parsed from it (None if it gave none)."""
        reply = self._ask(self.messages(satellite, query, query_view, lang))
        return LLMAnswer(text=reply.text, verdict=parse_verdict(reply.text), cached=reply.from_cache)

    def complete(self, messages: list[dict]) -> str:
        """The assistant message's text for a chat request (retried, cached); `LLMError` otherwise."""
        return self._ask(messages).text

    def _ask(self, messages: list[dict]) -> ChatReply:
        config = self.config
        body = request_body(
            config.model, messages, temperature=config.temperature, max_tokens=config.max_tokens
        )
        key = os.environ.get(config.api_key_env) or None
        shown = redact(completions_url(config.base_url))
        try:
            reply = ask_chat(self.http, config.base_url, body, api_key=key)
        except ProviderError as err:
            raise LLMError(
                _scrub(
                    f"{err}; check that an OpenAI-compatible server answers at {redact(config.base_url)} and serves "
                    f"model {config.model!r}, and that ${config.api_key_env} holds its API key if it needs one",
                    key,
                )
            ) from err
        log.info(
            "llm POST %s (model %s): %s",
            shown,
            config.model,
            "answer from the cache" if reply.from_cache else "answered",
        )
        return reply


def _scrub(message: str, key: str | None) -> str:
    """Remove the API key from a message, should a library ever have echoed it."""
    return message.replace(key, "***") if key else message
