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
    """Answers POST /v1/chat/completions; the first ``fail_first`` requests get HTTP 500."""

    def __init__(self, answer: str, fail_first: int = 0) -> None:
        self.requests: list[dict] = []
        self.fail_first = fail_first
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if len(server.requests) <= server.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"overloaded")
                    return
                payload = json.dumps({
                    "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": answer}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                }).encode()
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
    return rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)


def test_client_retries_after_a_500_caches_the_answer_and_never_logs_the_key(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GEOBRIDGE_LLM_API_KEY", SECRET)
    sleeps: list[float] = []
    answer = "The satellite image shows a river; the drone image shows the same river and bridge. Verdict: yes"
    sat, drone = _images()
    caplog.set_level(logging.DEBUG)
    with FakeChatServer(answer, fail_first=1) as server:
        client = LLMClient(LLMConfig(base_url=server.url, model="qwen2.5-vl", cache_dir=tmp_path / "cache",
                                     backoff_s=0.5), sleep=sleeps.append)
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
        assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    assert "llm POST" in caplog.text and "retry" in caplog.text
    assert SECRET not in caplog.text
    assert all(SECRET not in p.read_text() for p in (tmp_path / "cache").glob("*.json"))


def test_client_gives_up_with_an_error_that_does_not_hold_the_key(monkeypatch, caplog):
    monkeypatch.setenv("GEOBRIDGE_LLM_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    sat, drone = _images()
    with FakeChatServer("unused", fail_first=10) as server:
        client = LLMClient(LLMConfig(base_url=server.url, model="m", max_retries=2), sleep=lambda s: None)
        with pytest.raises(LLMError, match="3 attempts: HTTP 500") as err:
            client.explain(sat, drone, "street", lang="zh")
        assert len(server.requests) == 3
    assert SECRET not in str(err.value) and SECRET not in caplog.text


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
    generated = ["Both images show a river crossed by a bridge with red roofs nearby. Verdict: yes",
                 "Both images show a river crossed by a bridge with red roofs nearby. Verdict: yes"]
    references = ["A bridge spans the river, and there are red-roofed houses next to it. Verdict: yes",
                  "The quarterly sales report shows rising revenue in the retail segment."]
    sim = sbert_similarity(generated, references)
    assert sim.per_pair[0] > sim.per_pair[1] + 0.3
    assert sim.mean == pytest.approx(float(sim.per_pair.mean()))
