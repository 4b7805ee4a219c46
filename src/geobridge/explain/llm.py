"""A client for any OpenAI-compatible chat-completions endpoint with image input (GPT-4o, Qwen2.5-VL
served by vLLM, Doubao, ...), asking for a GLEAM-X explanation of a satellite/query pair.

    client = LLMClient(LLMConfig(base_url="http://localhost:8000/v1", model="qwen2.5-vl-7b",
                                 cache_dir=".cache/gleam-x"))
    answer = client.explain(satellite_rgb, drone_rgb, "drone", lang="en")
    answer.text, answer.verdict   # "... Verdict: yes", True

Both images travel as base64 PNG data URLs in one user message. The API key is read from the
environment variable named by ``api_key_env`` at call time, sent only in the Authorization
header, and never logged or put in an error message. Rate limits (429), server errors (5xx)
and connection failures are retried with exponential back-off (``Retry-After`` honoured, capped).
Answers are cached on disk, keyed by a SHA-256 of the model, prompt and image bytes, so a
repeated call costs nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geobridge.atomic import atomic_write_text
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
    "en": {"drone": "drone (UAV) image", "street": "street-view panorama", "map": "street map tile", "ground": "ground photo"},
    "zh": {"drone": "无人机影像", "street": "街景全景图", "map": "街道地图瓦片", "ground": "地面照片"},
}
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


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


def png_data_url(image: Any) -> str:
    """``data:image/png;base64,...`` of an image (path, PIL image or uint8 array)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(as_rgb_array(image)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class LLMClient:
    """Ask a multimodal chat model for a GLEAM-X explanation; see the module docstring."""

    def __init__(self, config: LLMConfig, sleep=time.sleep) -> None:
        self.config = config
        self._sleep = sleep

    # -------------------------------------------------------------- request pieces
    def messages(self, satellite: Any, query: Any, query_view: str, lang: str) -> list[dict]:
        if lang not in PROMPTS:
            raise ValueError(f"lang must be one of {', '.join(PROMPTS)}, got {lang!r}")
        prompt = PROMPTS[lang].format(view=VIEW_WORDS[lang].get(query_view, query_view))
        return [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": prompt},
                    {"type": "image_url", "image_url": {"url": png_data_url(satellite)}},
                    {"type": "image_url", "image_url": {"url": png_data_url(query)}},
                ],
            }
        ]

    def cache_key(self, messages: list[dict]) -> str:
        payload = json.dumps({"model": self.config.model, "temperature": self.config.temperature,
                              "messages": messages}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _cache_path(self, key: str) -> Path | None:
        return None if self.config.cache_dir is None else Path(self.config.cache_dir) / f"{key}.json"

    # -------------------------------------------------------------- calls
    def explain(self, satellite: Any, query: Any, query_view: str, lang: str = "en") -> LLMAnswer:
        """The model's paragraph and the verdict parsed from it (None if it gave none)."""
        messages = self.messages(satellite, query, query_view, lang)
        key = self.cache_key(messages)
        cache_path = self._cache_path(key)
        if cache_path is not None and cache_path.is_file():
            try:
                text = json.loads(cache_path.read_text(encoding="utf-8"))["text"]
                log.info("llm cache hit %s", key[:12])
                return LLMAnswer(text=text, verdict=parse_verdict(text), cached=True)
            except (json.JSONDecodeError, KeyError):
                log.warning("ignoring unreadable llm cache entry %s", cache_path)
        text = self.complete(messages)
        if cache_path is not None:
            atomic_write_text(cache_path, json.dumps({"model": self.config.model, "text": text}, ensure_ascii=False))
        return LLMAnswer(text=text, verdict=parse_verdict(text), cached=False)

    def complete(self, messages: list[dict]) -> str:
        """POST the chat request with retries; the assistant message's text."""
        import httpx

        url = self.config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = {"model": self.config.model, "messages": messages, "temperature": self.config.temperature,
                "max_tokens": self.config.max_tokens}
        last_problem = "no attempt made"
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                delay = min(self.config.backoff_s * 2 ** (attempt - 1), self.config.max_backoff_s)
                log.info("llm retry %d/%d in %.1fs after: %s", attempt, self.config.max_retries, delay, last_problem)
                self._sleep(delay)
            log.info("llm POST %s (model %s, attempt %d)", url, self.config.model, attempt + 1)
            try:
                response = httpx.post(url, json=body, headers=headers, timeout=self.config.timeout_s)
            except httpx.HTTPError as err:
                last_problem = _scrub(f"{type(err).__name__}: {err}", key)
                continue
            if response.status_code in RETRY_STATUS:
                last_problem = f"HTTP {response.status_code}"
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit() and attempt < self.config.max_retries:
                    self._sleep(min(float(retry_after), self.config.max_backoff_s))
                continue
            if response.status_code >= 400:
                raise LLMError(_scrub(f"{url} answered HTTP {response.status_code}: {response.text[:200]}", key))
            return _message_text(response, url)
        raise LLMError(_scrub(f"{url} failed after {self.config.max_retries + 1} attempts: {last_problem}", key))


def _message_text(response: Any, url: str) -> str:
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise LLMError(f"{url} did not answer in the chat-completions shape ({type(err).__name__})") from err
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise LLMError(f"{url} answered with an empty message")
    return content


def _scrub(message: str, key: str | None) -> str:
    """Remove the API key from a message, should a library ever have echoed it."""
    return message.replace(key, "***") if key else message
