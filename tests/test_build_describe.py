"""Stage 4 text: the OpenAI-compatible chat client against a loopback fake endpoint, and the
offline describers."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from test_build_fakes import FakeServer, json_reply, png_bytes

from geobridge.builder.config import ChatEndpoint, HttpSettings, TextSettings
from geobridge.builder.describe import PROMPT, ChatDescriber, NoDescriber, make_describer
from geobridge.builder.providers.base import ProviderError
from geobridge.builder.providers.http import HttpClient

FAST = HttpSettings(requests_per_second=1000, retries=2, backoff_s=0.01, timeout_s=5)


def images() -> dict[str, bytes]:
    return {
        v: png_bytes(np.full((8, 8, 3), i * 50, np.uint8))
        for i, v in enumerate(("drone", "street", "satellite"))
    }


def test_chat_describer_sends_three_views_retries_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_LLM_KEY", "sk-very-secret")
    state = {"calls": 0}

    def chat(path, query, headers, body):
        state["calls"] += 1
        if state["calls"] == 1:
            return 429, "application/json", b'{"error": "rate limited"}'
        return json_reply(
            {
                "choices": [
                    {
                        "message": {
                            "role": "assistant",
                            "content": "  A river bend with a bridge\n and low houses. ",
                        }
                    }
                ]
            }
        )

    with FakeServer() as server:
        server.routes["/v1/chat/completions"] = chat
        endpoint = ChatEndpoint(base_url=server.url + "/v1", model="vision-mini", key_env="FAKE_LLM_KEY")
        describer = ChatDescriber(endpoint, HttpClient(FAST, cache_dir=tmp_path / "cache"))
        first = describer.describe(47.0, 8.0, images())
        assert (
            first.text == "A river bend with a bridge and low houses." and first.source == "llm:vision-mini"
        )
        assert state["calls"] == 2  # one 429, retried
        request = server.log[-1]
        assert request["headers"]["Authorization"] == "Bearer sk-very-secret"
        payload = json.loads(request["body"])
        assert payload["model"] == "vision-mini"
        content = payload["messages"][0]["content"]
        assert (
            content[0]["text"] == PROMPT
            and "ignore transient" in PROMPT.lower()
            and "merge" in PROMPT.lower()
        )
        urls = [c["image_url"]["url"] for c in content if c["type"] == "image_url"]
        assert len(urls) == 3 and all(u.startswith("data:image/png;base64,") for u in urls)
        assert base64.b64decode(urls[1].split(",", 1)[1]) == images()["street"]
        again = describer.describe(47.0, 8.0, images())
        assert again.text == first.text and state["calls"] == 2  # answered from the on-disk cache
        other = dict(images(), drone=png_bytes(np.full((8, 8, 3), 7, np.uint8)))
        describer.describe(47.0, 8.0, other)
        assert state["calls"] == 3  # other image bytes, other cache key
    cached = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert b"sk-very-secret" not in cached


def test_chat_describer_reports_malformed_answers_and_never_caches_them(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_LLM_KEY", "k")
    good = json_reply(
        {
            "choices": [
                {
                    "message": {
                        "content": [
                            {"type": "text", "text": "A square "},
                            {"type": "text", "text": "with a fountain."},
                        ]
                    }
                }
            ]
        }
    )
    replies = [json_reply({"choices": []}), json_reply({"choices": [{"message": {"content": "  "}}]}), good]
    with FakeServer() as server:
        server.routes["/chat/completions"] = lambda *a: replies[min(len(server.log), len(replies)) - 1]
        describer = ChatDescriber(
            ChatEndpoint(base_url=server.url, model="m", key_env="FAKE_LLM_KEY"),
            HttpClient(FAST, cache_dir=tmp_path / "cache"),
        )
        with pytest.raises(
            ProviderError, match=r"/chat/completions answered without choices\[0\]\.message\.content"
        ):
            describer.describe(0.0, 0.0, images())
        with pytest.raises(ProviderError, match="answered with an empty message"):
            describer.describe(0.0, 0.0, images())
        assert len(server.log) == 2, "the malformed first reply was not served from the cache"
        assert (
            describer.describe(0.0, 0.0, images()).text == "A square with a fountain."
        )  # content parts joined
        assert describer.describe(0.0, 0.0, images()).text == "A square with a fountain."
        assert len(server.log) == 3, "only the good reply is cached"


def test_describer_choice_and_the_no_describer_note(tmp_path):
    assert isinstance(make_describer(TextSettings(), FAST, tmp_path), NoDescriber)
    chat = make_describer(
        TextSettings(endpoint=ChatEndpoint(base_url="http://h/v1", model="m", key_env=None)), FAST, tmp_path
    )
    assert (
        isinstance(chat, ChatDescriber) and {408, 429, 503} <= chat.client.retry_statuses
    )  # the chat retry set
    chat.client.close()
    note = NoDescriber().describe(1.0, 2.0, images())
    assert note.text == "" and "no text endpoint" in note.note


def test_world_describer_inside_and_outside_the_known_world(tmp_path):
    from geobridge.builder.describe import WorldDescriber
    from geobridge.builder.products import world_bounds

    world_file = tmp_path / "world.json"
    world_file.write_text(json.dumps({"world": {"seed": 3, "size_m": 300, "cell_size_m": 1.0, "regions": 1}}))
    describer = WorldDescriber(world_file)
    lat, lon = world_bounds(describer.world).centre
    inside = describer.describe(lat, lon, {})
    assert inside.text and inside.source.startswith("world:")
    assert describer.describe(lat, lon, {}).text == inside.text  # deterministic
    outside = describer.describe(lat + 1.0, lon, {})
    assert outside.text == "" and "outside the known world" in outside.note
