"""The OpenAI-compatible multimodal client against a fake chat-completions server on loopback,
and the GLEAM-X text metrics."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from geobridge.explain import Explainer
from geobridge.explain.llm import LLMClient, LLMConfig, LLMError

SECRET = "sk-test-5f3a9c0e7d1b42aa"


class FakeChatServer:
    """Answers POST /v1/chat/completions; the first ``fail_first`` requests get ``failure``
    (status, headers, body; HTTP 500 by default), then ``reply`` (a chat completion of ``answer``
    unless given)."""

    def __init__(
        self,
        answer: str,
        fail_first: int = 0,
        failure: tuple[int, dict, bytes] = (500, {}, b"overloaded"),
        reply: dict | None = None,
    ) -> None:
        self.requests: list[dict] = []
        self.fail_first = fail_first
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                if len(server.requests) <= server.fail_first:
                    status, headers, text = failure
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                payload = json.dumps(
                    reply
                    if reply is not None
                    else {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": answer},
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), rng.integers(
        0, 255, (32, 32, 3), dtype=np.uint8
    )


def test_client_retries_after_a_500_caches_the_answer_and_never_logs_the_key(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GEOBRIDGE_LLM_API_KEY", SECRET)
    sleeps: list[float] = []
    answer = (
        "The satellite image shows a river; the drone image shows the same river and bridge. Verdict: yes"
    )
    sat, drone = _images()
    caplog.set_level(logging.DEBUG)
    with FakeChatServer(answer, fail_first=1) as server:
        client = LLMClient(
            LLMConfig(base_url=server.url, model="qwen2.5-vl", cache_dir=tmp_path / "cache", backoff_s=0.5),
            sleep=sleeps.append,
        )
        first = client.explain(sat, drone, "drone", lang="en")
        assert first.text == answer and first.verdict is True and not first.cached
        assert len(server.requests) == 2 and sleeps == [0.5]  # one failure, one back-off, one success
        request = server.requests[-1]
        assert request["path"] == "/v1/chat/completions"
        assert request["auth"] == f"Bearer {SECRET}"
        content = request["body"]["messages"][0]["content"]
        urls = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
        assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)
        assert "Verdict: yes" in content[0]["text"]
        second = client.explain(sat, drone, "drone", lang="en")
        assert second.cached and second.text == answer
        assert len(server.requests) == 2, "the second call is served from the cache"
        # the shared HTTP client's cache: one answer body (+ its content type), named by a hash
        cache_files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
        assert len([p for p in cache_files if p.suffix == ".body"]) == 1
        assert (
            json.loads(next(p for p in cache_files if p.suffix == ".body").read_text())["choices"][0][
                "message"
            ]["content"]
            == answer
        )
    assert "llm POST" in caplog.text and "retry" in caplog.text
    assert SECRET not in caplog.text
    assert cache_files and all(SECRET.encode() not in p.read_bytes() for p in cache_files)


def test_client_gives_up_with_an_error_that_does_not_hold_the_key(monkeypatch, caplog):
    monkeypatch.setenv("GEOBRIDGE_LLM_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    sat, drone = _images()
    sleeps: list[float] = []
    with FakeChatServer("unused", fail_first=10) as server:
        client = LLMClient(
            LLMConfig(base_url=server.url, model="m", max_retries=2, backoff_s=1.0, max_backoff_s=1.5),
            sleep=sleeps.append,
        )
        with pytest.raises(
            LLMError,
            match=r"HTTP 500 from http://127\.0\.0\.1:\d+/v1/chat/completions "
            r"\(gave up after 3 attempts\)",
        ) as err:
            client.explain(sat, drone, "street", lang="zh")
        assert len(server.requests) == 3
    assert sleeps == [1.0, 1.5]  # exponential back-off 1 s, 2 s, capped at max_backoff_s
    message = str(err.value)
    assert (
        "check that an OpenAI-compatible server answers at" in message and "$GEOBRIDGE_LLM_API_KEY" in message
    )
    assert SECRET not in message and SECRET not in caplog.text


def test_client_honours_retry_after_and_refuses_a_malformed_reply_without_caching_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOBRIDGE_LLM_API_KEY", SECRET)
    sat, drone = _images()
    sleeps: list[float] = []
    with FakeChatServer(
        "unused", fail_first=1, failure=(429, {"Retry-After": "3"}, b"slow down"), reply={"choices": []}
    ) as server:
        config = LLMConfig(
            base_url=server.url, model="m", backoff_s=0.25, max_backoff_s=5.0, cache_dir=tmp_path / "cache"
        )
        client = LLMClient(config, sleep=sleeps.append)
        with pytest.raises(LLMError, match="answered without choices") as err:
            client.explain(sat, drone, "drone")
        assert sleeps == [3.0], "the server's Retry-After outweighs the 0.25 s back-off"
        assert len(server.requests) == 2 and SECRET not in str(err.value)
        with pytest.raises(LLMError, match="answered without choices"):
            client.explain(sat, drone, "drone")
        assert len(server.requests) == 3, "a malformed reply is not served from the cache"
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_client_does_not_retry_a_refusal_and_quotes_the_servers_reason(monkeypatch):
    monkeypatch.setenv("GEOBRIDGE_LLM_API_KEY", SECRET)
    sat, drone = _images()
    refusal = json.dumps({"error": f"model 'nope' not found (key {SECRET})"}).encode()
    with FakeChatServer(
        "unused", fail_first=10, failure=(404, {"Content-Type": "application/json"}, refusal)
    ) as server:
        client = LLMClient(LLMConfig(base_url=server.url, model="nope"), sleep=lambda s: None)
        with pytest.raises(
            LLMError, match=r"HTTP 404 from .*/v1/chat/completions: .*model 'nope' not found"
        ) as err:
            client.explain(sat, drone, "drone")
        assert len(server.requests) == 1, "a 404 is not retried"
    assert SECRET not in str(err.value)


def test_explainer_takes_the_language_models_verdict_and_chinese_text(tmp_path):
    sat, drone = _images()
    answer = "卫星影像显示密集的红色屋顶，无人机影像显示大片绿地和湖泊，两者不一致。\n结论：否"
    with FakeChatServer(answer) as server:
        llm = LLMClient(LLMConfig(base_url=server.url, model="m"), sleep=lambda s: None)
        result = Explainer(llm=llm).explain(sat, drone, "drone", lang="zh")
    assert result.source == "llm" and result.verdict is False and result.text == answer
    assert "无人机影像" in server.requests[0]["body"]["messages"][0]["content"][0]["text"]


def test_unreadable_llm_answer_falls_back_to_the_offline_paragraph():
    sat, drone = _images()
    with FakeChatServer("I cannot tell.") as server:
        llm = LLMClient(LLMConfig(base_url=server.url, model="m"), sleep=lambda s: None)
        result = Explainer(llm=llm).explain(sat, drone, "drone")
    assert result.source == "offline" and result.text.endswith(("Verdict: yes", "Verdict: no"))
    assert any("no readable verdict" in n for n in result.notes)


def test_metrics_accuracy_and_sentence_bert_similarity():
    from geobridge.explain.metrics import sbert_similarity, verdict_accuracy

    assert verdict_accuracy([True, False, None, True], [True, True, False, True]) == pytest.approx(0.5)
    generated = [
        "Both images show a river crossed by a bridge with red roofs nearby. Verdict: yes",
        "Both images show a river crossed by a bridge with red roofs nearby. Verdict: yes",
    ]
    references = [
        "A bridge spans the river, and there are red-roofed houses next to it. Verdict: yes",
        "The quarterly sales report shows rising revenue in the retail segment.",
    ]
    sim = sbert_similarity(generated, references)
    assert sim.per_pair[0] > sim.per_pair[1] + 0.3
    assert sim.mean == pytest.approx(float(sim.per_pair.mean()))
