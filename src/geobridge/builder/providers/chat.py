"""One call to an OpenAI-compatible ``POST {base_url}/chat/completions`` endpoint with images.

The single place that builds a chat-completions request, sends it through the shared
`HttpClient` (rate limit, retries with back-off, on-disk cache) and reads the assistant's text
out of the reply. Both language-model users go through it: the dataset builder's describer
(`geobridge.builder.describe`) and GLEAM-X's explainer client (`geobridge.explain.llm`).

    message = user_message(PROMPT, "drone image:", drone_png, "satellite image:", satellite_png)
    body = request_body("qwen2.5-vl", [message], temperature=0.0, max_tokens=300)
    reply = ask_chat(http_client, "http://localhost:8000/v1", body, api_key=key)
    reply.text, reply.from_cache

Images travel as base64 data URLs. The API key only ever goes in the ``Authorization`` header,
which is not part of the cache key, so cache files never hold it. A reply that is JSON but not a
chat completion (no ``choices[0].message.content``, or an empty message) raises `ChatReplyError`
and is never cached.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from geobridge.builder.providers.base import ProviderError
from geobridge.builder.providers.http import HttpClient, redact

# Statuses worth asking a chat endpoint again: timeouts, conflicts, rate limits and server errors.
CHAT_RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class ChatReplyError(ProviderError):
    """The endpoint answered, but not with a usable chat-completions message."""


@dataclass(frozen=True)
class ChatReply:
    """The assistant's text and whether the on-disk cache served it."""

    text: str
    from_cache: bool


def completions_url(base_url: str) -> str:
    """``{base_url}/chat/completions``; ``base_url`` ends before it (e.g. ``.../v1``)."""
    return base_url.rstrip("/") + "/chat/completions"


def image_data_url(encoded: bytes) -> str:
    """A ``data:image/jpeg|png;base64,...`` URL of encoded image bytes (JPEG by its magic, else PNG)."""
    mime = "image/jpeg" if encoded[:3] == b"\xff\xd8\xff" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(encoded).decode('ascii')}"


def user_message(*parts: str | bytes) -> dict:
    """One user message from text (``str``) and encoded images (``bytes``), in the given order."""
    content: list[dict] = []
    for part in parts:
        if isinstance(part, str):
            content.append({"type": "text", "text": part})
        elif isinstance(part, bytes):
            content.append({"type": "image_url", "image_url": {"url": image_data_url(part)}})
        else:
            raise TypeError(
                f"a message part is text (str) or an encoded image (bytes), got {type(part).__name__}"
            )
    return {"role": "user", "content": content}


def request_body(model: str, messages: Sequence[dict], *, temperature: float, max_tokens: int) -> dict:
    """The JSON body of a chat-completions request."""
    return {"model": model, "messages": list(messages), "temperature": temperature, "max_tokens": max_tokens}


def reply_text(data: Any, shown_url: str = "the chat endpoint") -> str:
    """The assistant's text, ``choices[0].message.content`` (content parts joined); `ChatReplyError` otherwise."""
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as err:
        raise ChatReplyError(
            f"{shown_url} answered without choices[0].message.content ({type(err).__name__}): "
            "is it an OpenAI-compatible chat-completions endpoint?"
        ) from None
    if isinstance(content, list):  # content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise ChatReplyError(f"{shown_url} answered with an empty message")
    return content


def ask_chat(
    client: HttpClient, base_url: str, body: dict, api_key: str | None = None, use_cache: bool = True
) -> ChatReply:
    """POST ``body`` to the endpoint's chat completions and return the assistant's text.

    Transport problems raise `ProviderError` (from the client, after its retries); a reply in the
    wrong shape raises `ChatReplyError`.
    """
    url = completions_url(base_url)
    shown = redact(url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    reply = client.post_json_reply(
        url, body, headers=headers, use_cache=use_cache, validate=partial(reply_text, shown_url=shown)
    )
    return ChatReply(text=reply_text(reply.data, shown), from_cache=reply.from_cache)
